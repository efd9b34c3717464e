// The instance lifecycle of a flow (core/runtime/flow_instance.cpp): create on start, destroy on
// stop and on every failure, so a stopped or failed flow holds no plugin instance.
#include <gtest/gtest.h>

#include "fakes/runtime_fixture.hpp"

namespace sluice {
namespace {

using FlowInstanceTest = test::RuntimeFixture;

TEST_F(FlowInstanceTest, StopAndPauseKeepOrReleaseTheInstance) {
  auto f = flow(R"({"flow_id":"a","type":"probe","config":{"live_dir":"live"}})");
  EXPECT_EQ(live(), 0u);
  ASSERT_EQ(run([&](auto d) { f->acceptCommand(Command::kStart, StopMode::kSoft, d); }).state,
            State::kRunning);
  EXPECT_EQ(live(), 1u);
  ASSERT_EQ(run([&](auto d) { f->acceptCommand(Command::kPause, StopMode::kSoft, d); }).state,
            State::kPaused);
  EXPECT_EQ(live(), 1u) << "a paused flow keeps its instance";
  ASSERT_EQ(run([&](auto d) { f->acceptCommand(Command::kStop, StopMode::kHard, d); }).state,
            State::kStopped);
  EXPECT_EQ(live(), 0u);
}

TEST_F(FlowInstanceTest, AFailingHookReleasesTheInstanceAndAStartMakesANewOne) {
  for (const char* hook : {"create", "start"}) {
    SCOPED_TRACE(hook);
    auto f = flow(std::string(R"({"flow_id":"f-)") + hook +
                  R"(","type":"probe","config":{"live_dir":"live","throw":")" + hook + R"("}})");
    auto o = run([&](auto d) { f->acceptCommand(Command::kStart, StopMode::kSoft, d); });
    EXPECT_EQ(o.state, State::kFailed);
    EXPECT_FALSE(o.error.empty());
    EXPECT_EQ(live(), 0u) << "a failed flow holds no instance";
  }
  auto g = flow(R"({"flow_id":"g","type":"probe","config":{"live_dir":"live","fail":"pause"}})");
  ASSERT_EQ(run([&](auto d) { g->acceptCommand(Command::kStart, StopMode::kSoft, d); }).state,
            State::kRunning);
  EXPECT_EQ(run([&](auto d) { g->acceptCommand(Command::kPause, StopMode::kSoft, d); }).state,
            State::kFailed);
  EXPECT_EQ(live(), 0u);
  // Start on a failed flow creates a fresh instance.
  EXPECT_EQ(run([&](auto d) { g->acceptCommand(Command::kStart, StopMode::kSoft, d); }).state,
            State::kRunning);
  EXPECT_EQ(live(), 1u);
}

}  // namespace
}  // namespace sluice
