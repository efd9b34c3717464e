// The bundled `exec` flow type, loaded from its .so through the harness: validation, results,
// output, signals for stop/pause/resume, timeout, environment, cwd, descriptors, process groups.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sluice/testing/harness.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using sluice::testing::Harness;
using sluice::testing::Problem;
using sluice::testing::Stop;

Harness load() { return Harness::load(EXEC_PLUGIN_PATH, "exec"); }

/// Polls `condition` every 10 ms for up to `limit`.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

/// Field 3 of /proc/<pid>/stat (the state: R, S, T, Z...), or '\0' when the process is gone.
char procState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return '\0';
  return text[close + 2];
}

/// Field 5 (the process group) of /proc/<pid>/stat, or -1.
long procGroup(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string state;
  long ppid = 0, pgrp = -1;
  rest >> state >> ppid >> pgrp;
  return pgrp;
}

/// The children of `pid` (/proc/<pid>/task/<pid>/children), as text.
std::string procChildren(pid_t pid) {
  const std::string id = std::to_string(pid);
  std::ifstream in("/proc/" + id + "/task/" + id + "/children");
  std::string text;
  std::getline(in, text);
  return text;
}

bool gone(pid_t pid) {
  const char state = procState(pid);
  return state == '\0' || state == 'Z';  // a zombie of another reaper is gone just as well
}

/// Waits for the "pid" gauge of a running child.
pid_t childPid(const Harness& h) {
  pid_t pid = 0;
  eventually([&] {
    const auto g = h.gauge("pid");
    pid = g ? static_cast<pid_t>(*g) : 0;
    return pid > 0;
  });
  return pid;
}

/// Starts `config`, waits for run() to end on its own and returns its outcome.
sluice::testing::Outcome runToEnd(Harness& h, const std::string& config) {
  const auto created = h.create(config);
  if (!created) return created;
  const auto started = h.start();
  if (!started) return started;
  if (!eventually([&] { return h.runEnded(); }, std::chrono::seconds(20))) {
    return {false, "run() did not end", 0};
  }
  return *h.runOutcome();
}

bool hasProblem(const std::vector<Problem>& problems, const std::string& path,
                const std::string& text) {
  for (const auto& p : problems) {
    if (p.path == path && p.message.find(text) != std::string::npos) return true;
  }
  return false;
}

class ExecPlugin : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("SLUICE_EXEC_ALLOW", "/usr/bin,/bin", 1); }
  void TearDown() override { ::unsetenv("SLUICE_EXEC_ALLOW"); }
};

TEST_F(ExecPlugin, DeclaresADedicatedThreadTypeWithASchema) {
  auto h = load();
  EXPECT_EQ(h.type().flags & SLUICE_FLOW_DEDICATED_THREAD, SLUICE_FLOW_DEDICATED_THREAD);
  ASSERT_NE(h.type().config_schema, nullptr);
  EXPECT_TRUE(h.validate(R"({"argv": ["/bin/echo", "hi"]})").empty());
  EXPECT_TRUE(h.validate(R"({"argv": ["echo"], "env": {"A": "1"}, "cwd": "sub",
      "timeout": "10m", "success_codes": [0, 3]})")
                  .empty());
}

TEST_F(ExecPlugin, RefusesBadArgv) {
  auto h = load();
  EXPECT_FALSE(h.validate(R"({})").empty());            // missing (schema: required)
  EXPECT_FALSE(h.validate(R"({"argv": []})").empty());  // empty (schema: minItems)
  auto p = h.validate(R"({"argv": ["bin/run"]})");
  EXPECT_TRUE(hasProblem(p, "/argv/0", "relative path")) << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["nosuchcmd-sluice"]})");
  EXPECT_TRUE(hasProblem(p, "/argv/0", "executable 'nosuchcmd-sluice' not found on PATH ("))
      << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/usr/bin/no-such-file-sluice"]})");
  EXPECT_TRUE(hasProblem(p, "/argv/0", "'/usr/bin/no-such-file-sluice' does not exist"))
      << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/usr/bin"]})");
  EXPECT_TRUE(hasProblem(p, "/argv/0", "not a regular file")) << ::testing::PrintToString(p);
}

