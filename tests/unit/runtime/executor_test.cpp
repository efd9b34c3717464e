// The worker pool and the timer: replacement workers for stuck plugin code retire when the
// stuck call returns, and the cap counts replacements at once, not over the pool's life.
#include "core/runtime/executor.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "fakes/server_process.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

TEST(ThreadPoolTest, ReplacementWorkersRetireWhenTheStuckCallReturns) {
  ThreadPool pool(2);
  ASSERT_EQ(pool.size(), 2u);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> stuck{0};
  for (int i = 0; i < 2; ++i) {
    pool.post([&, released] {
      ++stuck;
      released.wait();
      pool.retireAfterTask();  // what FlowRuntime does when a replaced hook returns
    });
    ASSERT_TRUE(pool.replaceStuckWorker());
  }
  ASSERT_TRUE(test::waitFor([&] { return stuck == 2; }, 5s));
  EXPECT_EQ(pool.size(), 4u);
  // The replacements run other work while the two workers are stuck.
  std::promise<void> ran;
  pool.post([&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
  release.set_value();
  EXPECT_TRUE(test::waitFor([&] { return pool.size() == 2; }, 5s)) << pool.size();
  std::promise<void> after;
  pool.post([&] { after.set_value(); });
  EXPECT_EQ(after.get_future().wait_for(5s), std::future_status::ready);
}

TEST(ThreadPoolTest, TheCapCountsReplacementsAtOnceNotOverTheLife) {
  ThreadPool pool(1);
  for (size_t i = 0; i < ThreadPool::kMaxReplacements + 8; ++i) {
    ASSERT_TRUE(pool.replaceStuckWorker()) << "replacement " << i;
    pool.retireOne();  // the stuck call returned meanwhile
    ASSERT_TRUE(test::waitFor([&] { return pool.size() == 1; }, 5s)) << pool.size();
  }
  for (size_t i = 0; i < ThreadPool::kMaxReplacements; ++i) ASSERT_TRUE(pool.replaceStuckWorker());
  EXPECT_FALSE(pool.replaceStuckWorker());
  EXPECT_TRUE(pool.shutdown(5s));
}

TEST(TimerTest, FiresInOrderAndCancels) {
  Timer timer;
  std::mutex mu;
  std::vector<int> fired;
  std::promise<void> last;
  const auto now = Clock::now();
  timer.at(now + 30ms, [&] {
    std::lock_guard lock(mu);
    fired.push_back(2);
    last.set_value();
  });
  timer.at(now + 10ms, [&] {
    std::lock_guard lock(mu);
    fired.push_back(1);
  });
  const uint64_t cancelled = timer.at(now + 20ms, [&] {
    std::lock_guard lock(mu);
    fired.push_back(99);
  });
  timer.cancel(cancelled);
  ASSERT_EQ(last.get_future().wait_for(5s), std::future_status::ready);
  std::lock_guard lock(mu);
  EXPECT_EQ(fired, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace sluice
