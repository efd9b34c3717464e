// The engine's state machine, deadlines and fault handling, with the `probe` test plugin.
#include "fakes/engine_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

using EngineTest = EngineFixture;

TEST_F(EngineTest, LifecycleTransitions) {
  create(R"({"flow_id":"p","type":"probe"})");
  EXPECT_EQ(state("p"), State::kStopped);
  auto r = command(Command::kStart, {"p"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()[0].state, State::kRunning);
  EXPECT_TRUE(waitFor([&] { return counter("p", "steps") >= 3; }, 10s));
  r = command(Command::kPause, {"p"});
  EXPECT_EQ(r.value()[0].state, State::kPaused);
  EXPECT_EQ(engine_->status("p")->desired, Desired::kPaused);
  r = command(Command::kResume, {"p"});
  EXPECT_EQ(r.value()[0].state, State::kRunning);
  r = command(Command::kStart, {"p"});  // running: no-op
  EXPECT_EQ(r.value()[0].state, State::kRunning);
  EXPECT_EQ(counter("p", "calls.start"), 1);
  r = command(Command::kStop, {"p"});
  EXPECT_EQ(r.value()[0].state, State::kStopped);
  EXPECT_EQ(counter("p", "stops.soft"), 1);
  r = command(Command::kStop, {"p"});  // stopped: no-op
  EXPECT_EQ(r.value()[0].state, State::kStopped);
}

TEST_F(EngineTest, IllegalTransitionsAreRefusedAtomically) {
  create(R"({"flow_id":"a","type":"probe"})");
  create(R"({"flow_id":"b","type":"probe"})");
  ASSERT_TRUE(command(Command::kStart, {"a"}).ok());
  auto r = command(Command::kPause, {"a", "b"});  // b is stopped
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  ASSERT_EQ(r.error().details.size(), 1u);
  EXPECT_EQ(r.error().details[0].flow_id, "b");
  EXPECT_EQ(state("a"), State::kRunning);  // unchanged
  EXPECT_FALSE(command(Command::kResume, {"a", "b"}).ok());
  auto unknown = command(Command::kStart, {"a", "zzz"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().details[0].flow_id, "zzz");
  EXPECT_EQ(engine_->status("b")->desired, Desired::kStopped);
}

TEST_F(EngineTest, PausedFlowTakesNoSteps) {
  create(R"({"flow_id":"paused","type":"probe","config":{"interval_ms":2}})");
  create(R"({"flow_id":"clock","type":"probe","config":{"interval_ms":2}})");
  ASSERT_TRUE(command(Command::kStart, {"paused", "clock"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("paused", "steps") > 2; }, 10s));
  ASSERT_EQ(command(Command::kPause, {"paused"}).value()[0].state, State::kPaused);
  const int64_t at_pause = counter("paused", "steps");
  const int64_t clock = counter("clock", "steps");
  // The other flow is the clock: many of its steps pass while the paused one takes none.
  ASSERT_TRUE(waitFor([&] { return counter("clock", "steps") > clock + 20; }, 20s));
  EXPECT_EQ(counter("paused", "steps"), at_pause);
  EXPECT_EQ(counter("paused", "steps_while_paused"), 0);
  ASSERT_EQ(command(Command::kResume, {"paused"}).value()[0].state, State::kRunning);
  EXPECT_TRUE(waitFor([&] { return counter("paused", "steps") > at_pause; }, 10s));
}

TEST_F(EngineTest, FailingHooksLeaveFlowFailedWithError) {
  create(R"({"flow_id":"f","type":"probe","config":{"fail":"start"}})");
  create(R"({"flow_id":"t","type":"probe","config":{"throw":"start"}})");
  create(R"({"flow_id":"ok","type":"probe"})");
  auto r = command(Command::kStart, {"f", "t", "ok"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()[0].state, State::kFailed);
  EXPECT_NE(r.value()[0].error.find("probe: injected failure in start"), std::string::npos);
  EXPECT_EQ(r.value()[1].state, State::kFailed);
  EXPECT_NE(r.value()[1].error.find("injected exception in start"), std::string::npos);
  EXPECT_EQ(r.value()[2].state, State::kRunning);
  EXPECT_NE(engine_->status("f")->error.find("start hook failed"), std::string::npos);
  // stop clears the failure
  r = command(Command::kStop, {"f"});
  EXPECT_EQ(r.value()[0].state, State::kStopped);
  EXPECT_TRUE(engine_->status("f")->error.empty());
  // pausing a failed flow is refused
  create(R"({"flow_id":"f2","type":"probe","config":{"fail":"start"}})");
  command(Command::kStart, {"f2"});
  EXPECT_FALSE(command(Command::kPause, {"f2"}).ok());
}

TEST_F(EngineTest, StepFailureFailsTheFlow) {
  create(R"({"flow_id":"s","type":"probe","config":{"throw":"step"}})");
  ASSERT_TRUE(command(Command::kStart, {"s"}).ok());
  ASSERT_TRUE(waitState("s", State::kFailed));
  EXPECT_EQ(engine_->status("s")->error, "step hook failed: probe: injected exception in step");
  EXPECT_EQ(counter("s", "stops.hard"), 1);  // the instance is released
  ASSERT_EQ(command(Command::kStart, {"s"}).value()[0].state, State::kRunning);
}

TEST_F(EngineTest, StartPastItsTimeoutFails) {
  create(
      R"({"flow_id":"slow","type":"probe","config":{"block":"start","block_ms":3000,"ignore_cancel":true},"runtime":{"start_timeout_ms":100}})");
  auto r = command(Command::kStart, {"slow"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()[0].state, State::kFailed);
  EXPECT_NE(r.value()[0].error.find("did not finish within 100 ms"), std::string::npos);
  // when the hook finally returns, the instance is released and the flow stays failed
  ASSERT_TRUE(waitFor([&] { return counter("slow", "stops.hard") == 1; }, 10s));
  EXPECT_EQ(state("slow"), State::kFailed);
}

// Issue 14: a start's deadline measures the flow's own hook. 40 starts of 100 ms each on 4
// workers wait up to a second for a worker, past their 500 ms start_timeout_ms: none fails.
TEST_F(EngineTest, ManyStartsAtOnceDoNotFailWhileTheyWaitForAWorker) {
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back("q" + std::to_string(i));
    create(
        R"({"flow_id":")" + ids.back() +
        R"(","type":"probe","config":{"block":"start","block_ms":100},"runtime":{"start_timeout_ms":500}})");
  }
  auto r = command(Command::kStart, ids);
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const auto& d : r.value()) {
    EXPECT_EQ(d.state, State::kRunning) << d.flow_id << ": " << d.error;
  }
}

