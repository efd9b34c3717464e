// The bundled `exec` flow type (issue #12) in the real binary: off until --exec-allow, a run's
// output in the flow's log (GET /flows/{id}/logs), exit results, the lifecycle as signals, no
// descriptor of the engine in the child, the child dying with the engine, and only editors
// creating such flows. The plugin's own cases are in tests/unit/plugins/exec_plugin_test.cpp.
#include <signal.h>

#include <fstream>
#include <regex>
#include <string>

#include "fakes/api_fixture.hpp"
#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

/// Field 3 of /proc/<pid>/stat (R, S, T, Z...), or '\0' when the process is gone.
char procState(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return '\0';
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '\0' : stat[paren + 2];
}
bool gone(int64_t pid) {
  const char s = procState(pid);
  return s == '\0' || s == 'Z';  // a zombie of pid 1 (the container's init reaps lazily)
}

/// A JSON string literal of `s` (quotes and backslashes escaped).
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string execFlow(const std::string& id, const std::vector<std::string>& argv,
                     const std::string& more_config = "", const std::string& runtime = "") {
  std::string args;
  for (const auto& a : argv) args += (args.empty() ? "" : ",") + quoted(a);
  std::string s = R"({"flow_id":")" + id + R"(","type":"exec","config":{"argv":[)" + args + "]" +
                  more_config + "}";
  if (!runtime.empty()) s += R"(,"runtime":)" + runtime;
  return s + "}";
}

class ExecFlow : public ApiFixture {
 protected:
  /// The gauge `name` of `id` (-1 when it has none).
  int64_t gauge(const std::string& id, const char* name) {
    auto doc = statusDoc(id);
    if (!doc.IsObject() || !doc["metrics"].IsObject()) return -1;
    auto m = doc["metrics"].FindMember(name);
    return m == doc["metrics"].MemberEnd() || !m->value.IsNumber()
               ? -1
               : static_cast<int64_t>(m->value.GetDouble());
  }
  /// The gauge `pid` of `id`: its child's pid while it runs.
  int64_t pidOf(const std::string& id) { return gauge(id, "pid"); }
  void SetUp() override {
    ApiFixture::SetUp();  // a server without --exec-allow: the type is off
  }
  void allowExec(std::vector<std::string> more = {}) {
    server_.reset();
    std::vector<std::string> args = {"--exec-allow", "/usr/bin,/bin"};
    args.insert(args.end(), more.begin(), more.end());
    startServer(args);
  }
  void create(const std::string& flow) {
    auto r = post("/flows", "[" + flow + "]");
    ASSERT_EQ(r.status, 201) << r.body;
  }
  void command(const std::string& c, const std::string& id, const std::string& extra = "") {
    auto r = patch(R"({"command":")" + c + R"(","flow_ids":[")" + id + "\"]" + extra + "}");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  bool waitState(const std::string& id, const std::string& state) {
    return waitFor([&] { return statusOf(id) == state; }, 30s);
  }
  /// The log of `id` as JSON lines.
  rapidjson::Document logs(const std::string& id, const std::string& query = "") {
    auto r = get("/flows/" + id + "/logs" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return parseJson(r.body);
  }
  /// stream + " " + text of each line.
  std::vector<std::string> logLines(const std::string& id, const std::string& query = "") {
    std::vector<std::string> out;
    auto doc = logs(id, query);
    if (!doc.IsObject() || !doc["lines"].IsArray()) return out;
    for (const auto& l : doc["lines"].GetArray()) {
      out.push_back(std::string(l["stream"].GetString()) + " " + l["text"].GetString());
    }
    return out;
  }
  bool logHas(const std::string& id, const std::string& line) {
    auto lines = logLines(id);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
  }
};

TEST_F(ExecFlow, IsOffUntilAnOperatorAllowsDirectories) {
  auto r = post("/flows", "[" + execFlow("job", {"/bin/echo", "hi"}) + "]");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("/config/argv/0"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("--exec-allow"), std::string::npos) << r.body;
  allowExec();
  r = post("/flows", "[" + execFlow("job", {"nosuchcommand-sluice"}) + "]");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("executable 'nosuchcommand-sluice' not found on PATH"), std::string::npos)
      << r.body;
  r = post("/flows", "[" + execFlow("job", {"/usr/sbin/nologin"}) + "]");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("/config/argv/0"), std::string::npos) << r.body;
  EXPECT_EQ(get("/flows/job").status, 404);
  create(execFlow("job", {"echo", "hi"}));  // found on the engine's PATH, in /usr/bin or /bin
}

