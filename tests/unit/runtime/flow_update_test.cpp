// FlowRuntime::update (core/runtime/flow_update.cpp): a PUT applied in place, by a restart, or
// rolled back when the new configuration does not start; the store written only once it holds.
#include <gtest/gtest.h>

#include "fakes/runtime_fixture.hpp"

namespace sluice {
namespace {

using FlowUpdateTest = test::RuntimeFixture;

TEST_F(FlowUpdateTest, AStoppedFlowTakesTheNewConfigWithoutAHook) {
  auto f = flow(R"({"flow_id":"a","type":"probe","config":{"interval_ms":50}})");
  auto r = update(*f, R"({"flow_id":"a","type":"probe","config":{"interval_ms":70},"name":"n"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(storedRecord("a"),
            R"({"flow_id":"a","type":"probe","config":{"interval_ms":70},"name":"n"})");
  EXPECT_EQ(f->status().state, State::kStopped);
  EXPECT_EQ(counter(*f, "calls.create"), 0);
}

TEST_F(FlowUpdateTest, ARunningFlowThatCanReconfigureDoesSoInPlace) {
  auto f = flow(R"({"flow_id":"a","type":"probe-reconf","config":{"interval_ms":20}})");
  ASSERT_EQ(run([&](auto d) { f->acceptCommand(Command::kStart, StopMode::kSoft, d); }).state,
            State::kRunning);
  auto r = update(*f, R"({"flow_id":"a","type":"probe-reconf","config":{"interval_ms":30}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(counter(*f, "reconfigured"), 1);
  EXPECT_EQ(f->status().state, State::kRunning);
  EXPECT_NE(storedRecord("a").find("30"), std::string::npos);
  // A config the type refuses changes nothing, stored or running.
  auto refused = update(
      *f, R"({"flow_id":"a","type":"probe-reconf","config":{"interval_ms":40,"refuse":true}})");
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(f->status().state, State::kRunning);
  EXPECT_EQ(storedRecord("a").find("40"), std::string::npos);
}

TEST_F(FlowUpdateTest, ARestartThatFailsRollsBackToTheRunningConfig) {
  auto f = flow(R"({"flow_id":"a","type":"probe","config":{"live_dir":"live"}})");
  ASSERT_EQ(run([&](auto d) { f->acceptCommand(Command::kStart, StopMode::kSoft, d); }).state,
            State::kRunning);
  const std::string before = storedRecord("a");
  auto r =
      update(*f, R"({"flow_id":"a","type":"probe","config":{"live_dir":"live","fail":"start"}})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(f->status().state, State::kRunning) << "the previous configuration runs again";
  EXPECT_EQ(storedRecord("a"), before) << "nothing was stored";
  EXPECT_EQ(live(), 1u);
  // The good config restarts it and is stored.
  auto ok =
      update(*f, R"({"flow_id":"a","type":"probe","config":{"live_dir":"live","interval_ms":15}})");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(f->status().state, State::kRunning);
  EXPECT_NE(storedRecord("a").find("15"), std::string::npos);
  EXPECT_EQ(live(), 1u);
}

}  // namespace
}  // namespace sluice