TEST_F(ExecPlugin, RefusesExecutablesOutsideTheAllowList) {
  auto h = load();
  const auto script = h.filesRoot() / "run.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  ::chmod(script.c_str(), 0755);
  auto p = h.validate(R"({"argv": [")" + script.string() + R"("]})");
  EXPECT_TRUE(hasProblem(p, "/argv/0", "not in a directory the engine allows"))
      << ::testing::PrintToString(p);
  ::setenv("SLUICE_EXEC_ALLOW", h.filesRoot().c_str(), 1);
  EXPECT_TRUE(h.validate(R"({"argv": [")" + script.string() + R"("]})").empty());
  // A path that leaves the directory lexically is judged where it leads.
  p = h.validate(R"({"argv": [")" + h.filesRoot().string() + R"(/../../bin/echo"]})");
  EXPECT_TRUE(hasProblem(p, "/argv/0", "not in a directory the engine allows"))
      << ::testing::PrintToString(p);
}

TEST_F(ExecPlugin, IsOffWithoutAnAllowList) {
  auto h = load();
  ::unsetenv("SLUICE_EXEC_ALLOW");
  auto p = h.validate(R"({"argv": ["/bin/echo"]})");
  EXPECT_TRUE(hasProblem(p, "/argv/0", "off until an operator starts the engine with --exec-allow"))
      << ::testing::PrintToString(p);
  ::setenv("SLUICE_EXEC_ALLOW", "", 1);
  EXPECT_TRUE(hasProblem(h.validate(R"({"argv": ["/bin/echo"]})"), "/argv/0", "--exec-allow"));
}

TEST_F(ExecPlugin, RefusesBadMembers) {
  auto h = load();
  auto p = h.validate(R"({"argv": ["/bin/echo"], "env": {"A=B": "x"}})");
  EXPECT_TRUE(hasProblem(p, "/env/A=B", "must not contain '='")) << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/bin/echo"], "env": {"": "x"}})");
  EXPECT_TRUE(hasProblem(p, "/env/", "must not be empty")) << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/bin/echo"], "cwd": "../x"})");
  EXPECT_TRUE(hasProblem(p, "/cwd", "'..'")) << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/bin/echo"], "cwd": "/tmp"})");
  EXPECT_TRUE(hasProblem(p, "/cwd", "absolute")) << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/bin/echo"], "timeout": "10 minutes"})");
  EXPECT_TRUE(hasProblem(p, "/timeout", "not a duration")) << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/bin/echo"], "timeout": "0s"})");
  EXPECT_TRUE(hasProblem(p, "/timeout", "longer than 0")) << ::testing::PrintToString(p);
  p = h.validate(R"({"argv": ["/bin/echo"], "success_codes": [0, 256]})");
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(p.at(0).path, "/success_codes/1");  // the schema's maximum
  EXPECT_FALSE(h.validate(R"({"argv": ["/bin/echo"], "success_codes": []})").empty());
  p = h.validate(R"({"argv": ["/bin/echo"], "shell": true})");
  EXPECT_TRUE(hasProblem(p, "/shell", "unknown member 'shell'")) << ::testing::PrintToString(p);
}

TEST_F(ExecPlugin, EchoCompletesWithItsOutput) {
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["/bin/echo", "hello"]})");
  EXPECT_TRUE(outcome.ok && outcome.done) << outcome;
  EXPECT_EQ(h.output(SLUICE_OUTPUT_STDOUT), "hello\n");
  EXPECT_EQ(h.output(SLUICE_OUTPUT_STDERR), "");
  EXPECT_EQ(h.counter("runs"), 1);
  EXPECT_EQ(h.counter("bytes_out"), 6);
  EXPECT_EQ(h.gauge("exit_code"), 0.0);
  EXPECT_EQ(h.gauge("pid"), 0.0);
  EXPECT_TRUE(h.stop(Stop::kSoft));
}

TEST_F(ExecPlugin, BareNameIsFoundOnPath) {
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["echo", "found"]})");
  EXPECT_TRUE(outcome.done) << outcome;
  EXPECT_EQ(h.output(), "found\n");
}

TEST_F(ExecPlugin, CapturesStderr) {
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["/bin/sh", "-c", "echo oops >&2"]})");
  EXPECT_TRUE(outcome.done) << outcome;
  EXPECT_EQ(h.output(SLUICE_OUTPUT_STDERR), "oops\n");
  EXPECT_EQ(h.output(SLUICE_OUTPUT_STDOUT), "");
}

TEST_F(ExecPlugin, NonSuccessExitCodeFails) {
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["/bin/sh", "-c", "exit 3"]})");
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error, "exited with code 3 (success codes: 0)");
  EXPECT_EQ(h.gauge("exit_code"), 3.0);
}

TEST_F(ExecPlugin, SuccessCodesAreConfigurable) {
  auto h = load();
  const auto outcome =
      runToEnd(h, R"({"argv": ["/bin/sh", "-c", "exit 3"], "success_codes": [1, 3]})");
  EXPECT_TRUE(outcome.done) << outcome;
}

