// SDK-level behaviour through the engine: dedicated threads, in-place reconfigure, config
// schemas, hook order.
#include <fstream>

#include "fakes/engine_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using EngineSdkTest = EngineFixture;

TEST_F(EngineSdkTest, DedicatedThreadLifecycle) {
  create(R"({"flow_id":"t","type":"probe-thread"})");
  ASSERT_EQ(command(Command::kStart, {"t"}).value()[0].state, State::kRunning);
  ASSERT_TRUE(waitFor([&] { return counter("t", "loops") >= 3; }, 10s));
  ASSERT_EQ(command(Command::kPause, {"t"}).value()[0].state, State::kPaused);
  ASSERT_TRUE(waitFor([&] { return counter("t", "idle") >= 3; }, 10s));
  const int64_t loops = counter("t", "loops");
  const int64_t idle = counter("t", "idle");
  ASSERT_TRUE(waitFor([&] { return counter("t", "idle") >= idle + 10; }, 10s));
  EXPECT_LE(counter("t", "loops"), loops + 1);  // at most the loop that was in flight
  ASSERT_EQ(command(Command::kResume, {"t"}).value()[0].state, State::kRunning);
  ASSERT_TRUE(waitFor([&] { return counter("t", "loops") > loops + 3; }, 10s));
  auto r = command(Command::kStop, {"t"});
  EXPECT_EQ(r.value()[0].state, State::kStopped);
  EXPECT_EQ(counter("t", "finished"), 1);  // run returned on the stop request
  EXPECT_EQ(counter("t", "stops.soft"), 1);
  // and again
  ASSERT_EQ(command(Command::kStart, {"t"}).value()[0].state, State::kRunning);
  EXPECT_EQ(command(Command::kStop, {"t"}, StopMode::kHard).value()[0].state, State::kStopped);
  EXPECT_EQ(counter("t", "runs"), 2);
}

TEST_F(EngineSdkTest, DedicatedThreadIgnoringSoftStopIsCancelled) {
  create(
      R"({"flow_id":"t","type":"probe-thread","config":{"ignore_stop":true},"runtime":{"stop_timeout_ms":100}})");
  ASSERT_TRUE(command(Command::kStart, {"t"}).ok());
  auto r = command(Command::kStop, {"t"});
  EXPECT_EQ(r.value()[0].state, State::kStopped);
  EXPECT_EQ(counter("t", "cancelled"), 1);
}

TEST_F(EngineSdkTest, DedicatedThreadThatNeverReturnsLeavesFailed) {
  create(
      R"({"flow_id":"t","type":"probe-thread","config":{"ignore_stop":true,"ignore_cancel":true,"block_ms":5000},"runtime":{"stop_timeout_ms":50}})");
  create(R"({"flow_id":"other","type":"probe"})");
  ASSERT_TRUE(command(Command::kStart, {"t", "other"}).ok());
  auto r = command(Command::kStop, {"t"}, StopMode::kHard);
  EXPECT_EQ(r.value()[0].state, State::kFailed);
  int64_t steps = counter("other", "steps");
  EXPECT_TRUE(waitFor([&] { return counter("other", "steps") > steps + 5; }, 10s));
  // the flow can start again (a new instance, a new thread) while the old thread finishes
  EXPECT_EQ(command(Command::kStop, {"t"}).value()[0].state, State::kStopped);
}

// A dedicated-thread flow that blocks on its own I/O (poll with no timeout) is woken by the stop
// descriptor: the soft stop completes without escalating to cancellation, in a thread and in a
// host process.
TEST_F(EngineSdkTest, DedicatedThreadBlockedOnItsOwnIoWakesOnStopFd) {
  for (const char* isolation : {"thread", "process"}) {
    SCOPED_TRACE(isolation);
    const std::string id = std::string("fd-") + isolation;
    create(
        R"({"flow_id":")" + id +
        R"(","type":"probe-thread","config":{"block_on_stop_fd":true},"runtime":{"isolation":")" +
        isolation + R"(","stop_timeout_ms":10000}})");
    ASSERT_EQ(command(Command::kStart, {id}).value()[0].state, State::kRunning);
    auto r = command(Command::kStop, {id});
    EXPECT_EQ(r.value()[0].state, State::kStopped) << r.value()[0].error;
    EXPECT_EQ(counter(id, "woken"), 1);
    EXPECT_EQ(counter(id, "stops.soft"), 1);
    EXPECT_EQ(counter(id, "stops.hard"), 0) << "the stop escalated: the descriptor did not wake";
  }
}

