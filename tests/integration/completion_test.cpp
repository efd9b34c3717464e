// Flows that finish (issue #12), against the real binary with the probe plugin loaded from its
// .so: a step or a dedicated thread reports SLUICE_DONE, the flow becomes `completed` with its
// desired state back to `stopped`; every run is counted and the last one described in
// `last_run` (succeeded, failed, cancelled), durably: across a restart and a kill -9.
#include <signal.h>

#include <string>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

class Runs : public ApiFixture {
 protected:
  bool waitStatus(const std::string& id, const std::string& want,
                  std::chrono::milliseconds bound = 20s) {
    return waitFor([&] { return statusOf(id) == want; }, bound);
  }
  void create(const std::string& body) {
    auto r = post("/flows", body);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  void command(const std::string& command, const std::string& id, int want = 200) {
    auto r = patch(R"({"command":")" + command + R"(","flow_ids":[")" + id + R"("]})");
    ASSERT_EQ(r.status, want) << r.body;
  }
  void restart() {
    ASSERT_TRUE(WIFEXITED(server_->kill(SIGTERM)));
    startServer();
  }
};

// A step reports done: completed, desired stopped, one run that succeeded, with its times.
TEST_F(Runs, AStepThatReportsDoneCompletesTheFlow) {
  create(R"([{"flow_id":"job","type":"probe","config":{"interval_ms":5,"done_after":3}}])");
  auto before = statusDoc("job");
  EXPECT_EQ(before["runs"].GetUint64(), 0u);
  EXPECT_TRUE(before["last_run"].IsNull());
  command("start", "job");
  ASSERT_TRUE(waitStatus("job", "completed")) << statusOf("job");
  auto s = statusDoc("job");
  EXPECT_EQ(memberText(s, "desired"), "stopped");
  EXPECT_EQ(s["runs"].GetUint64(), 1u);
  const auto& run = s["last_run"];
  ASSERT_TRUE(run.IsObject());
  EXPECT_EQ(memberText(run, "result"), "succeeded");
  EXPECT_EQ(memberText(run, "error"), "<null>");
  const std::string started = memberText(run, "started");
  const std::string ended = memberText(run, "ended");
  ASSERT_EQ(started.size(), 24u) << started;  // 2026-01-02T03:04:05.678Z
  ASSERT_EQ(ended.size(), 24u) << ended;
  EXPECT_LE(started, ended);
  EXPECT_EQ(s["metrics"]["steps"].GetInt64(), 3);
  // The instance was stopped (soft) and destroyed: no step runs after done.
  EXPECT_EQ(s["metrics"]["stops.soft"].GetInt64(), 1);
  // `completed` is a status like the others: filters and the list of states know it.
  auto list = get("/flows/status?status=completed");
  EXPECT_EQ(list.status, 200) << list.body;
  EXPECT_NE(list.body.find("\"job\""), std::string::npos) << list.body;
}

// start runs a completed flow again: a second run, which completes too.
TEST_F(Runs, StartRunsACompletedFlowAgain) {
  create(R"([{"flow_id":"job","type":"probe","config":{"interval_ms":5,"done_after":2}}])");
  command("start", "job");
  ASSERT_TRUE(waitStatus("job", "completed"));
  const std::string first = memberText(statusDoc("job")["last_run"], "started");
  command("start", "job");
  ASSERT_TRUE(waitFor([&] { return statusDoc("job")["runs"].GetUint64() == 2; }, 20s));
  ASSERT_TRUE(waitStatus("job", "completed"));
  auto s = statusDoc("job");
  EXPECT_EQ(memberText(s["last_run"], "result"), "succeeded");
  EXPECT_GE(memberText(s["last_run"], "started"), first);
  EXPECT_EQ(memberText(s, "desired"), "stopped");
}

// pause and resume of a completed flow are refused, naming its state.
TEST_F(Runs, PauseOfACompletedFlowIsRefusedNamingItsState) {
  create(R"([{"flow_id":"job","type":"probe","config":{"interval_ms":5,"done_after":1}}])");
  command("start", "job");
  ASSERT_TRUE(waitStatus("job", "completed"));
  auto r = patch(R"({"command":"pause","flow_ids":["job"]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("completed"), std::string::npos) << r.body;
  // stop of a completed flow is accepted and changes no run.
  command("stop", "job");
  auto s = statusDoc("job");
  EXPECT_EQ(s["runs"].GetUint64(), 1u);
  EXPECT_EQ(memberText(s["last_run"], "result"), "succeeded");
}

// A run that fails, and one that is stopped.
TEST_F(Runs, AFailedRunAndAStoppedRunAreRecordedAsSuch) {
  create(R"([{"flow_id":"bad","type":"probe","config":{"interval_ms":5,"fail_after":2}},
             {"flow_id":"long","type":"probe","config":{"interval_ms":5}}])");
  command("start", "bad");
  ASSERT_TRUE(waitStatus("bad", "failed"));
  auto s = statusDoc("bad");
  EXPECT_EQ(s["runs"].GetUint64(), 1u);
  EXPECT_EQ(memberText(s["last_run"], "result"), "failed");
  EXPECT_NE(memberText(s["last_run"], "error").find("failing at step 2"), std::string::npos)
      << memberText(s["last_run"], "error");
  EXPECT_EQ(memberText(s, "desired"), "running") << "a failure keeps the desired state";

  command("start", "long");
  auto running = statusDoc("long");
  EXPECT_EQ(memberText(running, "status"), "running");
  EXPECT_EQ(running["runs"].GetUint64(), 1u);
  EXPECT_EQ(memberText(running["last_run"], "result"), "<null>") << "in progress";
  EXPECT_EQ(memberText(running["last_run"], "ended"), "<null>");
  command("stop", "long");
  auto stopped = statusDoc("long");
  EXPECT_EQ(memberText(stopped["last_run"], "result"), "cancelled");
  EXPECT_NE(memberText(stopped["last_run"], "ended"), "<null>");
}

// Dedicated-thread flows: run returns done (completed); run returning ok ends the flow as
// before ABI 1.3 (stopped), and that run succeeded.
TEST_F(Runs, ADedicatedThreadThatReturnsDoneCompletesTheFlow) {
  create(R"([{"flow_id":"t","type":"probe-thread","config":{"done_after":5}},
             {"flow_id":"old","type":"probe-thread","config":{"exit_after":5}}])");
  command("start", "t");
  command("start", "old");
  ASSERT_TRUE(waitStatus("t", "completed")) << statusOf("t");
  ASSERT_TRUE(waitStatus("old", "stopped")) << statusOf("old");
  auto t = statusDoc("t");
  EXPECT_EQ(memberText(t, "desired"), "stopped");
  EXPECT_EQ(memberText(t["last_run"], "result"), "succeeded");
  auto old = statusDoc("old");
  EXPECT_EQ(memberText(old["last_run"], "result"), "succeeded");
}