TEST_F(ExecPlugin, KilledBySignalFails) {
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["/bin/sh", "-c", "kill -9 $$"]})");
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error, "killed by signal 9 (SIGKILL)");
}

TEST_F(ExecPlugin, AnExecFailureFailsTheRun) {
  auto h = load();
  const auto script = h.filesRoot() / "noexec";
  std::ofstream(script) << "not a program\n";
  ::chmod(script.c_str(), 0755);
  ::setenv("SLUICE_EXEC_ALLOW", h.filesRoot().c_str(), 1);
  const auto outcome = runToEnd(h, R"({"argv": [")" + script.string() + R"("]})");
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.error, "cannot run '" + script.string() + "': Exec format error");
  EXPECT_EQ(h.counter("runs"), 0);
}

TEST_F(ExecPlugin, TimeoutKillsTheGroup) {
  auto h = load();
  ASSERT_TRUE(h.create(R"({"argv": ["/bin/sleep", "5"], "timeout": "200ms"})"));
  ASSERT_TRUE(h.start());
  const pid_t pid = childPid(h);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(eventually([&] { return h.runEnded(); }));
  EXPECT_EQ(h.runOutcome()->error, "timed out after 200ms (the process group was killed)");
  EXPECT_TRUE(gone(pid));
}

TEST_F(ExecPlugin, SoftStopSendsSigterm) {
  auto h = load();
  ASSERT_TRUE(h.create(R"({"argv": ["/bin/sleep", "30"]})"));
  ASSERT_TRUE(h.start());
  const pid_t pid = childPid(h);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(h.stop(Stop::kSoft));
  ASSERT_TRUE(h.runOutcome().has_value());
  EXPECT_TRUE(h.runOutcome()->ok);
  EXPECT_FALSE(h.runOutcome()->done);
  // 143, not 137: SIGTERM ended it, before the harness's stop timeout raised cancellation.
  EXPECT_EQ(h.gauge("exit_code"), 128.0 + SIGTERM);
  EXPECT_TRUE(gone(pid));
}

TEST_F(ExecPlugin, ChildIgnoringSigtermIsKilledOnCancellation) {
  auto h = load();
  h.setStopTimeout(std::chrono::milliseconds(300));
  ASSERT_TRUE(h.create(R"({"argv": ["/bin/sh", "-c", "trap '' TERM; sleep 30; exit 0"]})"));
  ASSERT_TRUE(h.start());
  const pid_t pid = childPid(h);
  ASSERT_GT(pid, 0);
  // The shell sets its trap before it forks sleep: once it has a child, SIGTERM is ignored.
  ASSERT_TRUE(eventually([&] { return !procChildren(pid).empty(); }));
  EXPECT_TRUE(h.stop(Stop::kSoft));
  ASSERT_TRUE(h.runOutcome().has_value());
  EXPECT_TRUE(h.runOutcome()->ok) << *h.runOutcome();
  EXPECT_EQ(h.gauge("exit_code"), 128.0 + SIGKILL);
  EXPECT_TRUE(gone(pid));
}

TEST_F(ExecPlugin, PauseStopsAndResumeContinuesTheChild) {
  auto h = load();
  ASSERT_TRUE(h.create(R"({"argv": ["/bin/sleep", "30"]})"));
  ASSERT_TRUE(h.start());
  const pid_t pid = childPid(h);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(h.pause());
  EXPECT_TRUE(eventually([&] { return procState(pid) == 'T'; }));
  ASSERT_TRUE(h.resume());
  EXPECT_TRUE(eventually([&] { return procState(pid) != 'T'; }));
  EXPECT_TRUE(h.stop(Stop::kSoft));
  EXPECT_TRUE(h.runOutcome()->ok);
}

TEST_F(ExecPlugin, SoftStopOfAPausedChildTerminatesIt) {
  auto h = load();
  ASSERT_TRUE(h.create(R"({"argv": ["/bin/sleep", "30"]})"));
  ASSERT_TRUE(h.start());
  const pid_t pid = childPid(h);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(h.pause());
  ASSERT_TRUE(eventually([&] { return procState(pid) == 'T'; }));
  EXPECT_TRUE(h.stop(Stop::kSoft));  // SIGTERM, then SIGCONT so that it is delivered
  EXPECT_TRUE(h.runOutcome()->ok) << *h.runOutcome();
  EXPECT_EQ(h.gauge("exit_code"), 128.0 + SIGTERM);  // not the escalation's SIGKILL
}