// A command queued behind the flow's own plugin code that does not return is still answered
// when its time is up (it does not wait for a worker: it waits for that code).
TEST_F(EngineTest, ACommandBehindTheFlowsOwnStuckStepIsAnsweredAtItsDeadline) {
  create(
      R"({"flow_id":"s","type":"probe","config":{"block":"step","block_ms":3000,"ignore_cancel":true},"runtime":{"start_timeout_ms":200}})");
  ASSERT_TRUE(command(Command::kStart, {"s"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("s", "calls.step") >= 1; }, 10s));
  auto r = command(Command::kPause, {"s"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value()[0].state, State::kFailed);
  EXPECT_NE(r.value()[0].error.find("did not finish within 200 ms"), std::string::npos)
      << r.value()[0].error;
}

TEST_F(EngineTest, SoftStopEscalatesToHardAfterStopTimeout) {
  create(
      R"({"flow_id":"e","type":"probe","config":{"block":"stop","block_ms":20000},"runtime":{"stop_timeout_ms":100}})");
  ASSERT_TRUE(command(Command::kStart, {"e"}).ok());
  auto r = command(Command::kStop, {"e"}, StopMode::kSoft);
  ASSERT_TRUE(r.ok());
  // the stop hook saw the cancellation raised by the escalation and returned
  EXPECT_EQ(r.value()[0].state, State::kStopped);
  EXPECT_EQ(counter("e", "cancelled.stop"), 1);
}

TEST_F(EngineTest, HardStopCancelsTheStepInFlight) {
  create(R"({"flow_id":"h","type":"probe","config":{"block":"step","block_ms":20000}})");
  ASSERT_TRUE(command(Command::kStart, {"h"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("h", "calls.step") >= 1; }, 10s));
  auto r = command(Command::kStop, {"h"}, StopMode::kHard);
  EXPECT_EQ(r.value()[0].state, State::kStopped);
  EXPECT_EQ(counter("h", "cancelled.step"), 1);
  EXPECT_EQ(counter("h", "stops.hard"), 1);
}

TEST_F(EngineTest, HardStopOfCodeThatNeverReturnsLeavesFailed) {
  create(
      R"({"flow_id":"z","type":"probe","config":{"block":"step","block_ms":4000,"ignore_cancel":true}})");
  create(R"({"flow_id":"other","type":"probe"})");
  ASSERT_TRUE(command(Command::kStart, {"z", "other"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("z", "calls.step") >= 1; }, 10s));
  auto r = command(Command::kStop, {"z"}, StopMode::kHard);
  EXPECT_EQ(r.value()[0].state, State::kFailed);
  EXPECT_NE(r.value()[0].error.find("still running after the hard stop"), std::string::npos);
  // the engine goes on: another flow still steps
  int64_t steps = counter("other", "steps");
  EXPECT_TRUE(waitFor([&] { return counter("other", "steps") > steps + 5; }, 10s));
  // once the code returns, the instance is released
  EXPECT_TRUE(waitFor([&] { return counter("z", "stops.hard") == 1; }, 15s));
}

TEST_F(EngineTest, UpdateRestartsRunningFlowAndRollsBackOnFailure) {
  create(R"({"flow_id":"u","type":"probe","config":{"interval_ms":5}})");
  ASSERT_TRUE(command(Command::kStart, {"u"}).ok());
  auto r = update(R"({"flow_id":"u","type":"probe","config":{"interval_ms":3},"v":2})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(state("u"), State::kRunning);
  EXPECT_EQ(counter("u", "calls.start"), 2);
  EXPECT_EQ(*engine_->getJson("u"),
            R"({"flow_id":"u","type":"probe","config":{"interval_ms":3},"v":2})");
  // a config whose start fails: previous restored, nothing stored
  auto bad = update(R"({"flow_id":"u","type":"probe","config":{"fail":"start"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(bad.error().message.find("previous configuration was restored"), std::string::npos);
  EXPECT_EQ(state("u"), State::kRunning);
  EXPECT_EQ(*engine_->getJson("u"),
            R"({"flow_id":"u","type":"probe","config":{"interval_ms":3},"v":2})");
  // paused flows come back paused
  ASSERT_TRUE(command(Command::kPause, {"u"}).ok());
  ASSERT_TRUE(update(R"({"flow_id":"u","type":"probe"})").ok());
  EXPECT_EQ(state("u"), State::kPaused);
}

TEST_F(EngineTest, ValidateHookProblemsCarryPaths) {
  auto r = engine_->create({spec(R"({"flow_id":"v","type":"probe","config":{"bad":true}})"),
                            spec(R"({"flow_id":"w","type":"ticker","config":{"interval_ms":0}})"),
                            spec(R"({"flow_id":"x","type":"missing"})")});
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.error().details.size(), 3u);
  EXPECT_EQ(r.error().details[0].path, "/config/bad");
  EXPECT_EQ(r.error().details[1].path, "/config/interval_ms");
  EXPECT_EQ(r.error().details[2].path, "/type");
  EXPECT_FALSE(engine_->getJson("v").has_value());
}

TEST_F(EngineTest, RestoresDesiredStatesOnReopen) {
  create(R"({"flow_id":"r","type":"probe"})");
  create(R"({"flow_id":"p","type":"probe"})");
  create(R"({"flow_id":"s","type":"probe"})");
  ASSERT_TRUE(command(Command::kStart, {"r", "p"}).ok());
  ASSERT_TRUE(command(Command::kPause, {"p"}).ok());
  reopen();
  EXPECT_TRUE(waitState("r", State::kRunning));
  EXPECT_TRUE(waitState("p", State::kPaused));
  EXPECT_EQ(state("s"), State::kStopped);
  EXPECT_EQ(engine_->status("p")->desired, Desired::kPaused);
}

TEST_F(EngineTest, ShutdownKeepsDesiredStates) {
  create(R"({"flow_id":"r","type":"probe"})");
  ASSERT_TRUE(command(Command::kStart, {"r"}).ok());
  engine_->shutdown();
  EXPECT_EQ(state("r"), State::kStopped);
  EXPECT_EQ(engine_->status("r")->desired, Desired::kRunning);
  engine_.reset();
  open();
  EXPECT_TRUE(waitState("r", State::kRunning));
}

TEST_F(EngineTest, DeleteStopsRunningFlow) {
  create(R"({"flow_id":"d","type":"probe"})");
  ASSERT_TRUE(command(Command::kStart, {"d"}).ok());
  std::promise<Result<Outcome>> p;
  engine_->remove("d", [&p](Result<Outcome> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().state, State::kStopped);
  EXPECT_FALSE(engine_->status("d").has_value());
  reopen();
  EXPECT_FALSE(engine_->status("d").has_value());
}

TEST_F(EngineTest, ListIsCachedAndInvalidated) {
  auto a = engine_->listJson();
  EXPECT_EQ(*a, "[]");
  EXPECT_EQ(engine_->listJson().get(), a.get());  // not rebuilt
  create(R"({"flow_id":"l1"})");
  create(R"({"flow_id":"l2","x":1})");
  EXPECT_EQ(*engine_->listJson(), R"([{"flow_id":"l1"},{"flow_id":"l2","x":1}])");
  ASSERT_TRUE(update(R"({"flow_id":"l1","y":2})").ok());
  EXPECT_EQ(*engine_->listJson(), R"([{"flow_id":"l1","y":2},{"flow_id":"l2","x":1}])");
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

TEST_F(EngineTest, StuckWorkersAreReplaced) {
  // As many flows stuck in code that ignores cancellation as the pool has workers (4): the
  // others starve. Each hard stop that passes its bound adds a replacement worker, so the other
  // flows go on.
  std::vector<std::string> stuck;
  for (int i = 0; i < 4; ++i) {
    stuck.push_back("stuck" + std::to_string(i));
    create(R"({"flow_id":")" + stuck.back() +
           R"(","type":"probe","config":{"block":"step","block_ms":60000,"ignore_cancel":true}})");
  }
  create(R"({"flow_id":"clock","type":"probe","config":{"interval_ms":2}})");
  ASSERT_TRUE(command(Command::kStart, {"clock"}).ok());
  ASSERT_TRUE(command(Command::kStart, stuck).ok());
  for (const auto& id : stuck) {
    ASSERT_TRUE(waitFor([&] { return counter(id, "calls.step") >= 1; }, 10s)) << id;
  }
  auto r = command(Command::kStop, stuck, StopMode::kHard);
  ASSERT_TRUE(r.ok());
  for (const auto& d : r.value()) EXPECT_EQ(d.state, State::kFailed) << d.flow_id;
  const int64_t steps = counter("clock", "steps");
  EXPECT_TRUE(waitFor([&] { return counter("clock", "steps") > steps + 10; }, 10s));
  // and new commands are served
  create(R"({"flow_id":"fresh","type":"probe"})");
  EXPECT_EQ(command(Command::kStart, {"fresh"}).value()[0].state, State::kRunning);
}

}  // namespace
}  // namespace sluice::test
