// `sluice ctl` start, stop, pause, resume, delete, validate, watch (transitions, filters,
// reconnection after a restart, stops) and audit with roles and tokens, against the real
// server.
#include <regex>

#include "fakes/ctl_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// start, stop, pause, resume, delete, validate

class CtlCommands : public CtlFixture {};

TEST_F(CtlCommands, StartPauseResumeStopByIdAndAll) {
  createFlows(R"([{"flow_id":"a","type":"ticker","config":{"interval_ms":50}},
                  {"flow_id":"b","type":"ticker","config":{"interval_ms":50}}])");
  auto started = ctl({"start", "a", "b"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_EQ(started.out, "flow/a running\nflow/b running\n");
  EXPECT_EQ(statusOf("b"), "running");

  auto paused = ctl({"pause", "a"});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(paused.out, "flow/a paused\n");
  EXPECT_EQ(statusOf("a"), "paused");
  auto resumed = ctl({"resume", "a"});
  EXPECT_EQ(resumed.out, "flow/a running\n");
  EXPECT_EQ(statusOf("a"), "running");

  // What is sent, seen through a proxy: --hard is type 1; --all leaves flow_ids out.
  InterposingProxy proxy(server_->port());
  auto hard = sluice({"ctl", "stop", "--hard", "a", "--server", proxy.url()});
  ASSERT_EQ(hard.exit_code, 0) << hard.err;
  EXPECT_EQ(hard.out, "flow/a stopped\n");
  EXPECT_EQ(statusOf("a"), "stopped");
  auto all = sluice({"ctl", "stop", "--all", "--server", proxy.url()});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "flow/a stopped\nflow/b stopped\n");
  EXPECT_EQ(statusOf("b"), "stopped");
  auto reqs = proxy.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "PATCH");
  EXPECT_EQ(reqs[0].target, "/flows/commands");
  EXPECT_TRUE(jsonEqual(reqs[0].body, R"({"command":"stop","flow_ids":["a"],"type":1})"))
      << reqs[0].body;
  EXPECT_TRUE(jsonEqual(reqs[1].body, R"({"command":"stop","type":0})")) << reqs[1].body;

  auto everything = ctl({"start", "--all"});
  EXPECT_EQ(everything.exit_code, 0) << everything.err;
  EXPECT_EQ(everything.out, "flow/a running\nflow/b running\n");
}

TEST_F(CtlCommands, AFailedFlowOrARefusalIsExitOneAndBadUsageExitTwo) {
  createFlows(R"([{"flow_id":"a","type":"ticker","config":{"interval_ms":50}},
                  {"flow_id":"p","type":"probe","config":{"fail":"start"}}])");
  auto failed = ctl({"start", "a", "p"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_HAS(failed.out, "flow/a running\n");
  EXPECT_HAS(failed.out, "flow/p failed: ");
  EXPECT_HAS(failed.out, memberText(statusDoc("p"), "error"));

  auto unknown = ctl({"start", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.out, "");
  EXPECT_HAS(unknown.err, "error: 400: ");
  EXPECT_HAS(unknown.err, "nope");
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["a"]})").status, 200);
  auto illegal = ctl({"pause", "a"});
  EXPECT_EQ(illegal.exit_code, 1);
  EXPECT_HAS(illegal.err, "error: 400: ");

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"start"}, {"start", "a", "--all"}, {"pause", "--hard", "a"}, {"stop", "--bogus"}}) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_EQ(statusOf("a"), "stopped");
}