TEST_F(ExecPlugin, EnvironmentIsTheConfigsNotTheEngines) {
  ::setenv("SLUICE_EXEC_TEST_MARKER", "leaked", 1);
  auto h = load();
  const auto outcome =
      runToEnd(h, R"({"argv": ["/usr/bin/env"], "env": {"FOO": "bar", "HOME": "/nowhere"}})");
  ::unsetenv("SLUICE_EXEC_TEST_MARKER");
  EXPECT_TRUE(outcome.done) << outcome;
  const std::string out = "\n" + h.output();
  EXPECT_NE(out.find("\nFOO=bar\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nHOME=/nowhere\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nSLUICE_FLOW_ID=" + h.flowId() + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nPATH=" + std::string(std::getenv("PATH")) + "\n"), std::string::npos);
  EXPECT_EQ(out.find("SLUICE_EXEC_TEST_MARKER"), std::string::npos) << out;
  EXPECT_EQ(out.find("SLUICE_EXEC_ALLOW"), std::string::npos) << out;
}

TEST_F(ExecPlugin, CwdIsUnderTheFilesRoot) {
  auto h = load();
  std::filesystem::create_directories(h.filesRoot() / "work" / "sub");
  auto outcome = runToEnd(h, R"({"argv": ["/bin/pwd"], "cwd": "work/sub/"})");
  EXPECT_TRUE(outcome.done) << outcome;
  EXPECT_EQ(h.output(), (h.filesRoot() / "work" / "sub").string() + "\n");

  auto root = load();
  outcome = runToEnd(root, R"({"argv": ["/bin/pwd"]})");
  EXPECT_TRUE(outcome.done) << outcome;
  EXPECT_EQ(root.output(), root.filesRoot().string() + "\n");

  auto missing = load();
  ASSERT_TRUE(missing.create(R"({"argv": ["/bin/pwd"], "cwd": "absent"})"));
  EXPECT_FALSE(missing.start());
}

TEST_F(ExecPlugin, NoDescriptorOfTheEngineLeaks) {
  const int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaky, 3);
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["/bin/sh", "-c", "ls /proc/$$/fd; exit 0"]})");
  ::close(leaky);
  EXPECT_TRUE(outcome.done) << outcome;
  std::set<std::string> fds;
  std::istringstream lines(h.output());
  for (std::string line; std::getline(lines, line);) fds.insert(line);
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2"})) << h.output();
}

TEST_F(ExecPlugin, ChildLeadsItsOwnProcessGroup) {
  auto h = load();
  ASSERT_TRUE(h.create(R"({"argv": ["/bin/sleep", "30"]})"));
  ASSERT_TRUE(h.start());
  const pid_t pid = childPid(h);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(procGroup(pid), pid);
  EXPECT_NE(procGroup(pid), static_cast<long>(::getpgrp()));
  EXPECT_TRUE(h.stop(Stop::kSoft));
}

TEST_F(ExecPlugin, GrandchildrenDieWithTheLeader) {
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["/bin/sh", "-c", "sleep 30 & echo $!"]})");
  EXPECT_TRUE(outcome.done) << outcome;
  const pid_t grandchild = static_cast<pid_t>(std::atol(h.output().c_str()));
  ASSERT_GT(grandchild, 0) << h.output();
  EXPECT_TRUE(eventually([&] { return gone(grandchild); }));
}

TEST_F(ExecPlugin, NonUtf8BytesPassThroughRaw) {
  auto h = load();
  const auto outcome = runToEnd(h, R"({"argv": ["/usr/bin/printf", "a\\377b"]})");
  EXPECT_TRUE(outcome.done) << outcome;
  EXPECT_EQ(h.output(), std::string("a\xff"
                                    "b"));
}

TEST_F(ExecPlugin, PauseBeforeTheChildExistsStopsItAtOnce) {
  auto h = load();
  ASSERT_TRUE(h.create(R"({"argv": ["/bin/sleep", "30"], "timeout": "300ms"})"));
  ASSERT_TRUE(h.pause());  // the harness raises pauseRequested(); no child yet
  ASSERT_TRUE(h.start());
  const pid_t pid = childPid(h);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(eventually([&] { return procState(pid) == 'T'; }));
  // Paused time does not count against the timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_FALSE(h.runEnded());
  ASSERT_TRUE(h.resume());
  ASSERT_TRUE(eventually([&] { return h.runEnded(); }));
  EXPECT_NE(h.runOutcome()->error.find("timed out after 300ms"), std::string::npos)
      << *h.runOutcome();
}

}  // namespace
