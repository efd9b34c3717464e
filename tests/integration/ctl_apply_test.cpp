// `sluice ctl apply` against the real server: create, update, unchanged, prune, dry run,
// stdin, YAML, bad input, and its If-Match conflicts provoked through a proxy.
#include <regex>

#include "fakes/ctl_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// apply

class CtlApply : public CtlFixture {};

TEST_F(CtlApply, CreatesUpdatesLeavesAloneAndPrunes) {
  const std::string a =
      file("cfg/a.json", R"({"flow_id":"a","type":"ticker","config":{"interval_ms":100}})");
  file("cfg/b.yaml",
       "- flow_id: b\n  name: the b flow\n- flow_id: c\n  type: ticker\n  config:\n"
       "    interval_ms: 300\n");
  file("cfg/notes.txt", "not a configuration");
  const std::string dir = (dir_ / "files" / "cfg").string();

  auto created = ctl({"apply", "-f", dir});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(created.out, "flow/a created\nflow/b created\nflow/c created\n");
  EXPECT_TRUE(jsonEqual(get("/flows/a").body,
                        R"({"flow_id":"a","type":"ticker","config":{"interval_ms":100}})"));
  EXPECT_TRUE(jsonEqual(get("/flows/b").body, R"({"flow_id":"b","name":"the b flow"})"));

  auto again = ctl({"apply", "-f", dir});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "flow/a unchanged\nflow/b unchanged\nflow/c unchanged\n");

  createFlows(R"([{"flow_id":"z"}])");
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["c"]})").status, 200);
  file("cfg/a.json", R"({"flow_id":"a","type":"ticker","config":{"interval_ms":250}})");
  auto changed = ctl({"apply", "-f", dir});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_EQ(changed.out, "flow/a configured\nflow/b unchanged\nflow/c unchanged\n");
  EXPECT_EQ(config("a")["config"]["interval_ms"].GetInt(), 250);
  EXPECT_EQ(get("/flows/z").status, 200) << "without --prune nothing is deleted";

  // c leaves the files: --prune deletes it (it runs: it is stopped first) and z.
  file("cfg/b.yaml", "- flow_id: b\n  name: the b flow\n");
  auto pruned = ctl({"apply", "-f", dir, "--prune"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
  EXPECT_EQ(pruned.out, "flow/a unchanged\nflow/b unchanged\nflow/z deleted\nflow/c deleted\n");
  EXPECT_EQ(get("/flows/c").status, 404);
  EXPECT_EQ(get("/flows/z").status, 404);
  EXPECT_EQ(get("/flows/a").status, 200);
  (void)a;
}

TEST_F(CtlApply, DryRunShowsTheDiffValidatesAndChangesNothing) {
  createFlows(R"([{"flow_id":"y","type":"ticker","config":{"interval_ms":100}},
                  {"flow_id":"u","name":"same"},{"flow_id":"z"}])");
  const std::string f = file("dry.json", R"([
      {"flow_id":"x","type":"ticker","config":{"interval_ms":50}},
      {"flow_id":"y","type":"ticker","name":"why","config":{"interval_ms":200}},
      {"name":"same","flow_id":"u"}])");
  const auto before = get("/flows");
  const std::string y_tag = get("/flows/y").header("etag");

  auto r = ctl({"apply", "--dry-run", "--prune", "-f", f});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "+ flow x (new)\n"
            "~ flow y: /config/interval_ms 100 -> 200\n"
            "~ flow y: /name (absent) -> \"why\"\n"
            "= flow u (unchanged)\n"
            "- flow z (pruned)\n");
  EXPECT_EQ(get("/flows").body, before.body) << "a dry run changes nothing";
  EXPECT_EQ(get("/flows/y").header("etag"), y_tag);

  // A problem the server would refuse: exit 1, named by its path; still nothing changes.
  const std::string bad = file("bad.json",
                               R"([{"flow_id":"x","type":"ticker","config":{"interval_ms":0}},
                                   {"flow_id":"y","type":"nosuchtype"}])");
  auto refused = ctl({"apply", "--dry-run", "-f", bad});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_HAS(refused.out, "+ flow x (new)");
  EXPECT_HAS(refused.err, "flow/x /config/interval_ms: ");
  EXPECT_HAS(refused.err, "flow/y /type: ");
  EXPECT_LACKS(refused.err, "already exists");
  EXPECT_EQ(get("/flows").body, before.body);
}

