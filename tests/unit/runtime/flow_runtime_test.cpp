// FlowRuntime driven directly (no Engine): its commands, a removal that refuses all later work,
// and an update that loses to a removal.
#include "core/runtime/flow_runtime.hpp"

#include <gtest/gtest.h>

#include <future>

#include "fakes/runtime_fixture.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using FlowRuntimeTest = test::RuntimeFixture;

TEST_F(FlowRuntimeTest, StartsStopsAndReportsTheHookInFlightAtItsDeadline) {
  auto f = flow(R"({"flow_id":"a","type":"probe","config":{"live_dir":"live"}})");
  EXPECT_EQ(run([&](auto d) { f->acceptCommand(Command::kStart, StopMode::kSoft, d); }).state,
            State::kRunning);
  EXPECT_EQ(live(), 1u);
  EXPECT_EQ(run([&](auto d) { f->acceptCommand(Command::kStop, StopMode::kSoft, d); }).state,
            State::kStopped);
  EXPECT_EQ(live(), 0u);
  auto slow = flow(
      R"({"flow_id":"b","type":"probe","config":{"block":"create","block_ms":2000},"runtime":{"start_timeout_ms":100}})");
  auto o = run([&](auto d) { slow->acceptCommand(Command::kStart, StopMode::kSoft, d); });
  EXPECT_EQ(o.state, State::kFailed);
  EXPECT_NE(o.error.find("(in the create hook)"), std::string::npos) << o.error;
}

TEST_F(FlowRuntimeTest, ARemovedFlowRefusesAllWork) {
  // The first start holds the strand for 300 ms in its start hook, so the stop and the second
  // start are still queued when the removal is accepted.
  auto f = flow(
      R"({"flow_id":"a","type":"probe","config":{"live_dir":"live","block":"start","block_ms":300}})");
  std::promise<Outcome> first;
  std::promise<Outcome> second;
  f->acceptCommand(Command::kStart, StopMode::kSoft, [&](const Outcome& o) { first.set_value(o); });
  f->acceptCommand(Command::kStop, StopMode::kSoft, [](const Outcome&) {});
  f->acceptCommand(Command::kStart, StopMode::kSoft,
                   [&](const Outcome& o) { second.set_value(o); });
  auto removed = run([&](auto d) { f->remove(d); });
  EXPECT_EQ(removed.state, State::kStopped);
  // The first start ran (it was on the strand already) or, on a slow machine, was refused too.
  const Outcome o1 = first.get_future().get();
  EXPECT_TRUE(o1.state == State::kRunning || o1.error.find("was deleted") != std::string::npos)
      << o1.error;
  auto start_future = second.get_future();
  ASSERT_EQ(start_future.wait_for(5s), std::future_status::ready);
  const Outcome start = start_future.get();
  EXPECT_NE(start.state, State::kRunning) << "a deleted flow was started";
  EXPECT_NE(start.error.find("was deleted"), std::string::npos) << start.error;
  EXPECT_EQ(live(), 0u);
  EXPECT_NE(f->refusal(Command::kStart).value_or(""), "");
  std::promise<Result<Done>> updated;
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(R"({"flow_id":"a","type":"probe","name":"x"})", doc, nullptr));
  FlowSpec spec;
  std::vector<Problem> problems;
  ASSERT_TRUE(parseFlowSpec(doc, "", &spec, problems));
  f->update(spec, registry_.find("probe"), [&](const Result<Done>& r) { updated.set_value(r); });
  auto u = updated.get_future().get();
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().kind, ErrorKind::kNotFound);
}

}  // namespace
}  // namespace sluice