TEST_F(CtlCommands, DeleteWithAndWithoutForce) {
  createFlows(R"([{"flow_id":"up"},{"flow_id":"solo"},
                  {"flow_id":"down","runtime":{"after":[{"flow_id":"up","on":"succeeded"}]}}])");
  auto solo = ctl({"delete", "solo"});
  ASSERT_EQ(solo.exit_code, 0) << solo.err;
  EXPECT_EQ(solo.out, "flow/solo deleted\n");
  EXPECT_EQ(get("/flows/solo").status, 404);

  auto held = ctl({"delete", "up"});
  EXPECT_EQ(held.exit_code, 1);
  EXPECT_HAS(held.err, "error: flow/up: 400: ");
  EXPECT_HAS(held.err, "down");
  EXPECT_EQ(get("/flows/up").status, 200);
  auto forced = ctl({"delete", "up", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(get("/flows/up").status, 404);

  auto mixed = ctl({"delete", "nope", "down"});
  EXPECT_EQ(mixed.exit_code, 1);
  EXPECT_EQ(mixed.out, "flow/down deleted\n");
  EXPECT_HAS(mixed.err, "error: flow/nope: 400: ");
  EXPECT_EQ(ctl({"delete"}).exit_code, 2);
}

TEST_F(CtlCommands, ValidateReportsProblemsWithTheirPaths) {
  const std::string good = file("good.yaml",
                                "- flow_id: v1\n  type: ticker\n  config:\n    interval_ms: 5\n"
                                "- flow_id: v2\n");
  auto ok = ctl({"validate", "-f", good});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "valid: 2 flow configurations\n");

  const std::string bad = file("bad.json", R"([
      {"flow_id":"v1","type":"ticker","config":{"interval_ms":0}},
      {"flow_id":"v2","type":"nosuchtype"}, 5])");
  auto r = ctl({"validate", "-f", bad});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.out, "invalid: 3 problems in 3 flow configurations\n");
  EXPECT_HAS(r.out, "  " + bad + "[0] flow/v1 /config/interval_ms: ");
  EXPECT_HAS(r.out, "  " + bad + "[1] flow/v2 /type: unknown flow type 'nosuchtype'");
  EXPECT_HAS(r.out, "  " + bad + "[2]: ");
  EXPECT_EQ(get("/flows/v1").status, 404) << "validate stores nothing";

  createFlows(R"([{"flow_id":"v2"}])");
  auto exists = ctl({"validate", "-f", good});
  EXPECT_EQ(exists.exit_code, 1);
  EXPECT_HAS(exists.out, "flow/v2 /flow_id: flow_id 'v2' already exists");
  auto existing_ok = ctl({"validate", "--existing-ok", "-f", good});
  EXPECT_EQ(existing_ok.exit_code, 0) << existing_ok.out;
  EXPECT_EQ(ctl({"validate"}).exit_code, 2);
}

// ---------------------------------------------------------------------------------------------
// watch

class CtlWatch : public CtlFixture {
 protected:
  std::unique_ptr<CliProcess> watch(std::vector<std::string> args) {
    std::vector<std::string> full = {"ctl", "watch"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back("--server");
    full.push_back(url());
    auto p = std::make_unique<CliProcess>(full, dir_ / "cli");
    // Subscribed (and the status read): from here on no transition is missed.
    EXPECT_TRUE(p->waitForOutput(
        [](const std::string&, const std::string& err) {
          return err.find("watch: following ") != std::string::npos;
        },
        20s))
        << p->err();
    return p;
  }
  static std::string timePattern() { return "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ"; }
};

TEST_F(CtlWatch, PrintsTheTransitionsOfTheFlowsAsked) {
  createFlows(R"([{"flow_id":"a","type":"ticker","config":{"interval_ms":50}},
                  {"flow_id":"b","type":"ticker","config":{"interval_ms":50}}])");
  auto w = watch({"a", "--count", "2", "--timeout", "60s"});
  // b's transitions are not a's: they are not shown.
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["b"]})").status, 200);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["a"]})").status, 200);
  EXPECT_EQ(w->wait(), 0) << w->err();
  auto got = lines(w->out());
  ASSERT_EQ(got.size(), 2u) << w->out();
  EXPECT_TRUE(std::regex_match(
      got[0], std::regex(timePattern() + "  flow/a  stopped -> starting \\(desired running\\)")))
      << got[0];
  EXPECT_TRUE(std::regex_match(
      got[1], std::regex(timePattern() + "  flow/a  starting -> running \\(desired running\\)")))
      << got[1];

  // Every flow: configuration events too.
  auto all = watch({"--count", "1", "--timeout", "60s"});
  createFlows(R"([{"flow_id":"n"}])");
  EXPECT_EQ(all->wait(), 0) << all->err();
  EXPECT_TRUE(std::regex_match(trim(all->out()), std::regex(timePattern() + "  flow/n  created")))
      << all->out();
}

