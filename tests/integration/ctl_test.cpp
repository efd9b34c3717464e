// `sluice ctl` against the real server, through the real binary: get in its output forms, the
// server's URL from the environment, usage errors, HTTPS, and bash completion. The other
// subcommands: ctl_apply_test.cpp, ctl_ops_test.cpp.
#include <regex>

#include "fakes/ctl_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// get

class CtlGet : public CtlFixture {};

// The YAML file `path` read by PyYAML (a YAML 1.1 reader), as JSON; nothing when python3-yaml
// is not installed.
std::optional<std::string> readByPyYaml(const std::string& path) {
  int rc = 0;
  shell("/usr/bin/python3 -c 'import yaml' 2>/dev/null", &rc);
  if (rc != 0) return std::nullopt;
  std::string json = shell(
      "/usr/bin/python3 -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))' "
      "< '" +
          path + "'",
      &rc);
  EXPECT_EQ(rc, 0) << json;
  return json;
}

TEST_F(CtlGet, FlowsAsAlignedTableJsonAndYaml) {
  createFlows(
      R"([{"flow_id":"alpha","type":"ticker","name":"Alpha flow","config":{"interval_ms":100}},
          {"flow_id":"b"}])");
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["alpha"]})").status, 200);

  auto t = ctl({"get", "flows"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(t.out,
            "ID      NAME         TYPE     VERSION   DESIRED   STATUS\n"
            "alpha   Alpha flow   ticker   1.0.0     running   running\n"
            "b       -            noop     1.0.0     stopped   stopped\n");

  auto j = ctl({"get", "flows", "-o", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_TRUE(jsonEqual(j.out, get("/flows").body)) << j.out;
  EXPECT_HAS(j.out, "\n  {\n    \"flow_id\": \"alpha\",");  // pretty-printed

  auto y = ctl({"get", "-o", "yaml", "flows"});  // -o before the kind works too
  ASSERT_EQ(y.exit_code, 0) << y.err;
  for (const char* line : {"- flow_id: alpha", "  type: ticker", "  name: Alpha flow",
                           "  config:", "    interval_ms: 100", "- flow_id: b"}) {
    EXPECT_TRUE(hasLine(y.out, line)) << line << " not in:\n" << y.out;
  }
}

TEST_F(CtlGet, OneFlowAndStatusWithErrors) {
  createFlows(R"([{"flow_id":"alpha","type":"ticker","config":{"interval_ms":100}},
                  {"flow_id":"beta","type":"probe","config":{"fail":"start"}}])");
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["alpha","beta"]})").status, 200);
  ASSERT_TRUE(waitForStatus("beta", "failed"));

  auto f = ctl({"get", "flow", "alpha"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  ASSERT_EQ(lines(f.out).size(), 2u) << f.out;
  EXPECT_TRUE(std::regex_match(lines(f.out)[1],
                               std::regex("alpha +- +ticker +1\\.0\\.0 +running +running")))
      << f.out;
  auto fj = ctl({"get", "flow", "alpha", "-o", "json"});
  ASSERT_EQ(fj.exit_code, 0) << fj.err;
  EXPECT_TRUE(jsonEqual(fj.out, get("/flows/alpha").body)) << fj.out;
  auto fy = ctl({"get", "flow", "alpha", "-o", "yaml"});
  EXPECT_TRUE(hasLine(fy.out, "flow_id: alpha")) << fy.out;
  EXPECT_TRUE(hasLine(fy.out, "  interval_ms: 100")) << fy.out;

  auto s = ctl({"get", "status"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto rows = lines(s.out);
  ASSERT_EQ(rows.size(), 3u) << s.out;
  EXPECT_TRUE(std::regex_match(rows[0], std::regex("ID +STATUS +DESIRED +SINCE +ERROR +NODE")))
      << rows[0];
  const std::string time = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ";
  EXPECT_TRUE(std::regex_match(rows[1], std::regex("alpha +running +running +" + time + " +- +-")))
      << rows[1];
  const std::string error = memberText(statusDoc("beta"), "error");
  EXPECT_TRUE(std::regex_match(rows[2], std::regex("beta +failed +running +" + time + " +.+ +-")))
      << rows[2];
  EXPECT_HAS(rows[2], error);
  // Columns line up: each header starts where its cells start.
  EXPECT_EQ(rows[0].find("STATUS"), rows[1].find("running"));
  EXPECT_EQ(rows[0].find("ERROR"), rows[2].find(error));

  auto one = ctl({"get", "status", "alpha", "-o", "json"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto doc = parseJson(one.out);
  EXPECT_EQ(memberText(doc, "flow_id"), "alpha");
  EXPECT_EQ(memberText(doc, "status"), "running");
  auto all = ctl({"get", "status", "-o", "yaml"});
  EXPECT_TRUE(hasLine(all.out, "alpha:")) << all.out;
  EXPECT_TRUE(hasLine(all.out, "  status: running")) << all.out;
  EXPECT_TRUE(hasLine(all.out, "  error: \"" + error + "\"") ||
              hasLine(all.out, "  error: " + error))
      << all.out;
}

TEST_F(CtlGet, PluginsWithARefusalAndNodes) {
  const fs::path extra = dir_ / "extra-plugins";
  fs::create_directories(extra);
  std::ofstream(extra / "garbage.so") << "not a shared object\n";
  server_.reset();
  startServer({"--plugin-dir", extra.string()});

  auto t = ctl({"get", "plugins"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  auto rows = lines(t.out);
  ASSERT_FALSE(rows.empty());
  EXPECT_TRUE(std::regex_match(rows[0], std::regex("NAME +VERSION +TYPES +FILE"))) << rows[0];
  bool ticker = false;
  for (const auto& r : rows) {
    ticker = ticker || std::regex_match(r, std::regex("ticker +1\\.0\\.0 +ticker +/.*ticker\\.so"));
  }
  EXPECT_TRUE(ticker) << t.out;
  EXPECT_TRUE(std::regex_search(t.out, std::regex("\nREFUSED +REASON\n.*garbage\\.so +\\S")))
      << t.out;

  auto j = ctl({"get", "plugins", "-o", "json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_TRUE(jsonEqual(j.out, get("/plugins").body)) << j.out;
  auto y = ctl({"get", "plugins", "-o", "yaml"});
  EXPECT_TRUE(hasLine(y.out, "plugins:")) << y.out;
  EXPECT_TRUE(hasLine(y.out, "refused:")) << y.out;
  EXPECT_TRUE(std::regex_search(y.out, std::regex("\n  - file: .*garbage\\.so\n"))) << y.out;
}

TEST_F(CtlGet, TheNodesOfTheCluster) {
  createFlows(R"([{"flow_id":"a"}])");
  auto n = ctl({"get", "nodes"});
  ASSERT_EQ(n.exit_code, 0) << n.err;
  auto rows = lines(n.out);
  ASSERT_EQ(rows.size(), 2u) << n.out;
  EXPECT_TRUE(
      std::regex_match(rows[0], std::regex("NODE +URL +LEADER +ALIVE +FLOWS +LAST HEARTBEAT")))
      << rows[0];
  EXPECT_TRUE(std::regex_search(rows[1], std::regex(" " + url() + " +true +true +1 +\\d{4}-")))
      << rows[1];
  auto nj = ctl({"get", "nodes", "-o", "json"});
  auto cluster = parseJson(nj.out);
  ASSERT_TRUE(cluster.IsObject() && cluster.HasMember("nodes")) << nj.out;
  EXPECT_EQ(cluster["nodes"].Size(), 1u);
  EXPECT_EQ(memberText(cluster, "node"), memberText(parseJson(get("/cluster").body), "node"));
  auto ny = ctl({"get", "nodes", "-o", "yaml"});
  EXPECT_TRUE(hasLine(ny.out, "nodes:")) << ny.out;
  EXPECT_TRUE(hasLine(ny.out, "fenced: false")) << ny.out;
}

TEST_F(CtlGet, UnknownIdsAreApiErrorsAndBadArgumentsUsageErrors) {
  auto f = ctl({"get", "flow", "nope"});
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(f.out, "");
  EXPECT_HAS(f.err, "error: 404: ");
  EXPECT_HAS(f.err, "nope");
  auto s = ctl({"get", "status", "nope"});
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_HAS(s.err, "error: 404: ");
  auto empty = ctl({"get", "flows"});
  EXPECT_EQ(empty.exit_code, 0);
  EXPECT_EQ(empty.out, "");
  EXPECT_HAS(empty.err, "No flows found.");
  for (const auto& args : std::vector<std::vector<std::string>>{{"get"},
                                                                {"get", "bogus"},
                                                                {"get", "flow"},
                                                                {"get", "flows", "-o", "xml"},
                                                                {"get", "flows", "--bogus"},
                                                                {"get", "flows", "extra"}}) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args.size() << " args: " << r.err;
    EXPECT_FALSE(r.err.empty());
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(CtlGet, YamlQuotesWhatYaml11ReadersWouldNotReadAsAString) {
  // Each string would be a boolean, null, number or date to a YAML 1.1 reader (PyYAML).
  createFlows(R"([{"flow_id":"yes","name":"on","config":{"a":"no","b":"2026-01-01","c":"1:20",
    "d":"~","e":"Off","f":"0x1F","g":"+1","h":".5","i":"1_000","j":"=","k":"<<","l":"y",
    "m":"NULL","n":"y","ts":"2026-11-30T01:03:36Z","o":"0b101","plain":"hello"}}])");
  auto y = ctl({"get", "flow", "yes", "-o", "yaml"});
  ASSERT_EQ(y.exit_code, 0) << y.err;
  for (const char* line :
       {"flow_id: \"yes\"", "name: \"on\"", "  a: \"no\"", "  b: \"2026-01-01\"", "  c: \"1:20\"",
        "  d: \"~\"", "  e: \"Off\"", "  f: \"0x1F\"", "  g: \"+1\"", "  h: \".5\"",
        "  i: \"1_000\"", "  j: \"=\"", "  k: \"<<\"", "  l: \"y\"", "  m: \"NULL\"",
        "  ts: \"2026-11-30T01:03:36Z\"", "  o: \"0b101\"", "  plain: hello", "  \"n\": \"y\""}) {
    EXPECT_TRUE(hasLine(y.out, line)) << line << " not in:\n" << y.out;
  }
  // Read back by PyYAML (YAML 1.1) when it is installed: the same JSON as the API's.
  if (auto json = readByPyYaml(file("yes.yaml", y.out))) {
    EXPECT_TRUE(jsonEqual(*json, get("/flows/yes").body)) << *json;
  }
  // And by sluice itself.
  auto again = ctl({"apply", "-f", "-"}, y.out);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "flow/yes unchanged\n");
}

TEST_F(CtlGet, ControlCharactersFromTheServerNeverReachTheTerminal) {
  // ESC [31m (C0) and CSI (C1, U+009B) in a name; DEL in another; NEL (U+0085) and the line
  // separator (U+2028), which YAML readers take as line breaks, in labels.
  createFlows(
      R"([{"flow_id":"e","name":"a\u001b[31mb\u009b1m"},{"flow_id":"f","name":"x\u007fy",
          "labels":{"nel":"\u0085","ls":"a\u2028b","ps":"x\u2029"}}])");
  auto t = ctl({"get", "flows"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_LACKS(t.out, "\x1b");
  EXPECT_LACKS(t.out, "\xc2\x9b");
  EXPECT_LACKS(t.out, "\x7f");
  EXPECT_HAS(t.out, "a\\x1B[31mb\\u009B1m");
  EXPECT_HAS(t.out, "x\\x7Fy");
  // JSON and YAML keep the values exact, escaped in their own syntax.
  auto j = ctl({"get", "flows", "-o", "json"});
  EXPECT_TRUE(jsonEqual(j.out, get("/flows").body)) << j.out;
  auto y = ctl({"get", "flows", "-o", "yaml"});
  for (const std::string& out : {j.out, y.out}) {
    EXPECT_LACKS(out, "\x1b");
    EXPECT_LACKS(out, "\xc2\x9b");
    EXPECT_LACKS(out, "\x7f");
  }
  EXPECT_LACKS(y.out, "\xc2\x85");
  EXPECT_LACKS(y.out, "\xe2\x80\xa8");
  EXPECT_LACKS(y.out, "\xe2\x80\xa9");
  auto back = ctl({"apply", "-f", "-"}, y.out);
  EXPECT_EQ(back.out, "flow/e unchanged\nflow/f unchanged\n") << back.err;
  if (auto json = readByPyYaml(file("e.yaml", y.out))) {
    EXPECT_TRUE(jsonEqual(*json, get("/flows").body)) << *json << "\n" << y.out;
  }
  // An error message that quotes what was sent.
  auto err = ctl({"delete", "a\x1b[31mb"});
  EXPECT_EQ(err.exit_code, 1);
  EXPECT_LACKS(err.err, "\x1b");
  EXPECT_HAS(err.err, "error: flow/a\\x1B[31mb: ");
}

// ---------------------------------------------------------------------------------------------
// Where the server is, and usage errors

class CtlEnv : public CtlFixture {};

TEST_F(CtlEnv, TheServerComesFromTheOptionThenSluiceUrlThenAppUrl) {
  createFlows(R"([{"flow_id":"e1"}])");
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(closedPort());
  const std::string hostport = "127.0.0.1:" + std::to_string(server_->port());
  struct Case {
    std::vector<std::string> extra;
    EnvChanges env;
  };
  for (const Case& c : std::vector<Case>{
           {{}, {{"SLUICE_URL", url()}}},
           {{}, {{"SLUICE_URL", hostport + "/"}}},
           {{}, {{"app_url", url()}}},
           {{}, {{"app_url", hostport}}},
           {{}, {{"SLUICE_URL", url()}, {"app_url", nowhere}}},
           {{"--server", "HTTP://" + hostport}, {}},
           {{"--server", url()}, {{"SLUICE_URL", nowhere}}},
       }) {
    std::vector<std::string> args = {"ctl", "get", "flows"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    auto r = sluice(args, c.env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_HAS(r.out, "e1");
  }
  auto refused = sluice({"ctl", "get", "flows", "--server", nowhere});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, "error: cannot reach " + nowhere + ": Connection refused\n");
  // Nothing given: http://127.0.0.1:5000.
  auto fallback = sluice({"ctl", "get", "flows"});
  if (fallback.exit_code != 0) {
    EXPECT_HAS(fallback.err, "http://127.0.0.1:5000");
  }
}

TEST_F(CtlEnv, UsageErrorsExitTwoAndHelpZero) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"ctl"},
           {"ctl", "bogus"},
           {"ctl", "apply"},
           {"ctl", "--cacert", (dir_ / "missing.pem").string(), "get", "flows"},
           {"ctl", "get", "flows", "--request-timeout", "never"},
           {"--bogus-option"},
           {"token", "create", "--role", "admin"},
           {"completion"},
           {"completion", "zsh"}}) {
    auto r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << args.back();
  }
  // Only http:// and https://: never a file read or another protocol.
  for (const auto& [args, env] : std::vector<std::pair<std::vector<std::string>, EnvChanges>>{
           {{"ctl", "get", "flows", "--server", "file:///etc"}, {}},
           {{"ctl", "get", "flows"}, {{"SLUICE_URL", "ftp://127.0.0.1:1"}}},
           {{"ctl", "watch"}, {{"app_url", "gopher://127.0.0.1:1"}}}}) {
    auto r = sluice(args, env);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_HAS(r.err, " is not http:// or https:// (from --server, SLUICE_URL or app_url)");
    EXPECT_EQ(r.out, "");
  }
  auto help = sluice({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_HAS(help.out, "ctl");
  auto ctl_help = sluice({"ctl", "--help"});
  EXPECT_EQ(ctl_help.exit_code, 0);
  EXPECT_HAS(ctl_help.out, "apply");
  EXPECT_EQ(sluice({"ctl", "get", "flows", "--help"}).exit_code, 0);
}

// ---------------------------------------------------------------------------------------------
// HTTPS

TEST_F(CtlEnv, HttpsWithTheServersCertificate) {
  const fs::path certs = dir_ / "certs";
  fs::create_directories(certs);
  int rc = 0;
  shell("cd '" + certs.string() +
            "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
            "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
            "2>openssl.err",
        &rc);
  ASSERT_EQ(rc, 0) << readFile(certs / "openssl.err");
  server_.reset();
  startServer(
      {"--tls-cert", (certs / "cert.pem").string(), "--tls-key", (certs / "key.pem").string()});
  const std::string https = "https://127.0.0.1:" + std::to_string(server_->port());
  const std::string cacert = (certs / "cert.pem").string();
  auto created = runCli({"ctl", "--server", https, "--cacert", cacert, "apply", "-f", "-"},
                        dir_ / "cli", {}, R"({"flow_id":"secure"})");
  EXPECT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(created.out, "flow/secure created\n");
  auto listed = sluice({"ctl", "get", "flows", "--server", https}, {{"SLUICE_CACERT", cacert}});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_HAS(listed.out, "secure");
  // Without the certificate the server is not trusted.
  auto untrusted = sluice({"ctl", "get", "flows", "--server", https});
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_HAS(untrusted.err, "error: cannot reach " + https + ": ");
  EXPECT_HAS(untrusted.err, "certificate");
}

// ---------------------------------------------------------------------------------------------
// bash completion

class CtlCompletion : public CtlFixture {
 protected:
  // What the completion function offers for the command line `words` (the last one is the
  // word being completed, possibly empty).
  std::string complete(const std::string& script, const std::vector<std::string>& words) {
    std::string array;
    for (const auto& w : words) array += " '" + w + "'";
    int rc = 0;
    std::string out = shell(
        "bash -c 'source \"$0\"; COMP_WORDS=(\"$@\"); "
        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _sluice_complete; "
        "echo \"${COMPREPLY[*]}\"' '" +
            script + "'" + array + " 2>&1",
        &rc);
    EXPECT_EQ(rc, 0) << out;
    return trim(out);
  }
  // COMP_WORDS as bash makes them from a typed `line`: split at blanks, and at the characters
  // of COMP_WORDBREAKS, each run of which is a word of its own (of its default set only '='
  // and ':' occur here: `--output=y` is `--output` `=` `y`). The last word is the one being
  // completed (empty after a trailing blank).
  std::string completeLine(const std::string& script, const std::string& line) {
    std::vector<std::string> words;
    std::string word;
    bool breaks = false;
    for (char c : line) {
      const bool brk = c == '=' || c == ':';
      if (c == ' ' || brk != breaks) {
        if (!word.empty()) words.push_back(word);
        word.clear();
      }
      breaks = brk;
      if (c != ' ') word += c;
    }
    words.push_back(word);  // empty after a trailing blank
    return complete(script, words);
  }
};

TEST_F(CtlCompletion, TheScriptFollowsTheCommandLineDefinition) {
  auto r = sluice({"completion", "bash"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto same = sluice({"ctl", "completion", "bash"});
  EXPECT_EQ(same.out, r.out) << "both spellings print the same script";
  const std::string script = file("sluice.bash", r.out);

  int rc = 0;
  EXPECT_HAS(shell("bash -c 'source \"$0\" && complete -p sluice' '" + script + "'", &rc),
             "-F _sluice_complete sluice");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(complete(script, {"sluice", "ctl", "g"}), "get");
  EXPECT_EQ(complete(script, {"sluice", "ctl", "get", ""}), "flows flow status plugins nodes");
  EXPECT_EQ(complete(script, {"sluice", "ctl", "get", "flows", "-o", ""}), "table json yaml");
  // `--opt=value` as bash splits it (COMP_WORDBREAKS has '='): readline replaces the text
  // after the '=', so the values come bare.
  EXPECT_EQ(completeLine(script, "sluice ctl get flows --output=y"), "yaml");
  EXPECT_EQ(completeLine(script, "sluice ctl get flows --output="), "table json yaml");
  EXPECT_EQ(completeLine(script, "sluice ctl get --output=json fl"), "flows flow");
  EXPECT_EQ(completeLine(script, "sluice ctl --server=http://x:1 st"), "start stop");
  EXPECT_EQ(completeLine(script, "sluice --log-level=w"), "warn");
  // One word only when a user took '=' out of COMP_WORDBREAKS.
  EXPECT_EQ(complete(script, {"sluice", "ctl", "get", "flows", "--output=y"}), "--output=yaml");
  EXPECT_EQ(complete(script, {"sluice", "ctl", "get", "flows", "--o"}), "--output");
  EXPECT_EQ(complete(script, {"sluice", "ctl", "--server", "http://x:1", "st"}), "start stop");
  EXPECT_EQ(complete(script, {"sluice", "ctl", "stop", "--h"}), "--help --hard");
  EXPECT_EQ(complete(script, {"sluice", "ctl", "apply", "--d"}), "--dry-run");
  EXPECT_EQ(complete(script, {"sluice", "--log-level", "w"}), "warn");
  EXPECT_EQ(complete(script, {"sluice", "tok"}), "token");
  EXPECT_EQ(complete(script, {"sluice", "token", ""}), "create list revoke");

  // Every subcommand `sluice ctl --help` lists is offered.
  auto help = sluice({"ctl", "--help"});
  const std::string offered = " " + complete(script, {"sluice", "ctl", ""}) + " ";
  bool in_list = false;
  size_t listed = 0;
  for (const auto& line : lines(help.out)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list || line.empty()) continue;
    const std::string name = line.substr(2, line.find(' ', 2) - 2);
    ++listed;
    EXPECT_HAS(offered, " " + name + " ");
  }
  EXPECT_EQ(listed, 11u) << help.out;
}

}  // namespace
}  // namespace sluice::test