TEST_F(CtlApply, ReadsStdinJsonAndYamlAndRoundTripsItsOwnYaml) {
  auto json_in = ctl({"apply", "-f", "-"}, R"([{"flow_id":"j1"},
      {"flow_id":"j2","type":"ticker","config":{"interval_ms":10}}])");
  ASSERT_EQ(json_in.exit_code, 0) << json_in.err;
  EXPECT_EQ(json_in.out, "flow/j1 created\nflow/j2 created\n");

  const std::string yaml =
      "flow_id: y1\n"
      "type: ticker\n"
      "name: \"123\"\n"
      "note: ~\n"
      "enabled: true\n"
      "ratio: 0.5\n"
      "tags: [a, \"true\", 'null']\n"
      "config:\n"
      "  interval_ms: 1500\n";
  auto yaml_in = ctl({"apply", "-f", "-"}, yaml);
  ASSERT_EQ(yaml_in.exit_code, 0) << yaml_in.err;
  EXPECT_EQ(yaml_in.out, "flow/y1 created\n");
  EXPECT_TRUE(jsonEqual(get("/flows/y1").body,
                        R"({"flow_id":"y1","type":"ticker","name":"123","note":null,
                            "enabled":true,"ratio":0.5,"tags":["a","true","null"],
                            "config":{"interval_ms":1500}})"))
      << get("/flows/y1").body;

  // Several documents in one .yml file.
  const std::string multi = file("multi.yml", "flow_id: m1\n---\nflow_id: m2\ntype: noop\n");
  auto docs = ctl({"apply", "-f", multi});
  ASSERT_EQ(docs.exit_code, 0) << docs.err;
  EXPECT_EQ(docs.out, "flow/m1 created\nflow/m2 created\n");

  // What `get -o yaml` prints reads back as the same configuration: quoted where it must be.
  auto out = ctl({"get", "flow", "y1", "-o", "yaml"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_TRUE(hasLine(out.out, "name: \"123\"")) << out.out;
  auto back = ctl({"apply", "-f", "-"}, out.out);
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, "flow/y1 unchanged\n");
}

TEST_F(CtlApply, BadInputIsRefusedBeforeAnyRequest) {
  // A server that cannot be reached: an input error must be found before any request.
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(closedPort());
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> full = {"ctl", "--server", nowhere, "apply"};
    full.insert(full.end(), args.begin(), args.end());
    return sluice(full);
  };
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> says;
  };
  const std::string bad_json = file("bad.json", "{\"flow_id\": \"a\",\n  }\n");
  const std::string bad_yaml = file("bad.yaml", "flow_id: [unclosed\n");
  const std::string d1 = file("dup/d1.json", R"({"flow_id":"dup"})");
  const std::string d2 = file("dup/d2.yaml", "- flow_id: other\n- flow_id: dup\n");
  const std::string no_id = file("noid.json", R"([{"type":"noop"}])");
  const std::string scalar = file("scalar.json", "[5]");
  fs::create_directories(dir_ / "files" / "empty");
  for (const Case& c : std::vector<Case>{
           {{"-f", bad_json}, {"bad.json", "not valid JSON at line 2"}},
           {{"-f", bad_yaml}, {"bad.yaml", "not valid YAML: line "}},
           {{"-f", d1, "-f", d2}, {"flow_id 'dup' appears twice", "d1.json", "d2.yaml[1]"}},
           {{"-f", (dir_ / "files" / "dup").string()}, {"flow_id 'dup' appears twice"}},
           {{"-f", no_id}, {"noid.json[0]", "no flow_id"}},
           {{"-f", scalar}, {"scalar.json[0]", "must be an object"}},
           {{"-f", (dir_ / "files" / "missing.json").string()}, {"no such file"}},
           {{"-f", (dir_ / "files" / "empty").string()}, {"no flow configuration"}},
       }) {
    auto r = run(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[1] << ": " << r.err;
    for (const auto& s : c.says) EXPECT_HAS(r.err, s);
    EXPECT_LACKS(r.err, "cannot reach");
    EXPECT_EQ(r.out, "");
  }
  // What the server refuses is an API error (exit 1), and nothing is created.
  const std::string zero =
      file("zero.json",
           R"([{"flow_id":"ok"},{"flow_id":"x","type":"ticker","config":{"interval_ms":0}}])");
  auto refused = ctl({"apply", "-f", zero});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_HAS(refused.err, "error: create: 400: ");
  EXPECT_HAS(refused.err, "  flow/x /config/interval_ms: ");
  EXPECT_EQ(get("/flows/ok").status, 404) << "POST /flows is atomic";
}