TEST_F(CtlWatch, ReconnectsAfterARestartAndRereadsTheStatus) {
  createFlows(R"([{"flow_id":"a","type":"ticker","config":{"interval_ms":50}}])");
  const uint16_t port = server_->port();
  auto w = watch({"--count", "3", "--timeout", "120s"});
  createFlows(R"([{"flow_id":"n"}])");
  ASSERT_TRUE(w->waitForOutput(
      [](const std::string& out, const std::string&) {
        return out.find("flow/n  created") != std::string::npos;
      },
      20s))
      << w->out();
  server_->kill(SIGTERM);
  ASSERT_TRUE(w->waitForOutput(
      [](const std::string&, const std::string& err) {
        return err.find("watch: the stream ended") != std::string::npos;
      },
      30s))
      << w->err();
  // The same address, a new run: the watch's Last-Event-ID is from the previous one.
  server_ = std::make_unique<ServerProcess>(
      ServerProcess::ExactArgs{}, SLUICE_BINARY,
      std::vector<std::string>{"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir",
                               (dir_ / "data").string(), "--plugin-dir", SLUICE_TEST_PLUGIN_DIR},
      (dir_ / "sluice2.log").string());
  ASSERT_TRUE(w->waitForOutput(
      [](const std::string&, const std::string& err) {
        return err.find("watch: status re-read (2 flows now)\n") != std::string::npos;
      },
      30s))
      << w->err();
  // Started only once the watch has re-read the status: had the read seen `running`, it
  // would print one line, `stopped -> running`, for the two events.
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["a"]})").status, 200);
  EXPECT_EQ(w->wait(), 0) << w->err();
  EXPECT_HAS(w->err(), "watch: reconnected\n");
  auto got = lines(w->out());
  ASSERT_EQ(got.size(), 3u) << w->out();
  EXPECT_TRUE(
      std::regex_match(got[1], std::regex(timePattern() + "  flow/a  stopped -> starting .*")))
      << w->out();
  EXPECT_TRUE(
      std::regex_match(got[2], std::regex(timePattern() + "  flow/a  starting -> running .*")))
      << w->out();
}

TEST_F(CtlWatch, RetriesA503AndReconnectsWithoutARefusedLastEventId) {
  StreamingProxy proxy(server_->port());
  CliProcess w({"ctl", "watch", "--count", "2", "--timeout", "60s", "--server", proxy.url()},
               dir_ / "cli");
  ASSERT_TRUE(w.waitForOutput(
      [](const std::string&, const std::string& err) {
        return err.find("watch: following ") != std::string::npos;
      },
      20s))
      << w.err();
  createFlows(R"([{"flow_id":"n1"}])");
  ASSERT_TRUE(w.waitForOutput(
      [](const std::string& out, const std::string&) {
        return out.find("flow/n1  created") != std::string::npos;
      },
      20s))
      << w.out();
  // The stream drops; the next attempt meets a draining server (503), the one after it a
  // server that refuses the Last-Event-ID (and n2 is created meanwhile: only the status read
  // can tell), then the stream is back.
  std::atomic<int> attempts{0};
  proxy.setAnswer([&](const RecordedRequest& r) -> std::optional<std::string> {
    if (r.path() != "/events") return std::nullopt;
    const int n = ++attempts;
    if (n == 1) {
      return rawJsonResponse(503, R"({"error":"the server is shutting down"})",
                             "Retry-After: 3\r\n");
    }
    if (n == 2) {
      EXPECT_EQ(post("/flows", R"([{"flow_id":"n2"}])").status, 201);
      return rawJsonResponse(
          400, R"x({"error":"Last-Event-ID must be the id of an event (a whole number)"})x");
    }
    return std::nullopt;
  });
  proxy.cutEvents();
  EXPECT_EQ(w.wait(), 0) << w.err();
  auto got = lines(w.out());
  ASSERT_EQ(got.size(), 2u) << w.out();
  EXPECT_TRUE(std::regex_match(got[1], std::regex(timePattern() + "  flow/n2  - -> stopped .*")))
      << w.out();
  // Retry-After (3 s) is longer than the backoff (the server's 2 s): it is honoured.
  EXPECT_HAS(w.err(), "watch: 503: the server is shutting down; retrying in 3000 ms\n");
  EXPECT_HAS(w.err(), "; reconnecting without it and re-reading the status\n");
  EXPECT_HAS(w.err(), "watch: status re-read (");
  EXPECT_HAS(w.err(), "watch: reconnected\n");
  std::vector<RecordedRequest> events;
  for (const auto& r : proxy.requests()) {
    if (r.path() == "/events") events.push_back(r);
  }
  ASSERT_EQ(events.size(), 4u);
  EXPECT_FALSE(events[0].header("last-event-id")) << "the first subscription";
  EXPECT_TRUE(events[1].header("last-event-id")) << "after the drop";
  EXPECT_TRUE(events[2].header("last-event-id")) << "after the 503";
  EXPECT_FALSE(events[3].header("last-event-id")) << "after the server refused it";

  // 401 and 403 still end a watch.
  CliProcess denied({"ctl", "watch", "--timeout", "30s", "--server", proxy.url()}, dir_ / "cli");
  ASSERT_TRUE(denied.waitForOutput(
      [](const std::string&, const std::string& err) {
        return err.find("watch: following ") != std::string::npos;
      },
      20s));
  proxy.setAnswer([](const RecordedRequest& r) -> std::optional<std::string> {
    if (r.path() != "/events") return std::nullopt;
    return rawJsonResponse(403, R"({"error":"this request needs the role viewer"})");
  });
  proxy.cutEvents();
  EXPECT_EQ(denied.wait(), 1);
  EXPECT_HAS(denied.err(), "error: 403: this request needs the role viewer");
}

