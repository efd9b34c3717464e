// An in-process Engine with the bundled and test plugins, and synchronous wrappers of its
// callback API.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "core/engine/engine.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {

class EngineFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("engine-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    open();
  }
  void TearDown() override {
    if (engine_) engine_->shutdown();
  }
  void open() {
    EngineOptions o;
    o.data_dir = dir_;
    o.workers = 4;
    o.validate_timeout_ms = validate_timeout_ms_;
    o.plugin_dirs = {SLUICE_BUNDLED_PLUGIN_DIR, SLUICE_TEST_PLUGIN_DIR};
    o.host_executable = host_executable_;  // process isolation runs the real binary as host
    auto e = Engine::open(o);
    ASSERT_TRUE(e.ok()) << e.error().message;
    engine_ = std::move(e.value());
  }
  void reopen() {
    engine_->shutdown();
    engine_.reset();
    open();
  }

  FlowSpec spec(const std::string& text) {
    rapidjson::Document doc;
    EXPECT_TRUE(json::parse(text, doc, nullptr));
    FlowSpec s;
    std::vector<Problem> problems;
    EXPECT_TRUE(parseFlowSpec(doc, "", &s, problems)) << text;
    return s;
  }
  void create(const std::string& text) {
    auto r = engine_->create({spec(text)});
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  Result<std::vector<CommandDetail>> command(Command c, std::vector<std::string> ids,
                                             StopMode mode = StopMode::kSoft) {
    std::promise<Result<std::vector<CommandDetail>>> p;
    auto f = p.get_future();
    CommandRequest req;
    req.command = c;
    req.mode = mode;
    req.flow_ids = std::move(ids);
    engine_->command(req,
                     [&p](Result<std::vector<CommandDetail>> r) { p.set_value(std::move(r)); });
    return f.get();
  }
  Result<std::string> update(const std::string& text) {
    std::promise<Result<std::string>> p;
    auto f = p.get_future();
    engine_->update(spec(text), [&p](Result<std::string> r) { p.set_value(std::move(r)); });
    return f.get();
  }
  Result<Outcome> remove(const std::string& id) {
    std::promise<Result<Outcome>> p;
    auto f = p.get_future();
    engine_->remove(id, [&p](Result<Outcome> r) { p.set_value(std::move(r)); });
    return f.get();
  }
  State state(const std::string& id) { return engine_->status(id)->state; }
  int64_t counter(const std::string& id, const std::string& name) {
    const auto status = engine_->status(id);
    for (const auto& [n, v] : status->counters) {
      if (n == name) return v;
    }
    return 0;
  }
  bool waitState(const std::string& id, State s,
                 std::chrono::milliseconds d = std::chrono::seconds(10)) {
    return waitFor([&] { return state(id) == s; }, d);
  }

  std::filesystem::path dir_;
  std::string host_executable_ = SLUICE_BINARY;
  uint32_t validate_timeout_ms_ = 5000;
  std::unique_ptr<Engine> engine_;
};

}  // namespace sluice::test