TEST_F(EngineSdkTest, DedicatedThreadEndingOnItsOwn) {
  create(R"({"flow_id":"done","type":"probe-thread","config":{"exit_after":5}})");
  create(R"({"flow_id":"bad","type":"probe-thread","config":{"fail_after":5}})");
  ASSERT_TRUE(command(Command::kStart, {"done", "bad"}).ok());
  EXPECT_TRUE(waitState("done", State::kStopped));
  EXPECT_TRUE(waitState("bad", State::kFailed));
  EXPECT_EQ(engine_->status("bad")->error, "run hook failed: probe-thread: failing after 5 loops");
  EXPECT_EQ(counter("bad", "stops.hard"), 1);
}

TEST_F(EngineSdkTest, ReconfigureAppliesInPlace) {
  create(R"({"flow_id":"r","type":"probe-reconf","config":{"interval_ms":5}})");
  ASSERT_TRUE(command(Command::kStart, {"r"}).ok());
  ASSERT_TRUE(update(R"({"flow_id":"r","type":"probe-reconf","config":{"interval_ms":7}})").ok());
  EXPECT_EQ(counter("r", "reconfigured"), 1);
  EXPECT_EQ(state("r"), State::kRunning);
  auto bad = update(R"({"flow_id":"r","type":"probe-reconf","config":{"refuse":true}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("refusing this config"), std::string::npos);
  EXPECT_EQ(*engine_->getJson("r"),
            R"({"flow_id":"r","type":"probe-reconf","config":{"interval_ms":7}})");
  EXPECT_EQ(state("r"), State::kRunning);
  // a schema violation is refused before anything runs
  auto schema = update(R"({"flow_id":"r","type":"probe-reconf","config":{"interval_ms":"x"}})");
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.error().details.at(0).path, "/config/interval_ms");
  EXPECT_EQ(counter("r", "reconfigured"), 1);
}

TEST_F(EngineSdkTest, HookOrder) {
  const auto trace = dir_ / "files" / "trace.txt";
  create(R"({"flow_id":"o","type":"probe","config":{"trace_file":"trace.txt","interval_ms":1}})");
  ASSERT_TRUE(command(Command::kStart, {"o"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("o", "steps") >= 2; }, 10s));
  ASSERT_TRUE(command(Command::kPause, {"o"}).ok());
  ASSERT_TRUE(command(Command::kResume, {"o"}).ok());
  ASSERT_TRUE(command(Command::kStop, {"o"}).ok());
  std::ifstream in(trace);
  std::vector<std::string> hooks;
  for (std::string line; std::getline(in, line);) {
    if (hooks.empty() || hooks.back() != line || line != "step") hooks.push_back(line);
  }
  // steps collapse to one entry per run of steps
  std::vector<std::string> expected = {"create", "start", "step", "pause", "resume"};
  ASSERT_GE(hooks.size(), expected.size() + 1);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), hooks.begin()));
  EXPECT_EQ(hooks.back(), "stop");
  for (size_t i = expected.size(); i + 1 < hooks.size(); ++i) EXPECT_EQ(hooks[i], "step");
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