TEST_F(CtlWatch, EventsOlderThanTheStatusReadAreNotPrintedBackwards) {
  // Starting takes 300 ms: the transition to starting is well before the one to running.
  createFlows(R"([{"flow_id":"a","type":"probe","config":{"block":"start","block_ms":300}}])");
  StreamingProxy proxy(server_->port());
  proxy.holdEvents(true);
  CliProcess w({"ctl", "watch", "a", "--count", "2", "--timeout", "60s", "--server", proxy.url()},
               dir_ / "cli");
  // The server answered the subscription (its first bytes are held): the start's events are
  // queued for the watch, which reads the status only once those bytes reach it.
  ASSERT_TRUE(waitFor([&] { return proxy.heldBytes() > 0; }, 20s));
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["a"]})").status, 200);
  ASSERT_TRUE(waitForStatus("a", "running"));
  proxy.holdEvents(false);
  ASSERT_TRUE(w.waitForOutput(
      [](const std::string&, const std::string& err) {
        return err.find("watch: following ") != std::string::npos;
      },
      20s))
      << w.err();
  ASSERT_EQ(patch(R"({"command":"pause","flow_ids":["a"]})").status, 200);
  EXPECT_EQ(w.wait(), 0) << w.err();
  auto got = lines(w.out());
  ASSERT_EQ(got.size(), 2u) << w.out();
  EXPECT_TRUE(
      std::regex_match(got[0], std::regex(timePattern() + "  flow/a  running -> pausing .*")))
      << w.out();
  EXPECT_TRUE(
      std::regex_match(got[1], std::regex(timePattern() + "  flow/a  pausing -> paused .*")))
      << w.out();
}