TEST_F(ExecFlow, RunsToCompletionAndServesItsOutputAsTheFlowsLog) {
  allowExec();
  create(
      execFlow("job", {"/bin/sh", "-c", "echo hello; echo oops >&2; printf 'raw \\377 byte\\n'"}));
  create(
      execFlow("isolated", {"/bin/echo", "from a host process"}, "", R"({"isolation":"process"})"));
  command("start", "job");
  command("start", "isolated");
  ASSERT_TRUE(waitState("job", "completed"));
  ASSERT_TRUE(waitState("isolated", "completed"));
  auto s = statusDoc("job");
  EXPECT_EQ(memberText(s["last_run"], "result"), "succeeded");
  EXPECT_EQ(memberText(s, "desired"), "stopped");
  // Each stream's lines in order; the byte that is not UTF-8 escaped.
  auto doc = logs("job");
  ASSERT_TRUE(doc["lines"].IsArray()) << memberText(doc, "lines");
  ASSERT_EQ(doc["lines"].Size(), 3u);
  EXPECT_EQ(memberText(doc, "flow_id"), "job");
  EXPECT_TRUE(logHas("job", "stdout hello"));
  EXPECT_TRUE(logHas("job", "stderr oops"));
  EXPECT_TRUE(logHas("job", "stdout raw \\xff byte"));
  const std::regex time(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)");
  for (const auto& l : doc["lines"].GetArray()) {
    EXPECT_TRUE(std::regex_match(std::string(l["time"].GetString()), time))
        << l["time"].GetString();
  }
  EXPECT_TRUE(logHas("isolated", "stdout from a host process"));
  // ?tail=N: the last N lines; plain text on request.
  command("start", "isolated");
  ASSERT_TRUE(waitFor([&] { return logLines("isolated").size() == 2; }, 30s));
  EXPECT_EQ(logLines("isolated", "?tail=1").size(), 1u);
  auto text =
      requestWith(server_->port(), "GET", "/flows/isolated/logs?tail=5", {"Accept: text/plain"});
  EXPECT_EQ(text.status, 200);
  EXPECT_NE(text.header("content-type").find("text/plain"), std::string::npos);
  EXPECT_TRUE(std::regex_search(text.body, std::regex(R"(Z stdout from a host process\n)")))
      << text.body;
  for (const char* bad : {"?tail=0", "?tail=abc", "?tail=10001", "?tail=-1"}) {
    auto r = get(std::string("/flows/job/logs") + bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_NE(r.body.find("tail must be a whole number"), std::string::npos) << r.body;
  }
  EXPECT_EQ(get("/flows/nope/logs").status, 404);
  // Deleting the flow deletes its log.
  EXPECT_EQ(del("/flows/job").status, 200);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "data" / "logs" / "job.log"));
}

TEST_F(ExecFlow, AFailingExitOrSignalFailsTheRunNamingIt) {
  allowExec();
  create(execFlow("exit3", {"/bin/sh", "-c", "exit 3"}));
  create(execFlow("killed", {"/bin/sh", "-c", "kill -9 $$"}));
  create(execFlow("ok3", {"/bin/sh", "-c", "exit 3"}, R"(,"success_codes":[3])"));
  create(execFlow("slow", {"/bin/sleep", "30"}, R"(,"timeout":"300ms")"));
  for (const char* id : {"exit3", "killed", "ok3", "slow"}) command("start", id);
  ASSERT_TRUE(waitState("exit3", "failed"));
  EXPECT_NE(memberText(statusDoc("exit3"), "error").find("exited with code 3"), std::string::npos);
  EXPECT_EQ(memberText(statusDoc("exit3")["last_run"], "result"), "failed");
  ASSERT_TRUE(waitState("killed", "failed"));
  EXPECT_NE(memberText(statusDoc("killed"), "error").find("killed by signal 9 (SIGKILL)"),
            std::string::npos);
  ASSERT_TRUE(waitState("ok3", "completed"));
  ASSERT_TRUE(waitState("slow", "failed"));
  EXPECT_NE(memberText(statusDoc("slow"), "error").find("timed out after 300ms"),
            std::string::npos);
}

