// runtime.restart: restarts with backoff, giving up, cancellation by stop, the reset window.
#include "fakes/engine_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using RestartTest = EngineFixture;

TEST_F(RestartTest, RestartsUntilMaxThenStaysFailed) {
  create(R"({"flow_id":"r","type":"probe","config":{"throw":"step"},
             "runtime":{"restart":{"policy":"on-failure","max_restarts":2,"backoff_ms":20,"max_backoff_ms":40}}})");
  ASSERT_TRUE(command(Command::kStart, {"r"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("r", "calls.start") == 3; }, 10s));
  ASSERT_TRUE(waitFor(
      [&] {
        auto s = engine_->status("r");
        return s->state == State::kFailed && s->error.find("no restart") != std::string::npos;
      },
      10s));
  auto s = engine_->status("r");
  EXPECT_EQ(s->restart_count, 2u);
  EXPECT_FALSE(s->next_restart_at.has_value());
  EXPECT_EQ(s->desired, Desired::kRunning);
  EXPECT_NE(s->error.find("injected exception in step"), std::string::npos);
  // an operator's start begins a fresh count
  ASSERT_TRUE(command(Command::kStart, {"r"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("r", "calls.start") == 6; }, 10s));
}

TEST_F(RestartTest, PendingRestartIsShownAndCancelledByStop) {
  create(R"({"flow_id":"r","type":"probe","config":{"fail":"start"},
             "runtime":{"restart":{"policy":"on-failure","backoff_ms":60000,"max_backoff_ms":60000}}})");
  auto r = command(Command::kStart, {"r"});
  EXPECT_EQ(r.value()[0].state, State::kFailed);
  auto s = engine_->status("r");
  EXPECT_EQ(s->restart_count, 1u);
  ASSERT_TRUE(s->next_restart_at.has_value());
  EXPECT_GT(*s->next_restart_at, std::chrono::system_clock::now() + 40s);  // 60 s -20% jitter
  ASSERT_EQ(command(Command::kStop, {"r"}).value()[0].state, State::kStopped);
  s = engine_->status("r");
  EXPECT_FALSE(s->next_restart_at.has_value());
  EXPECT_EQ(s->restart_count, 0u);
}

TEST_F(RestartTest, RecoversAfterTransientFailures) {
  create(R"({"flow_id":"r","type":"fault","config":{"in":"start","do":"throw","times":2},
             "runtime":{"restart":{"policy":"on-failure","max_restarts":5,"backoff_ms":10}}})");
  EXPECT_EQ(command(Command::kStart, {"r"}).value()[0].state, State::kFailed);
  EXPECT_TRUE(waitState("r", State::kRunning));
  EXPECT_EQ(engine_->status("r")->restart_count, 2u);
}

TEST_F(RestartTest, CleanRunResetsTheCount) {
  // Each run lasts ~50 loops of 2 ms, longer than the 30 ms reset window, then fails: the count
  // never passes 1, so max_restarts 1 is never exhausted.
  create(R"({"flow_id":"r","type":"probe-thread","config":{"fail_after":50},
             "runtime":{"restart":{"policy":"on-failure","max_restarts":1,"backoff_ms":5,"reset_after_ms":30}}})");
  ASSERT_TRUE(command(Command::kStart, {"r"}).ok());
  ASSERT_TRUE(waitFor([&] { return counter("r", "runs") >= 4; }, 20s));
  EXPECT_EQ(engine_->status("r")->restart_count, 1u);
  EXPECT_EQ(engine_->status("r")->error.find("no restart"), std::string::npos);
}

TEST_F(RestartTest, PausedFlowsComeBackPaused) {
  create(R"({"flow_id":"r","type":"fault","config":{"in":"resume","do":"throw","times":1},
             "runtime":{"restart":{"policy":"on-failure","backoff_ms":10}}})");
  ASSERT_TRUE(command(Command::kStart, {"r"}).ok());
  ASSERT_TRUE(command(Command::kPause, {"r"}).ok());
  EXPECT_EQ(command(Command::kResume, {"r"}).value()[0].state, State::kFailed);
  // desired is running after the resume: the restart brings it back running
  EXPECT_TRUE(waitState("r", State::kRunning));
}

TEST_F(RestartTest, PolicyValidation) {
  for (const char* bad :
       {R"({"policy":"always"})", R"({"max_restarts":-1})", R"({"backoff_ms":0})",
        R"({"backoff_ms":100,"max_backoff_ms":50})", R"({"jitter":true})", R"([])"}) {
    rapidjson::Document doc;
    ASSERT_TRUE(json::parse(std::string(R"({"flow_id":"x","runtime":{"restart":)") + bad + "}}",
                            doc, nullptr));
    FlowSpec s;
    std::vector<Problem> problems;
    EXPECT_FALSE(parseFlowSpec(doc, "", &s, problems)) << bad;
    ASSERT_FALSE(problems.empty());
    EXPECT_EQ(problems[0].path.rfind("/runtime/restart", 0), 0u) << problems[0].path;
  }
}

}  // namespace
}  // namespace sluice::test
