// Fault containment: plugins that crash, abort, exit, hang, leak or throw, in both isolation
// modes where the fault is survivable. For each: the flow's resulting state and error, the
// engine still answering, and another flow still running (its counter advancing).
#include <signal.h>

#include <set>

#include "fakes/api_fixture.hpp"
#include "fakes/proc.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

struct Case {
  std::string in;       // hook
  std::string what;     // fault
  std::string expect;   // substring of the flow's error
  std::string trigger;  // "start", "step" (start, then wait), "stop", "pause", "resume", "hardstop"
  std::string runtime;  // extra runtime members
};

// An exception in every hook, and an error status: contained in both isolations.
const std::vector<Case> kExceptionCases = {
    {"create", "throw", "injected exception in create", "start", ""},
    {"start", "throw", "injected exception in start", "start", ""},
    {"step", "throw", "injected exception in step", "step", ""},
    {"stop", "throw", "injected exception in stop", "stop", ""},
    {"pause", "throw", "injected exception in pause", "pause", ""},
    {"resume", "throw", "injected exception in resume", "resume", ""},
    {"step", "error", "injected error in step", "step", ""},
};

class FaultMatrixTest : public ApiFixture {
 protected:
  void SetUp() override {
    ApiFixture::SetUp();
    ASSERT_EQ(
        post("/flows", R"([{"flow_id":"witness","type":"ticker","config":{"interval_ms":5}}])")
            .status,
        201);
    ASSERT_EQ(patch(R"({"command":"start","flow_ids":["witness"]})").status, 200);
  }

  // Runs one case and checks its outcome; returns the flow's error.
  void runCase(const Case& c, const std::string& isolation, int n) {
    SCOPED_TRACE(isolation + ": " + c.what + " in " + c.in);
    const std::string id = "f" + std::to_string(n);
    std::string runtime = R"({"isolation":")" + isolation + "\"" + c.runtime + "}";
    auto r = post("/flows", R"([{"flow_id":")" + id + R"(","type":"fault","config":{"in":")" +
                                c.in + R"(","do":")" + c.what + R"(","hang_ms":3000},"runtime":)" +
                                runtime + "}]");
    ASSERT_EQ(r.status, 201) << r.body;
    std::string start = R"({"command":"start","flow_ids":[")" + id + R"("]})";
    if (c.trigger == "start") {
      r = patch(start);
      ASSERT_EQ(r.status, 200) << r.body;
    } else {
      r = patch(start);
      ASSERT_EQ(r.status, 200);
      if (c.trigger == "stop") r = patch(R"({"command":"stop","flow_ids":[")" + id + R"("]})");
      if (c.trigger == "hardstop") {
        waitFor([&] { return metric(id, "steps") >= 1; }, 10s);
        r = patch(R"({"command":"stop","type":1,"flow_ids":[")" + id + R"("]})");
      }
      if (c.trigger == "pause" || c.trigger == "resume")
        r = patch(R"({"command":"pause","flow_ids":[")" + id + R"("]})");
      if (c.trigger == "resume") r = patch(R"({"command":"resume","flow_ids":[")" + id + R"("]})");
      ASSERT_EQ(r.status, 200) << r.body;
    }
    ASSERT_TRUE(waitFor([&] { return statusOf(id) == "failed"; }, 20s)) << statusOf(id);
    auto s = parseJson(get("/flows/status/" + id).body);
    std::string error = s["error"].GetString();
    EXPECT_NE(error.find(c.expect), std::string::npos) << error;
    if (c.in != "create") {
      EXPECT_NE(error.find(c.in), std::string::npos) << "error names the hook: " << error;
    }
    // the engine answers, and the witness keeps running
    EXPECT_EQ(get("/flows/status").status, 200);
    int64_t ticks = metric("witness", "ticks");
    EXPECT_TRUE(waitFor([&] { return metric("witness", "ticks") > ticks + 3; }, 10s));
    // a failed flow can be stopped and deleted
    EXPECT_EQ(patch(R"({"command":"stop","flow_ids":[")" + id + R"("]})").status, 200);
    EXPECT_EQ(del("/flows/" + id).status, 200);
  }
};

