// A pending command is answered exactly once: by its operation or by its deadline.
#include "core/runtime/pending.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "core/runtime/deadline_batch.hpp"

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

// A command's deadlines, collected in a DeadlineBatch: one timer entry per delay, each callback
// run once, none before its delay has passed since the batch was armed.
TEST(DeadlineBatchTest, RunsEachDeadlineOnceAndNeverEarly) {
  Timer timer;
  std::mutex mu;
  std::vector<std::pair<int, Clock::time_point>> fired;
  Clock::time_point armed;
  {
    DeadlineBatch batch(&timer);
    for (int i = 0; i < 300; ++i) {
      const auto after = i % 3 == 0 ? 30ms : 60ms;
      batch.add(after, [&mu, &fired, i] {
        std::lock_guard lock(mu);
        fired.emplace_back(i, Clock::now());
      });
    }
    // The delays count from arm(), not from add(): a gap between them that a deadline timed
    // from its add() would fire inside.
    const auto added = Clock::now();
    while (Clock::now() - added < 40ms) std::this_thread::yield();
    armed = Clock::now();
    batch.arm();
  }
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (fired.size() >= 300u) break;
    }
    ASSERT_LT(Clock::now(), deadline) << "every deadline fires";
    std::this_thread::sleep_for(1ms);
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(fired.size(), 300u);
  std::vector<int> seen(300, 0);
  for (const auto& [i, at] : fired) {
    ++seen[static_cast<size_t>(i)];
    EXPECT_GE(at - armed, i % 3 == 0 ? 30ms : 60ms) << i;
  }
  for (int n : seen) EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace sluice