// pause = SIGSTOP, resume = SIGCONT, soft stop = SIGTERM, hard stop = SIGKILL to the group.
TEST_F(ExecFlow, TheLifecycleIsMappedToSignals) {
  allowExec();
  create(execFlow("sleeper", {"/bin/sleep", "300"}));
  command("start", "sleeper");
  ASSERT_TRUE(waitState("sleeper", "running"));
  ASSERT_TRUE(waitFor([&] { return pidOf("sleeper") > 0; }, 30s));
  const int64_t pid = pidOf("sleeper");
  command("pause", "sleeper");
  ASSERT_TRUE(waitFor([&] { return procState(pid) == 'T'; }, 30s));
  command("resume", "sleeper");
  ASSERT_TRUE(waitFor([&] { return procState(pid) == 'S' || procState(pid) == 'R'; }, 30s));
  command("stop", "sleeper");
  ASSERT_TRUE(waitState("sleeper", "stopped"));
  EXPECT_TRUE(gone(pid));
  EXPECT_EQ(memberText(statusDoc("sleeper")["last_run"], "result"), "cancelled");
  EXPECT_EQ(gauge("sleeper", "exit_code"), 128 + SIGTERM) << "a soft stop sends SIGTERM";
  // A child that ignores SIGTERM: the soft stop's timeout passes, then SIGKILL.
  create(execFlow("stubborn", {"/bin/sh", "-c", "trap '' TERM; /bin/sleep 300"}, "",
                  R"({"stop_timeout_ms":300})"));
  command("start", "stubborn");
  ASSERT_TRUE(waitFor([&] { return pidOf("stubborn") > 0; }, 30s));
  const int64_t stubborn = pidOf("stubborn");
  auto r = patch(R"({"command":"stop","flow_ids":["stubborn"]})");
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(waitFor([&] { return gone(stubborn); }, 30s));
  ASSERT_TRUE(waitState("stubborn", "stopped"));
  EXPECT_EQ(gauge("stubborn", "exit_code"), 128 + SIGKILL) << "SIGTERM was ignored: SIGKILL";
  // A hard stop kills the whole group at once: the leader and what it started.
  create(execFlow("family", {"/bin/sh", "-c", "/bin/sleep 300 & echo $!; wait"}));
  command("start", "family");
  ASSERT_TRUE(waitFor([&] { return !logLines("family").empty(); }, 30s));
  const int64_t leader = pidOf("family");
  const int64_t grandchild = std::stoll(logLines("family").at(0).substr(7));  // "stdout <pid>"
  ASSERT_FALSE(gone(grandchild));
  command("stop", "family", R"(,"type":1)");
  ASSERT_TRUE(waitState("family", "stopped"));
  EXPECT_TRUE(gone(leader));
  EXPECT_TRUE(waitFor([&] { return gone(grandchild); }, 30s));
  EXPECT_EQ(gauge("family", "exit_code"), 128 + SIGKILL);
}

// The child holds no descriptor of the engine (its sockets, its database), and dies with it.
TEST_F(ExecFlow, TheChildInheritsNoDescriptorAndDiesWithTheEngine) {
  allowExec();
  create(execFlow("fds", {"/bin/ls", "/proc/self/fd"}));
  command("start", "fds");
  ASSERT_TRUE(waitState("fds", "completed"));
  // 0, 1, 2 and the directory ls reads.
  auto lines = logLines("fds");
  EXPECT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  create(execFlow("orphan", {"/bin/sleep", "300"}));
  command("start", "orphan");
  ASSERT_TRUE(waitFor([&] { return pidOf("orphan") > 0; }, 30s));
  const int64_t pid = pidOf("orphan");
  EXPECT_FALSE(gone(pid));
  server_->kill(SIGKILL);
  EXPECT_TRUE(waitFor([&] { return gone(pid); }, 30s)) << "the child outlived the engine";
}

TEST_F(ExecFlow, TheLogIsBoundedAndRotates) {
  allowExec({"--flow-log-bytes", "4096"});
  create(execFlow("chatty", {"/usr/bin/seq", "1", "3000"}));
  command("start", "chatty");
  ASSERT_TRUE(waitState("chatty", "completed"));
  auto lines = logLines("chatty", "?tail=10000");
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "stdout 3000");
  EXPECT_NE(lines.front(), "stdout 1") << "the oldest lines were rotated away";
  const auto logs_dir = dir_ / "data" / "logs";
  EXPECT_LE(std::filesystem::file_size(logs_dir / "chatty.log"), 4096u);
  EXPECT_LE(std::filesystem::file_size(logs_dir / "chatty.log.1"), 4096u);
}

// Arbitrary command execution: only editors (and admins) create exec flows; operators run them.
class ExecRoles : public SecureServer {};

TEST_F(ExecRoles, OnlyEditorsCreateExecFlows) {
  admin_ = cliToken("root", "admin");
  const std::string op = cliToken("ops", "operator");
  const std::string editor = cliToken("dev", "editor");
  startServer({"--exec-allow", "/bin"});
  const std::string flow = "[" + execFlow("job", {"/bin/true"}) + "]";
  expect403(call(op, "POST", "/flows", flow), "editor", "an operator creating an exec flow");
  expect403(call(op, "PUT", "/flows/job", execFlow("job", {"/bin/true"})), "editor",
            "an operator replacing a flow with an exec flow");
  auto r = call(editor, "POST", "/flows", flow);
  EXPECT_EQ(r.status, 201) << r.body;
  r = call(op, "PATCH", "/flows/commands", R"({"command":"start","flow_ids":["job"]})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(waitFor([&] { return flowStatus("job") == "completed"; }, 30s));
}

}  // namespace
}  // namespace sluice::test