TEST_F(FaultMatrixTest, ProcessIsolationContainsEveryFault) {
  // One process-isolated flow started and deleted first: the descriptors that process isolation
  // keeps for the engine's life (the zygote's socket, the host reactor's epoll and eventfd) are
  // then open, and the count after the matrix must come back to this one.
  ASSERT_EQ(
      post("/flows", R"([{"flow_id":"warm","type":"ticker","runtime":{"isolation":"process"}}])")
          .status,
      201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["warm"]})").status, 200);
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["warm"]})").status, 200);
  ASSERT_EQ(del("/flows/warm").status, 200);
  ASSERT_TRUE(waitFor([&] { return flowHosts(server_->pid()).empty(); }, 10s));
  const int fds_before = openFds(server_->pid());
  const std::vector<Case> cases = {
      {"create", "segv", "SIGSEGV", "start", ""},
      {"start", "segv", "SIGSEGV", "start", ""},
      {"step", "segv", "SIGSEGV", "step", ""},
      {"stop", "segv", "SIGSEGV", "stop", ""},
      {"pause", "segv", "SIGSEGV", "pause", ""},
      {"resume", "segv", "SIGSEGV", "resume", ""},
      {"step", "abort", "SIGABRT", "step", ""},
      {"start", "abort", "SIGABRT", "start", ""},
      {"step", "exit0", "exited with code 0", "step", ""},
      {"stop", "exit0", "exited with code 0", "stop", ""},
      {"start", "hang", "killed (SIGKILL)", "start", R"(,"start_timeout_ms":300)"},
      {"create", "hang", "killed (SIGKILL)", "start", R"(,"start_timeout_ms":300)"},
      {"destroy", "hang", "killed (SIGKILL)", "stop", R"(,"stop_timeout_ms":200)"},
      {"destroy", "segv", "SIGSEGV", "stop", ""},
      {"step", "hang", "killed (SIGKILL)", "hardstop", ""},
      {"stop", "hang", "killed (SIGKILL)", "stop", R"(,"stop_timeout_ms":200)"},
      {"step", "hog", "memory_limit_mb", "step", R"(,"memory_limit_mb":256)"},
  };
  int n = 0;
  for (const auto& c : cases) runCase(c, "process", n++);
  for (const auto& c : kExceptionCases) runCase(c, "process", n++);
  // every host process is gone, none left as a zombie, no descriptor leaked
  EXPECT_TRUE(waitFor([&] { return flowHosts(server_->pid()).empty(); }, 10s));
  for (const auto& [pid, state, cmd] : flowHosts(server_->pid())) {
    ADD_FAILURE() << "child " << pid << " (" << cmd << ") left in state " << state;
  }
  EXPECT_TRUE(waitFor([&] { return openFds(server_->pid()) <= fds_before; }, 10s))
      << openFds(server_->pid()) << " descriptors open, " << fds_before << " before";
}

TEST_F(FaultMatrixTest, ThreadIsolationContainsWhatItCan) {
  // A crash cannot be contained in-process (docs/isolation.md); exceptions, errors and hangs can.
  const std::vector<Case> cases = {
      {"start", "hang", "did not finish within 300 ms", "start", R"(,"start_timeout_ms":300)"},
      {"create", "hang", "did not finish within 300 ms", "start", R"(,"start_timeout_ms":300)"},
      {"destroy", "hang", "still running after the hard stop", "stop", R"(,"stop_timeout_ms":200)"},
      {"step", "hang", "still running after the hard stop", "hardstop", ""},
  };
  int n = 100;
  for (const auto& c : kExceptionCases) runCase(c, "thread", n++);
  for (const auto& c : cases) runCase(c, "thread", n++);
}

TEST_F(FaultMatrixTest, HostProcessesEndWithTheEngine) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"a","type":"ticker","runtime":{"isolation":"process"}},
                               {"flow_id":"b","type":"probe-thread","runtime":{"isolation":"process"}}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["a","b"]})").status, 200);
  auto hosts = flowHosts(server_->pid());
  ASSERT_EQ(hosts.size(), 2u);
  // graceful shutdown ends them
  EXPECT_EQ(server_->kill(SIGTERM), 0);
  for (const auto& [pid, state, cmd] : hosts) {
    EXPECT_TRUE(waitFor([pid = pid] { return ::kill(pid, 0) != 0; }, 10s)) << cmd;
  }
  // an engine killed outright: its hosts exit by themselves
  startServer();
  ASSERT_TRUE(waitFor([&] { return flowHosts(server_->pid()).size() == 2; }, 10s));
  hosts = flowHosts(server_->pid());
  server_->kill(SIGKILL);
  for (const auto& [pid, state, cmd] : hosts) {
    EXPECT_TRUE(waitFor([pid = pid] { return ::kill(pid, 0) != 0; }, 10s)) << cmd;
  }
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

TEST_F(FaultMatrixTest, RestartPolicyBringsCrashedFlowsBack) {
  ASSERT_EQ(post("/flows", R"([
    {"flow_id":"p","type":"fault","config":{"in":"step","do":"segv","times":2},
     "runtime":{"isolation":"process","restart":{"policy":"on-failure","max_restarts":3,"backoff_ms":20}}},
    {"flow_id":"t","type":"fault","config":{"in":"step","do":"throw","times":2},
     "runtime":{"restart":{"policy":"on-failure","max_restarts":3,"backoff_ms":20}}},
    {"flow_id":"w","type":"fault","config":{"in":"start","do":"error"},
     "runtime":{"restart":{"policy":"on-failure","backoff_ms":600000,"max_backoff_ms":600000}}}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["p","t","w"]})").status, 200);
  for (const char* id : {"p", "t"}) {
    ASSERT_TRUE(waitFor(
        [&] {
          auto s = parseJson(get(std::string("/flows/status/") + id).body);
          return std::string(s["status"].GetString()) == "running" &&
                 s.HasMember("restart_count") && s["restart_count"].GetInt() == 2 &&
                 metric(id, "steps") > 5;
        },
        20s))
        << get(std::string("/flows/status/") + id).body;
  }
  // a restart waiting for its backoff is visible, and a stop cancels it
  auto s = parseJson(get("/flows/status/w").body);
  EXPECT_STREQ(s["status"].GetString(), "failed");
  EXPECT_EQ(s["restart_count"].GetInt(), 1);
  EXPECT_TRUE(s["next_restart_at"].IsString());
  EXPECT_TRUE(s["error"].IsString());
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["w"]})").status, 200);
  s = parseJson(get("/flows/status/w").body);
  EXPECT_STREQ(s["status"].GetString(), "stopped");
  EXPECT_FALSE(s.HasMember("next_restart_at"));
}

}  // namespace
}  // namespace sluice::test
