// A pending command is answered exactly once: by its operation or by its deadline.
#include "core/runtime/pending.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace sluice {
namespace {

using namespace std::chrono_literals;

TEST(PendingTest, ExactlyOneClaimWinsUnderContention) {
  const auto until = std::chrono::steady_clock::now() + 1s;
  int rounds = 0;
  while (std::chrono::steady_clock::now() < until || rounds < 100) {
    Pending p("start", 10, [](const Outcome&) {});
    std::atomic<int> wins{0};
    std::thread deadline([&] { wins += p.claim(true) ? 1 : 0; });
    wins += p.claim(false) ? 1 : 0;
    deadline.join();
    ASSERT_EQ(wins, 1);
    EXPECT_TRUE(p.claimed());
    ++rounds;
  }
}

TEST(PendingTest, DeadlineMarksTimedOutAndTimersCancel) {
  Timer timer;
  Pending p("stop", 50, [](const Outcome&) {});
  std::promise<void> fired;
  std::atomic<bool> cancelled_fired{false};
  p.arm(&timer, 5ms, [&] {
    EXPECT_TRUE(p.claim(true));
    fired.set_value();
  });
  ASSERT_EQ(fired.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(p.timedOut());
  EXPECT_FALSE(p.claim(false));
  Pending q("start", 50, [](const Outcome&) {});
  q.arm(&timer, 30ms, [&] { cancelled_fired = true; });
  q.cancelTimers(&timer);
  std::promise<void> later;
  timer.at(Clock::now() + 60ms, [&] { later.set_value(); });
  ASSERT_EQ(later.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(cancelled_fired);
  EXPECT_EQ(q.operation(), "start");
}

}  // namespace
}  // namespace sluice