TEST_F(CtlApply, AChangeBetweenReadAndWriteIsAConflictNotAnOverwrite) {
  createFlows(R"([{"flow_id":"y","type":"ticker","config":{"interval_ms":100}}])");
  const std::string tag = get("/flows/y").header("etag");
  ASSERT_FALSE(tag.empty());
  InterposingProxy proxy(server_->port());
  // Someone else's PUT lands after apply read y and before its own PUT arrives.
  proxy.setBefore([&](const RecordedRequest& r) {
    if (r.method == "PUT" && r.path() == "/flows/y") {
      EXPECT_EQ(
          put("/flows/y", R"({"flow_id":"y","type":"ticker","config":{"interval_ms":777}})").status,
          200);
    }
  });
  const std::string f =
      file("y.json", R"({"flow_id":"y","type":"ticker","config":{"interval_ms":200}})");
  auto r = sluice({"ctl", "apply", "-f", f, "--server", proxy.url()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_HAS(r.err, "error: flow/y: 412: ");
  EXPECT_HAS(r.err, "conflict: flow/y changed on the server");
  EXPECT_EQ(r.out, "");
  bool sent = false;
  for (const auto& req : proxy.requests()) {
    if (req.method != "PUT") continue;
    sent = true;
    EXPECT_EQ(req.header("if-match").value_or("<none>"), tag) << "the tag apply read y with";
  }
  EXPECT_TRUE(sent);
  EXPECT_EQ(config("y")["config"]["interval_ms"].GetInt(), 777) << "nothing was overwritten";

  // Without interference the next apply compares with the new configuration and wins.
  proxy.setBefore(nullptr);
  auto again = sluice({"ctl", "apply", "-f", f, "--server", proxy.url()});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "flow/y configured\n");
  EXPECT_EQ(config("y")["config"]["interval_ms"].GetInt(), 200);
}

TEST_F(CtlApply, AFlowDeletedMeanwhileIsAConflictToo) {
  createFlows(R"([{"flow_id":"y","type":"ticker","config":{"interval_ms":100}}])");
  InterposingProxy proxy(server_->port());
  proxy.setBefore([&](const RecordedRequest& r) {
    if (r.method == "PUT" && r.path() == "/flows/y") {
      EXPECT_EQ(del("/flows/y").status, 200);
    }
  });
  const std::string f =
      file("y.json", R"({"flow_id":"y","type":"ticker","config":{"interval_ms":200}})");
  auto r = sluice({"ctl", "apply", "-f", f, "--server", proxy.url()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "error: flow/y: 412: ");
  EXPECT_EQ(get("/flows/y").status, 404) << "a PUT with If-Match never recreates a flow";
}

TEST_F(CtlApply, PruneDeletesWithIfMatchAndStopsOnAConflict) {
  createFlows(
      R"([{"flow_id":"keep"},{"flow_id":"z","type":"ticker","config":{"interval_ms":100}}])");
  const std::string tag = get("/flows/z").header("etag");
  InterposingProxy proxy(server_->port());
  proxy.setBefore([&](const RecordedRequest& r) {
    if (r.method == "DELETE" && r.path() == "/flows/z") {
      EXPECT_EQ(
          put("/flows/z", R"({"flow_id":"z","type":"ticker","config":{"interval_ms":5}})").status,
          200);
    }
  });
  const std::string f = file("keep.json", R"({"flow_id":"keep"})");
  auto r = sluice({"ctl", "apply", "--prune", "-f", f, "--server", proxy.url()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "flow/keep unchanged\n");
  EXPECT_HAS(r.err, "error: flow/z: 412: ");
  EXPECT_HAS(r.err, "it was not deleted");
  for (const auto& req : proxy.requests()) {
    if (req.method == "DELETE") {
      EXPECT_EQ(req.header("if-match").value_or("<none>"), tag);
    }
  }
  EXPECT_EQ(config("z")["config"]["interval_ms"].GetInt(), 5);
}

TEST_F(CtlApply, WithoutAnETagNothingIsWrittenUnconditionally) {
  createFlows(R"([{"flow_id":"y","type":"ticker","config":{"interval_ms":100}},{"flow_id":"z"}])");
  InterposingProxy proxy(server_->port());
  // Something between apply and the server strips the tag from the reads.
  proxy.setAfter([](const RecordedRequest& r, HttpResponse& answer) {
    if (r.method == "GET" && r.path().rfind("/flows/", 0) == 0) answer.headers.erase("etag");
  });
  const std::string f =
      file("y.json", R"({"flow_id":"y","type":"ticker","config":{"interval_ms":200}})");
  auto r = sluice({"ctl", "apply", "-f", f, "--server", proxy.url()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_HAS(r.err, "error: flow/y: the server sent no ETag with the flow; not updated");
  // y as it is: only z's prune is left to do.
  const std::string same =
      file("same.json", R"({"flow_id":"y","type":"ticker","config":{"interval_ms":100}})");
  auto pruned = sluice({"ctl", "apply", "-f", same, "--prune", "--server", proxy.url()});
  EXPECT_EQ(pruned.exit_code, 1) << pruned.out;
  EXPECT_EQ(pruned.out, "flow/y unchanged\n");
  EXPECT_HAS(pruned.err, "error: flow/z: the server sent no ETag with the flow; not deleted");
  for (const auto& req : proxy.requests()) {
    EXPECT_TRUE(req.method == "GET") << req.method << " " << req.target << " was sent";
  }
  EXPECT_EQ(config("y")["config"]["interval_ms"].GetInt(), 100);
  EXPECT_EQ(get("/flows/z").status, 200);
}

TEST_F(CtlApply, EmptyYamlDocumentsAreSkipped) {
  // A stream that ends with `---` (an empty last document), or holds `~` alone.
  auto r = ctl({"apply", "-f", "-"}, "flow_id: t1\n---\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "flow/t1 created\n");
  const std::string f = file("two.yaml", "---\nflow_id: t2\n---\n~\n---\nflow_id: t3\n---\n");
  auto two = ctl({"apply", "-f", f});
  EXPECT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(two.out, "flow/t2 created\nflow/t3 created\n");
  auto none = ctl({"apply", "-f", "-"}, "---\n---\n");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_HAS(none.err, "error: no flow configuration found");
}

}  // namespace
}  // namespace sluice::test