// Every host function works the same when the instance lives in a host process.
TEST_F(EngineSdkTest, HostFunctionsWorkTheSameInProcessIsolation) {
  create(R"({"flow_id":"t","type":"probe-thread","runtime":{"isolation":"process"}})");
  create(
      R"({"flow_id":"c","type":"probe","config":{"block":"step","block_ms":20000},"runtime":{"isolation":"process"}})");
  create(
      R"({"flow_id":"lp","type":"line-pipe","config":{"input":"in.txt","output":"out.txt","interval_ms":5},"runtime":{"isolation":"process"}})");
  { std::ofstream(dir_ / "files" / "in.txt") << "one\ntwo\n"; }
  ASSERT_TRUE(command(Command::kStart, {"t", "c", "lp"}).ok());
  // counters, pause and stop checks (dedicated thread in the host)
  ASSERT_TRUE(waitFor([&] { return counter("t", "loops") >= 3; }, 10s));
  ASSERT_EQ(command(Command::kPause, {"t"}).value()[0].state, State::kPaused);
  ASSERT_TRUE(waitFor([&] { return counter("t", "idle") >= 3; }, 10s));
  ASSERT_EQ(command(Command::kResume, {"t"}).value()[0].state, State::kRunning);
  EXPECT_EQ(command(Command::kStop, {"t"}).value()[0].state, State::kStopped);
  EXPECT_EQ(counter("t", "finished"), 1);
  // cancellation reaches a step in flight in the host: a cooperative hard stop, no kill
  ASSERT_TRUE(waitFor([&] { return counter("c", "calls.step") >= 1; }, 10s));
  EXPECT_EQ(command(Command::kStop, {"c"}, StopMode::kHard).value()[0].state, State::kStopped);
  EXPECT_EQ(counter("c", "cancelled.step"), 1);
  // files root and durable state
  ASSERT_TRUE(waitFor([&] { return counter("lp", "lines") == 2; }, 10s));
  ASSERT_EQ(command(Command::kStop, {"lp"}).value()[0].state, State::kStopped);
  { std::ofstream(dir_ / "files" / "in.txt", std::ios::app) << "three\n"; }
  ASSERT_TRUE(command(Command::kStart, {"lp"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("lp", "lines") == 3; }, 10s));
  std::ifstream out(dir_ / "files" / "out.txt");
  std::string text((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "one\ntwo\nthree\n");  // resumed from the checkpoint kept through the host
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

TEST_F(EngineSdkTest, ChangingIsolationRestartsEvenAReconfigurableFlow) {
  create(R"({"flow_id":"r","type":"probe-reconf"})");
  ASSERT_TRUE(command(Command::kStart, {"r"}).ok());
  ASSERT_TRUE(
      update(R"({"flow_id":"r","type":"probe-reconf","runtime":{"isolation":"process"}})").ok());
  EXPECT_EQ(counter("r", "reconfigured"), 0);  // restarted in a host process instead
  EXPECT_EQ(state("r"), State::kRunning);
  const int64_t steps = counter("r", "steps");
  EXPECT_TRUE(waitFor([&] { return counter("r", "steps") > steps + 3; }, 10s));
  ASSERT_TRUE(
      update(
          R"({"flow_id":"r","type":"probe-reconf","config":{"interval_ms":3},"runtime":{"isolation":"process"}})")
          .ok());
  EXPECT_EQ(counter("r", "reconfigured"), 1);  // same home: in place, through the host
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

TEST_F(EngineSdkTest, MissingHostExecutableIsNamed) {
  create(R"({"flow_id":"p","type":"noop","runtime":{"isolation":"process"}})");
  engine_->shutdown();
  engine_.reset();
  host_executable_ = "/nonexistent/sluice";
  open();
  // Validation of a process-isolated config runs in a host: refused, naming the executable.
  auto c =
      engine_->create({spec(R"({"flow_id":"q","type":"noop","runtime":{"isolation":"process"}})")});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("could not run /nonexistent/sluice --flow-host"),
            std::string::npos)
      << c.error().message;
  auto r = command(Command::kStart, {"p"});
  EXPECT_EQ(r.value()[0].state, State::kFailed);
  EXPECT_NE(r.value()[0].error.find("could not run /nonexistent/sluice --flow-host"),
            std::string::npos)
      << r.value()[0].error;
}

}  // namespace
}  // namespace sluice::test
