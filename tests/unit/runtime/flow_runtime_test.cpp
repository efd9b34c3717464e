// FlowRuntime driven directly (no Engine): its commands, a removal that refuses all later work,
// and an update that loses to a removal.
#include "core/runtime/flow_runtime.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "core/model/json.hpp"
#include "core/store/sqlite_store.hpp"
#include "fakes/server_process.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

class FlowRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("runtime-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "files");
    auto s = SqliteStore::open((dir_ / "sluice.db").string());
    ASSERT_TRUE(s.ok());
    store_ = std::move(s.value());
    registry_.loadDirectory(SLUICE_TEST_PLUGIN_DIR);
    services_ = EngineServices{
        &pool_, &timer_, store_.get(), [] {}, (dir_ / "files").string(), SLUICE_BINARY};
  }
  void TearDown() override {
    timer_.shutdown();
    pool_.shutdown(5s);
    for (auto& f : flows_) f->dropQueuedOps();  // as Engine::shutdown does: ops hold their flow
  }
  std::shared_ptr<FlowRuntime> flow(const std::string& text) {
    rapidjson::Document doc;
    EXPECT_TRUE(json::parse(text, doc, nullptr));
    FlowSpec spec;
    std::vector<Problem> problems;
    EXPECT_TRUE(parseFlowSpec(doc, "", &spec, problems));
    auto inc = store_->insertFlows({{spec.id, spec.record_json, Desired::kStopped}});
    EXPECT_TRUE(inc.ok());
    flows_.push_back(std::make_shared<FlowRuntime>(&services_, spec, registry_.find(spec.type),
                                                   Desired::kStopped, inc.value()[0]));
    return flows_.back();
  }
  static Outcome run(const std::function<void(FlowRuntime::Done)>& submit) {
    std::promise<Outcome> p;
    auto f = p.get_future();
    submit([&p](const Outcome& o) { p.set_value(o); });
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }
  size_t live() {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(dir_ / "files" / "live", ec);
         !ec && it != std::filesystem::directory_iterator(); ++it) {
      ++n;
    }
    return n;
  }

  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  PluginRegistry registry_;
  ThreadPool pool_{2};
  Timer timer_;
  EngineServices services_{};
  std::vector<std::shared_ptr<FlowRuntime>> flows_;
};

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