// Process isolation: SLUICE_DONE crosses the host process's protocol.
TEST_F(Runs, AFlowInAHostProcessCompletesToo) {
  create(R"([{"flow_id":"p","type":"probe","config":{"interval_ms":5,"done_after":3},
              "runtime":{"isolation":"process"}}])");
  command("start", "p");
  ASSERT_TRUE(waitStatus("p", "completed")) << statusOf("p");
  EXPECT_EQ(memberText(statusDoc("p")["last_run"], "result"), "succeeded");
}

// Durable: a completed flow stays completed-and-stopped across a restart (not run again), with
// its runs; after a kill -9 the count stays, and the restored flow begins its next run.
TEST_F(Runs, RunsAndTheLastRunSurviveRestarts) {
  create(R"([{"flow_id":"job","type":"probe","config":{"interval_ms":5,"done_after":2}},
             {"flow_id":"long","type":"probe","config":{"interval_ms":5}}])");
  command("start", "job");
  ASSERT_TRUE(waitStatus("job", "completed"));
  command("start", "job");
  ASSERT_TRUE(waitFor([&] { return statusDoc("job")["runs"].GetUint64() == 2; }, 20s));
  ASSERT_TRUE(waitStatus("job", "completed"));
  const std::string ended = memberText(statusDoc("job")["last_run"], "ended");
  restart();
  auto job = statusDoc("job");
  EXPECT_EQ(memberText(job, "status"), "stopped") << "a finished job is not run again at startup";
  EXPECT_EQ(memberText(job, "desired"), "stopped");
  EXPECT_EQ(job["runs"].GetUint64(), 2u);
  EXPECT_EQ(memberText(job["last_run"], "result"), "succeeded");
  EXPECT_EQ(memberText(job["last_run"], "ended"), ended);

  command("start", "long");
  const std::string first = memberText(statusDoc("long")["last_run"], "started");
  server_->kill(SIGKILL);
  startServer();
  // Its desired state is running: the engine starts it again, as a second run.
  ASSERT_TRUE(waitStatus("long", "running"));
  auto again = statusDoc("long");
  EXPECT_EQ(again["runs"].GetUint64(), 2u);
  EXPECT_GT(memberText(again["last_run"], "started"), first);
  EXPECT_EQ(memberText(again["last_run"], "result"), "<null>");
}

}  // namespace
}  // namespace sluice::test