TEST_F(CtlWatch, StopsOnTimeoutOrSigtermAndFailsWhenUnreachable) {
  auto quiet = ctl({"watch", "--timeout", "1s"});
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.out, "");
  auto short_count = ctl({"watch", "--timeout", "1s", "--count", "1"});
  EXPECT_EQ(short_count.exit_code, 1);
  EXPECT_HAS(short_count.err, "timed out after 0 of 1 events");

  auto w = watch({});
  w->signal(SIGTERM);
  EXPECT_EQ(w->wait(), 0) << w->err();

  const std::string nowhere = "http://127.0.0.1:" + std::to_string(closedPort());
  auto r = sluice({"ctl", "watch", "--server", nowhere, "--timeout", "5s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_HAS(r.err, "error: cannot reach " + nowhere + ": Connection refused");
  EXPECT_EQ(ctl({"watch", "--count", "0"}).exit_code, 2);
  EXPECT_EQ(ctl({"watch", "--timeout", "soon"}).exit_code, 2);
}

// ---------------------------------------------------------------------------------------------
// tokens, roles and audit

class CtlAuth : public SecureServer {
 protected:
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  CliRun ctlAs(const std::string& token, std::vector<std::string> args) {
    std::vector<std::string> full = {"ctl"};
    full.insert(full.end(), args.begin(), args.end());
    for (const char* a : {"--server"}) full.push_back(a);
    full.push_back(url());
    if (!token.empty()) {
      full.push_back("--token");
      full.push_back(token);
    }
    return runCli(full, dir_ / "cli");
  }
};

TEST_F(CtlAuth, AuditPagesAsAdminAndRolesAreEnforced) {
  admin_ = cliToken("admin", "admin");
  const std::string viewer = cliToken("viewer", "viewer");
  startServer();
  for (const char* id : {"a1", "a2", "a3"}) {
    ASSERT_EQ(asAdmin("POST", "/flows", std::string(R"([{"flow_id":")") + id + "\"}]").status, 201);
  }
  ASSERT_EQ(asAdmin("PATCH", "/flows/commands", R"({"command":"start"})").status, 200);
  const auto expected = parseAudit(asAdmin("GET", "/audit?limit=1000").body);
  ASSERT_GE(expected.size(), 4u);

  auto j = ctlAs(admin_, {"audit", "--limit", "2", "-o", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto got = parseAudit(j.out);
  ASSERT_GE(got.size(), expected.size()) << "every page is read";
  for (size_t i = 0; i < got.size(); ++i) {
    if (i < expected.size()) {
      EXPECT_EQ(got[i].seq, expected[i].seq);
    }
    if (i > 0) {
      EXPECT_GT(got[i].seq, got[i - 1].seq) << "no entry twice";
    }
  }
  auto after = ctlAs(admin_, {"audit", "--after", std::to_string(expected[1].seq), "-o", "json"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  const auto later = parseAudit(after.out);
  ASSERT_FALSE(later.empty());
  EXPECT_EQ(later[0].seq, expected[2].seq);
  auto table = ctlAs(admin_, {"audit"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(
      std::regex_match(lines(table.out)[0],
                       std::regex("SEQ +TIME +TOKEN +ROLE +REMOTE +METHOD +PATH +STATUS +ERROR")))
      << table.out;
  EXPECT_TRUE(std::regex_search(
      table.out, std::regex("\n\\d+ +\\S+ +admin +admin +\\S+ +POST +/flows +201 +-\n")))
      << table.out;
  auto yaml = ctlAs(admin_, {"audit", "-o", "yaml"});
  EXPECT_TRUE(std::regex_search(
      yaml.out, std::regex("(^|\n)- seq: " + std::to_string(expected[0].seq) + "\n")))
      << yaml.out;

  auto forbidden = ctlAs(viewer, {"audit"});
  EXPECT_EQ(forbidden.exit_code, 1);
  EXPECT_HAS(forbidden.err, "error: 403: ");
  EXPECT_HAS(forbidden.err, "needs the role admin");
  auto reads = ctlAs(viewer, {"get", "flows"});
  EXPECT_EQ(reads.exit_code, 0) << reads.err;
  EXPECT_HAS(reads.out, "a3");
  const std::string f = (dir_ / "x.json").string();
  std::ofstream(f) << R"({"flow_id":"x"})";
  auto edit = ctlAs(viewer, {"apply", "-f", f});
  EXPECT_EQ(edit.exit_code, 1);
  EXPECT_HAS(edit.err, "needs the role editor");

  auto bad = ctlAs("sluice_" + std::string(64, '0'), {"get", "flows"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_HAS(bad.err, "error: 401: ");
  auto none = ctlAs("", {"get", "flows"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_HAS(none.err, "error: 401: ");

  // SLUICE_URL and SLUICE_TOKEN in place of the options.
  auto env = runCli({"ctl", "audit", "-o", "json"}, dir_ / "cli",
                    {{"SLUICE_URL", url()}, {"SLUICE_TOKEN", admin_}});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  EXPECT_GE(parseAudit(env.out).size(), expected.size());
}

}  // namespace
}  // namespace sluice::test
