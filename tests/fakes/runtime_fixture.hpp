// FlowRuntime driven directly (no Engine): a real plugin registry, store, pool and timer, with
// the test plugins. Shared by the tests of the runtime's units.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/model/json.hpp"
#include "core/runtime/flow_runtime.hpp"
#include "core/store/sqlite_store.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {

class RuntimeFixture : public ::testing::Test {
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
    runs_ = std::make_unique<RunRecorder>(store_.get());
    services_ = EngineServices{
        &pool_, &timer_, store_.get(), [] {}, (dir_ / "files").string(), SLUICE_BINARY};
    services_.runs = runs_.get();
  }
  void TearDown() override {
    timer_.shutdown();
    pool_.shutdown(std::chrono::seconds(5));
    for (auto& f : flows_) f->dropQueuedOps();  // as Engine::shutdown does: ops hold their flow
    if (runs_) runs_->stop();
  }
  std::shared_ptr<FlowRuntime> flow(const std::string& text) {
    rapidjson::Document doc;
    EXPECT_TRUE(json::parse(text, doc, nullptr));
    FlowSpec spec;
    std::vector<Problem> problems;
    EXPECT_TRUE(parseFlowSpec(doc, "", &spec, problems));
    auto inc = store_->insertFlows({{spec.id, spec.record_json, Desired::kStopped}}, nullptr);
    EXPECT_TRUE(inc.ok());
    flows_.push_back(FlowRuntime::create(&services_, spec, registry_.find(spec.type),
                                         Desired::kStopped, inc.value()[0]));
    return flows_.back();
  }
  static Outcome run(const std::function<void(FlowRuntime::Done)>& submit) {
    std::promise<Outcome> p;
    auto f = p.get_future();
    submit([&p](const Outcome& o) { p.set_value(o); });
    EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return f.get();
  }
  static FlowSpec spec(const std::string& text) {
    rapidjson::Document doc;
    EXPECT_TRUE(json::parse(text, doc, nullptr));
    FlowSpec out;
    std::vector<Problem> problems;
    EXPECT_TRUE(parseFlowSpec(doc, "", &out, problems));
    return out;
  }
  Result<Done> update(FlowRuntime& f, const std::string& text) {
    auto s = spec(text);
    std::promise<Result<Done>> p;
    auto fut = p.get_future();
    f.update(s, registry_.find(s.type), [&p](const Result<Done>& r) { p.set_value(r); });
    EXPECT_EQ(fut.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return fut.get();
  }
  static int64_t counter(const FlowRuntime& f, const std::string& name) {
    for (const auto& [k, v] : f.status().counters) {
      if (k == name) return v;
    }
    return 0;
  }
  std::string storedRecord(const std::string& id) {
    auto all = store_->loadAll();
    EXPECT_TRUE(all.ok());
    for (const auto& f : all.value()) {
      if (f.id == id) return f.record_json;
    }
    return "";
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
  std::unique_ptr<RunRecorder> runs_;  // after store_: destroyed (stopped) before it
  PluginRegistry registry_;
  ThreadPool pool_{2};
  Timer timer_;
  EngineServices services_{};
  std::vector<std::shared_ptr<FlowRuntime>> flows_;
};

}  // namespace sluice::test
