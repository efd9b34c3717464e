// The restart policy's arithmetic: doubling, cap, jitter, give-up and the reset window.
#include "core/runtime/restart_backoff.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::milliseconds;

RestartPolicy policy() {
  RestartPolicy rp;
  rp.on_failure = true;
  rp.max_restarts = 4;
  rp.backoff_ms = 100;
  rp.max_backoff_ms = 500;
  rp.reset_after_ms = 1000;
  return rp;
}

TEST(RestartBackoffTest, DelayDoublesAndIsCapped) {
  const auto rp = policy();
  EXPECT_EQ(RestartBackoff::delay(rp, 0, 1.0), milliseconds(100));
  EXPECT_EQ(RestartBackoff::delay(rp, 1, 1.0), milliseconds(200));
  EXPECT_EQ(RestartBackoff::delay(rp, 2, 1.0), milliseconds(400));
  EXPECT_EQ(RestartBackoff::delay(rp, 3, 1.0), milliseconds(500));
  EXPECT_EQ(RestartBackoff::delay(rp, 30, 1.2), milliseconds(500));
  EXPECT_EQ(RestartBackoff::delay(rp, 0, 0.8), milliseconds(80));
  for (int i = 0; i < 1000; ++i) {
    const double j = RestartBackoff::randomJitter();
    ASSERT_GE(j, 0.8);
    ASSERT_LE(j, 1.2);
  }
}

TEST(RestartBackoffTest, GivesUpAfterMaxRestartsAndResets) {
  const auto rp = policy();
  RestartBackoff b;
  auto t = RestartBackoff::Clock::now();
  for (uint32_t i = 0; i < rp.max_restarts; ++i) {
    const uint64_t g = b.generation();
    auto d = b.onFailure(rp, t, 1.0);
    ASSERT_TRUE(d.has_value()) << i;
    EXPECT_GT(b.generation(), g);  // voids an earlier pending restart
  }
  EXPECT_EQ(b.count(), rp.max_restarts);
  EXPECT_FALSE(b.onFailure(rp, t, 1.0).has_value());
  // Running cleanly for reset_after_ms forgives the earlier failures.
  b.onRunning(t);
  EXPECT_TRUE(b.onFailure(rp, t + milliseconds(1500), 1.0).has_value());
  EXPECT_EQ(b.count(), 1u);
  const uint64_t g = b.generation();
  b.reset();
  EXPECT_EQ(b.count(), 0u);
  EXPECT_NE(b.generation(), g);
  RestartPolicy never = rp;
  never.on_failure = false;
  EXPECT_FALSE(b.onFailure(never, t, 1.0).has_value());
}

}  // namespace
}  // namespace sluice
