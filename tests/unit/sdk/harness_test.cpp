// sluice::testing::Harness itself: the fake host's state, clock, cancellation and stop
// descriptor, a dedicated-thread flow's run, a .so loaded as the engine would.
#include <gtest/gtest.h>
#include <poll.h>

#include <sluice/testing/harness.hpp>

namespace {

using sluice::sdk::Status;
using sluice::testing::Harness;
using sluice::testing::Stop;

// Resumes from a checkpoint, records the clock, and fails when the store does.
class Checkpointed : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "checkpointed";
  static constexpr const char* kDescription = "test";
  Checkpointed(sluice::sdk::Host host, const sluice::sdk::Config&) : StepFlow(host) {}
  Status start() override {
    auto saved = host().stateLookup("offset");
    if (!saved.ok()) return Status::error("cannot read the checkpoint");
    offset_ = saved.has_value() ? std::stoll(saved.value) : 0;
    return Status::ok();
  }
  Status step(sluice::sdk::StepControl&) override {
    if (host().cancelled()) return Status::error("cancelled");
    ++offset_;
    host().gaugeSet("at_ms", static_cast<double>(host().nowMs()));
    if (!host().statePut("offset", std::to_string(offset_))) return Status::error("put failed");
    return Status::ok();
  }

 private:
  int64_t offset_ = 0;
};

// Blocks on the stop descriptor alone.
class Blocking : public sluice::sdk::ThreadFlow {
 public:
  static constexpr const char* kName = "blocking";
  static constexpr const char* kDescription = "test";
  Blocking(sluice::sdk::Host host, const sluice::sdk::Config&) : ThreadFlow(host) {}
  Status run() override {
    pollfd p{host().stopFd(), POLLIN, 0};
    if (p.fd < 0) return Status::error("no stop fd");
    while (::poll(&p, 1, -1) < 0) {
    }
    host().info("woken");
    return Status::ok();
  }
};

// Finishes its work after three steps (SLUICE_DONE, ABI 1.3).
class Countdown : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "countdown";
  static constexpr const char* kDescription = "test";
  Countdown(sluice::sdk::Host host, const sluice::sdk::Config&) : StepFlow(host) {}
  Status step(sluice::sdk::StepControl&) override {
    return ++steps_ == 3 ? Status::done() : Status::ok();
  }

 private:
  int steps_ = 0;
};

TEST(Harness, AStepThatFinishesReportsDone) {
  auto h = Harness::of<Countdown>();
  ASSERT_TRUE(h.create());
  ASSERT_TRUE(h.start());
  EXPECT_FALSE(h.step().done);
  EXPECT_FALSE(h.step().done);
  auto last = h.step();
  EXPECT_TRUE(last.ok) << last;
  EXPECT_TRUE(last.done) << last;
}

TEST(Harness, PresetStateClockAndFailingStore) {
  auto h = Harness::of<Checkpointed>();
  h.setState("offset", "41");
  h.setClock(1000);
  ASSERT_TRUE(h.create());
  ASSERT_TRUE(h.start());
  ASSERT_TRUE(h.step());
  EXPECT_EQ(h.state("offset"), "42");
  h.advanceClock(500);
  ASSERT_TRUE(h.step());
  EXPECT_EQ(h.gauge("at_ms"), 1500.0);
  h.failState(true);
  auto failed = h.step();
  EXPECT_FALSE(failed);
  EXPECT_EQ(failed.error, "put failed");
  ASSERT_TRUE(h.create());  // a new instance: the store fails its start
  EXPECT_EQ(h.start().error, "cannot read the checkpoint");
  h.failState(false);
  ASSERT_TRUE(h.create());
  ASSERT_TRUE(h.start());
  h.cancel();
  EXPECT_EQ(h.step().error, "cancelled");
  EXPECT_TRUE(std::filesystem::is_directory(h.filesRoot()));
}

TEST(Harness, ThreadFlowBlockedOnItsOwnIoIsWokenByTheStop) {
  auto h = Harness::of<Blocking>();
  ASSERT_TRUE(h.create());
  ASSERT_TRUE(h.start());  // run() starts on its own thread
  EXPECT_FALSE(h.runEnded());
  EXPECT_TRUE(h.stop(Stop::kSoft));  // raises the stop, waits for run()
  ASSERT_TRUE(h.runOutcome().has_value());
  EXPECT_TRUE(*h.runOutcome());
  EXPECT_TRUE(h.logged("woken"));
}

TEST(Harness, LoadsAPluginAsTheEngineDoes) {
  auto h = Harness::load(std::string(SLUICE_BUNDLED_PLUGIN_DIR) + "/ticker.so", "ticker");
  EXPECT_FALSE(h.validate(R"({"interval_ms": 0})").empty());
  ASSERT_TRUE(h.create(R"({"interval_ms": 10})"));
  ASSERT_TRUE(h.start());
  ASSERT_TRUE(h.step());
  EXPECT_TRUE(h.stop(Stop::kHard));
  EXPECT_THROW(Harness::load(std::string(SLUICE_BUNDLED_PLUGIN_DIR) + "/ticker.so", "nope"),
               std::runtime_error);
}

}  // namespace
