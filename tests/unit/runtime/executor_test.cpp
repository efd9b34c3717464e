// The worker pool and the timer: replacement workers for stuck plugin code retire when the
// stuck call returns, and the cap counts replacements at once, not over the pool's life; the
// timer fires in order, never early, each callback once, and cancels from any thread; a batch
// that wakes only as many workers as cores still gets every task run when those are stuck.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/runtime/timer.hpp"
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

// Several threads arm and cancel at once, as 100,000 flows' steps and deadlines do: every
// callback not cancelled fires exactly once and never before its time; none whose cancel
// returned before it was due fires. Bounded in time.
TEST(TimerTest, ConcurrentArmsAndCancelsFireEachOnceAndNeverEarly) {
  ThreadPool pool(2);
  Timer timer;
  timer.batchPostsTo(&pool);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 3000;
  struct Record {
    Clock::time_point due;
    std::optional<Clock::time_point> cancelled;  // when cancel() returned
    std::atomic<int> fired{0};
    std::atomic<bool> early{false};
    std::atomic<int64_t> fired_at{0};  // steady-clock ns
  };
  std::vector<std::vector<Record>> records(kThreads);
  for (auto& r : records) r = std::vector<Record>(kPerThread);
  std::atomic<int> posted{0};
  std::atomic<int> ran_on_pool{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Record& r = records[t][i];
        r.due = Clock::now() + std::chrono::microseconds((i * 37 + t * 11) % 20000);
        const uint64_t id = timer.at(r.due, [&] {
          if (Clock::now() < r.due) r.early = true;
          r.fired_at = Clock::now().time_since_epoch().count();
          ++r.fired;
          ++posted;
          pool.post([&] { ++ran_on_pool; });  // reaches the pool with its batch
        });
        if (i % 3 == 0) {
          timer.cancel(id);
          r.cancelled = Clock::now();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto all_due = Clock::now() + 20ms;
  ASSERT_TRUE(test::waitFor(
      [&] {
        if (Clock::now() < all_due + 50ms) return false;  // every callback had its chance
        for (auto& per : records) {
          for (auto& r : per) {
            if (!r.cancelled && r.fired.load() == 0) return false;
          }
        }
        return ran_on_pool.load() == posted.load();
      },
      20s));
  int must_not_fire = 0;
  for (auto& per : records) {
    for (auto& r : per) {
      EXPECT_FALSE(r.early.load());
      EXPECT_LE(r.fired.load(), 1);
      if (r.cancelled && *r.cancelled < r.due) {
        ++must_not_fire;
        EXPECT_EQ(r.fired.load(), 0)
            << "cancelled " << (r.due - *r.cancelled).count() / 1000 << " us before it was due, "
            << "fired " << (r.fired_at.load() - r.due.time_since_epoch().count()) / 1000
            << " us after";
      }
    }
  }
  EXPECT_GT(must_not_fire, 0);  // the test cancelled in time at least sometimes
  timer.shutdown();
  pool.shutdown(5s);
}

// Two callbacks due at the same instant fire in one batch, in the order they were armed; the
// first cancels the second, which then does not fire.
TEST(TimerTest, ACallbackCancelsALaterOneOfItsOwnBatch) {
  Timer timer;
  const auto due = Clock::now() + 20ms;
  std::atomic<uint64_t> second{0};
  std::atomic<bool> second_fired{false};
  std::promise<void> done;
  timer.at(due, [&] { timer.cancel(second.load()); });
  second = timer.at(due, [&] { second_fired = true; });
  timer.at(due + 30ms, [&] { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(second_fired.load());
}

// Whether `timer` took in everything armed before this call and sleeps again (within 5 s).
bool waitUntilAsleep(Timer& timer) {
  auto fired = std::make_shared<std::atomic<bool>>(false);
  timer.at(Clock::now(), [fired] { fired->store(true); });
  return test::waitFor([&] { return fired->load() && timer.sleeping(); }, 5s);
}

// A cancel reaches a sleeping timer: what the callback holds is released soon, not when the
// callback would have been due (an hour later here).
TEST(TimerTest, CancelReleasesWhatTheCallbackHoldsWhileTheTimerSleeps) {
  Timer timer;
  auto held = std::make_shared<int>(7);
  std::weak_ptr<int> weak = held;
  const uint64_t id = timer.at(Clock::now() + std::chrono::hours(1), [held] {});
  held.reset();
  EXPECT_FALSE(weak.expired());
  ASSERT_TRUE(waitUntilAsleep(timer));
  timer.cancel(id);
  EXPECT_TRUE(test::waitFor([&] { return weak.expired(); }, 5s));
}

// Cancels reach a sleeping timer one at a time, and in a burst from two threads larger than a
// batch; everything they held is released. The burst wakes the timer a few times (its first
// cancel, each full batch), not once per cancel, nor once per turn of the timer.
TEST(TimerTest, CancelsInABurstAllReleaseWhatTheyHold) {
  Timer timer;
  const auto far = Clock::now() + std::chrono::hours(1);
  for (int i = 0; i < 20; ++i) {
    auto held = std::make_shared<int>(i);
    std::weak_ptr<int> weak = held;
    const uint64_t id = timer.at(far, [held] {});
    held.reset();
    // Asleep until `far`: the cancel alone has to reach it.
    ASSERT_TRUE(waitUntilAsleep(timer));
    timer.cancel(id);
    ASSERT_TRUE(test::waitFor([&] { return weak.expired(); }, 5s)) << "cancel " << i;
  }
  constexpr int kEntries = 3000;  // more than one batch of cancels (Timer::kCancelBatch)
  std::vector<std::weak_ptr<int>> weaks;
  std::vector<uint64_t> ids;
  for (int i = 0; i < kEntries; ++i) {
    auto held = std::make_shared<int>(i);
    weaks.push_back(held);
    ids.push_back(timer.at(far, [held] {}));
  }
  ASSERT_TRUE(waitUntilAsleep(timer));
  const uint64_t woken_before = timer.cancelWakeUps();
  std::thread other([&] {
    for (int i = 1; i < kEntries; i += 2) timer.cancel(ids[i]);
  });
  for (int i = 0; i < kEntries; i += 2) timer.cancel(ids[i]);
  other.join();
  EXPECT_TRUE(test::waitFor(
      [&] { return std::all_of(weaks.begin(), weaks.end(), [](auto& w) { return w.expired(); }); },
      5s));
  EXPECT_GE(timer.cancelWakeUps() - woken_before, 1u);
  // A trickle, as a command's workers cancel their flows' deadlines: each cancel comes once the
  // one before was taken in (so the timer sleeps again). Within kCancelLag of its last intake
  // the timer looks again by itself; woken for each, it would count 20 here.
  constexpr int kTrickle = 20;
  ASSERT_TRUE(waitUntilAsleep(timer));
  const uint64_t trickle_before = timer.cancelWakeUps();
  for (int i = 0; i < kTrickle; ++i) {
    auto held = std::make_shared<int>(i);
    std::weak_ptr<int> weak = held;
    const uint64_t id = timer.at(far, [held] {});
    held.reset();
    timer.cancel(id);
    ASSERT_TRUE(test::waitFor([&] { return weak.expired(); }, 5s)) << "trickle " << i;
  }
  EXPECT_LE(timer.cancelWakeUps() - trickle_before, static_cast<uint64_t>(kTrickle / 2));
}

// Plugin code runs nicer than the engine's own threads: every worker of a pool made with
// `nice` runs at the maker's priority plus that (capped at 19), and a pool without one at the
// maker's.
TEST(ThreadPoolTest, WorkersRunAsMuchNicerAsAsked) {
  const auto niceOfThisThread = [] {
    return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  };
  const int own = niceOfThisThread();
  for (const int nice : {0, 5, 30}) {
    constexpr int kTasks = 16;
    std::mutex mu;
    std::vector<int> seen;
    {
      ThreadPool pool(4, nice);
      std::promise<void> all;
      for (int i = 0; i < kTasks; ++i) {
        pool.post([&] {
          std::lock_guard lock(mu);
          seen.push_back(niceOfThisThread());
          if (seen.size() == kTasks) all.set_value();
        });
      }
      ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    }
    ASSERT_EQ(seen.size(), static_cast<size_t>(kTasks));
    for (const int n : seen) EXPECT_EQ(n, std::min(own + nice, 19)) << "asked for " << nice;
  }
  EXPECT_EQ(niceOfThisThread(), own) << "the maker keeps its own";
}

// What one batch of callbacks posts to the pool reaches it: each task runs once, on a worker.
TEST(ThreadPoolTest, ABatchHandsItsPostsOverWhenItEnds) {
  ThreadPool pool(3);
  std::atomic<int> ran{0};
  std::promise<void> all;
  constexpr int kTasks = 500;
  {
    ThreadPool::Batch batch(&pool);
    for (int i = 0; i < kTasks; ++i) {
      pool.post([&] {
        if (++ran == kTasks) all.set_value();
      });
    }
    EXPECT_EQ(pool.queued(), 0u);  // kept aside until the batch ends
    EXPECT_EQ(ran.load(), 0);
  }
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(ran.load(), kTasks);
}

// Tasks that all wait for one another: they finish only when every one of them runs at once.
// Declared before the pool it is used in, and released at the end of the test whatever
// happened, so that a failing test fails instead of leaving workers on a destroyed object.
struct Rendezvous {
  explicit Rendezvous(int n) : expected(n) {}
  ~Rendezvous() { release(); }
  void arrive() {
    std::unique_lock lock(mu);
    ++arrived;
    cv.notify_all();
    cv.wait_for(lock, 20s, [&] { return released || arrived >= expected; });
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  int expected;
  int arrived = 0;
  bool released = false;
};

size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

TEST(ThreadPoolTest, ACoresOnlyBatchWakesAsManyWorkersAsCores) {
  const size_t n = cores() + 2;
  ThreadPool pool(n);
  ASSERT_TRUE(test::waitFor([&] { return pool.idle() == n; }, 5s));
  std::atomic<size_t> ran{0};
  const uint64_t before = pool.wakeUps();
  {
    ThreadPool::Batch batch(&pool, /*cores_only=*/true);
    for (size_t i = 0; i < n; ++i) pool.post([&] { ++ran; });
  }
  EXPECT_EQ(pool.wakeUps() - before, cores()) << "one per core, not one per idle worker";
  EXPECT_TRUE(test::waitFor([&] { return ran.load() == n; }, 5s));  // the woken take the rest
  // A batch without the limit wakes every idle worker it has a task for.
  ASSERT_TRUE(test::waitFor([&] { return pool.idle() == n; }, 5s));
  const uint64_t again = pool.wakeUps();
  {
    ThreadPool::Batch batch(&pool);
    for (size_t i = 0; i < n; ++i) pool.post([&] { ++ran; });
  }
  EXPECT_EQ(pool.wakeUps() - again, n);
}

TEST(ThreadPoolTest, ACoresOnlyBatchWakesTheRestWhenItsWorkersAreStuck) {
  const int n = static_cast<int>(cores()) + 2;
  Rendezvous meet(n);
  std::atomic<int> done{0};
  ThreadPool pool(static_cast<size_t>(n));
  // Every worker waiting first: a batch wakes only those that wait.
  ASSERT_TRUE(test::waitFor([&] { return pool.idle() == static_cast<size_t>(n); }, 5s));
  {
    ThreadPool::Batch batch(&pool, /*cores_only=*/true);
    for (int i = 0; i < n; ++i) {
      pool.post([&] {
        meet.arrive();
        ++done;
      });
    }
  }
  // The woken ones wait for the rest, which are still queued: only the stall check wakes them
  // (not before a millisecond after the batch).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (done.load() < n && std::chrono::steady_clock::now() < deadline) {
    pool.wakeIfStalled(std::chrono::steady_clock::now());
    std::this_thread::sleep_for(1ms);  // the stall check's own pace (the timer's millisecond)
  }
  EXPECT_EQ(done.load(), n);
  meet.release();
}

TEST(TimerTest, StepsStuckInPluginCodeDoNotHoldBackTheRestOfTheirBatch) {
  const int n = static_cast<int>(cores()) + 2;
  Rendezvous meet(n);
  std::atomic<int> done{0};
  ThreadPool pool(static_cast<size_t>(n));
  Timer timer;
  timer.batchPostsTo(&pool);
  ASSERT_TRUE(test::waitFor([&] { return pool.idle() == static_cast<size_t>(n); }, 5s));
  const uint64_t before = pool.wakeUps();
  const auto due = std::chrono::steady_clock::now() + 5ms;
  // One millisecond's steps, all posted to the pool by the timer in one batch; nothing else is
  // armed, so no later batch finds them queued: the timer's own stall check must.
  for (int i = 0; i < n; ++i) {
    timer.post(due, [&] {
      pool.post([&] {
        meet.arrive();
        ++done;
      });
    });
  }
  EXPECT_TRUE(test::waitFor([&] { return done.load() == n; }, 10s)) << done.load() << " of " << n;
  EXPECT_GT(pool.wakeUps() - before, cores()) << "the batch woke one worker per core, then more";
  meet.release();
}

}  // namespace
}  // namespace sluice
