// The step path's containers: a Task keeps small callables inside itself and runs, moves and
// destroys each exactly once; the millisecond wheel hands out what is due, in order of due
// millisecond, never early, across its reach (the far heap) and after a long sleep; the timer's
// post() fires every callback once and never early, from many threads at once.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "core/runtime/ms_wheel.hpp"
#include "core/runtime/task.hpp"
#include "core/runtime/timer.hpp"
#include "fakes/server_process.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

struct Counted {
  std::shared_ptr<int> alive;  // use_count() tells how many copies live
  int* ran;
  void operator()() { ++*ran; }
};

TEST(TaskTest, SmallCallablesRunMoveAndDieOnce) {
  auto alive = std::make_shared<int>(0);
  int ran = 0;
  {
    Task a(Counted{alive, &ran});
    EXPECT_EQ(alive.use_count(), 2);
    Task b(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_TRUE(b);
    EXPECT_EQ(alive.use_count(), 2);
    b();
    b();
    EXPECT_EQ(ran, 2);
    std::vector<Task> many;
    for (int i = 0; i < 100; ++i) many.emplace_back(Counted{alive, &ran});  // grows: moves
    EXPECT_EQ(alive.use_count(), 102);
    for (auto& t : many) t();
    EXPECT_EQ(ran, 102);
    many.clear();
    EXPECT_EQ(alive.use_count(), 2);
    b = nullptr;
    EXPECT_EQ(alive.use_count(), 1);
  }
  EXPECT_EQ(alive.use_count(), 1);
}

TEST(TaskTest, LargeCallablesGoToTheHeapAndBehaveTheSame) {
  auto alive = std::make_shared<int>(0);
  int ran = 0;
  struct Big {
    char pad[200];
    Counted c;
    void operator()() { c(); }
  };
  {
    Task a(Big{{}, {alive, &ran}});
    Task b;
    b = std::move(a);
    b();
    EXPECT_EQ(ran, 1);
    EXPECT_EQ(alive.use_count(), 2);
  }
  EXPECT_EQ(alive.use_count(), 1);
  std::function<void()> f = [&] { ++ran; };  // a copy of a std::function fits inside
  Task t(f);
  t();
  f();
  EXPECT_EQ(ran, 3);
}

TEST(MsWheelTest, HandsOutWhatIsDueInOrderNeverEarlyNearAndFar) {
  int64_t now = 1'000'000;
  MsWheel w(now);
  std::vector<int64_t> fired;  // the due millisecond of each task, in firing order
  auto add = [&](int64_t ms) { w.add(ms, [&fired, ms] { fired.push_back(ms); }); };
  add(now);      // due at once
  add(now + 5);  // near
  add(now + 3);
  add(now + 3);                        // two in one millisecond
  add(now + MsWheel::kSlots + 10);     // beyond the wheel's reach: the heap
  add(now + 3 * MsWheel::kSlots + 1);  // further still
  EXPECT_EQ(w.size(), 6u);
  EXPECT_EQ(w.next(), now);
  std::vector<Task> due;
  auto fire = [&](int64_t at) {
    w.takeDue(at, due);
    for (auto& t : due) t();
    due.clear();
  };
  fire(now);
  EXPECT_EQ(fired, (std::vector<int64_t>{now}));
  EXPECT_EQ(w.next(), now + 3);
  fire(now + 2);  // nothing due yet
  EXPECT_EQ(fired.size(), 1u);
  fire(now + 4);
  EXPECT_EQ(fired, (std::vector<int64_t>{now, now + 3, now + 3}));
  fire(now + 5);
  EXPECT_EQ(w.next(), now + MsWheel::kSlots + 10);
  // Walking the clock a millisecond at a time (as the timer does) moves the far task into the
  // wheel as it comes within reach; it fires at its millisecond, not before.
  for (int64_t t = now + 6; t < now + MsWheel::kSlots + 10; t += 97) fire(t);
  EXPECT_EQ(fired.size(), 4u);
  fire(now + MsWheel::kSlots + 10);
  EXPECT_EQ(fired.back(), now + MsWheel::kSlots + 10);
  // A long sleep: one take far past everything hands out what is left.
  add(now + MsWheel::kSlots + 20);
  fire(now + 10 * MsWheel::kSlots);
  ASSERT_EQ(fired.size(), 7u);
  EXPECT_EQ(fired[5], now + MsWheel::kSlots + 20);
  EXPECT_EQ(fired[6], now + 3 * MsWheel::kSlots + 1);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_FALSE(w.next());
  // Past due when added: due at the next millisecond's take.
  add(now);
  EXPECT_EQ(w.next(), now + 10 * MsWheel::kSlots + 1);
  fire(now + 10 * MsWheel::kSlots + 1);
  EXPECT_EQ(fired.back(), now);
}

// The first task added may be far ahead (a flow stepping once an hour re-armed first): one added
// after it for sooner is not held back to its time.
TEST(MsWheelTest, AFarFirstTaskDoesNotHoldBackASoonerOne) {
  const int64_t now = 5'000'000;
  MsWheel w(now);
  std::vector<int64_t> fired;
  w.add(now + 3'600'000, [&] { fired.push_back(3'600'000); });
  w.add(now + 10, [&] { fired.push_back(10); });
  EXPECT_EQ(w.next(), now + 10);
  std::vector<Task> due;
  w.takeDue(now + 9, due);
  EXPECT_TRUE(due.empty());
  w.takeDue(now + 10, due);
  ASSERT_EQ(due.size(), 1u);
  due[0]();
  EXPECT_EQ(fired, (std::vector<int64_t>{10}));
}

// A timer whose first posted callback is an hour away fires a later-posted one in 5 ms on time
// (within the deadline of the wait, not an hour).
TEST(TimerTest, AFarFirstPostDoesNotHoldBackASoonerOne) {
  Timer timer;
  std::atomic<bool> far{false};
  std::atomic<bool> near{false};
  timer.post(Clock::now() + std::chrono::hours(1), [&] { far = true; });
  timer.post(Clock::now() + 5ms, [&] { near = true; });
  EXPECT_TRUE(test::waitFor([&] { return near.load(); }, 10s));
  EXPECT_FALSE(far.load());
  timer.shutdown();
}

// 100,000 steps a second in miniature: threads post callbacks due within 20 ms; each fires
// exactly once, never before its due time, and what it posts reaches the pool. Bounded in time.
TEST(TimerTest, PostedCallbacksFireOnceNeverEarlyFromManyThreads) {
  ThreadPool pool(2);
  Timer timer;
  timer.batchPostsTo(&pool);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  struct Record {
    Clock::time_point due;
    std::atomic<int> fired{0};
    std::atomic<bool> early{false};
  };
  std::vector<Record> records(kThreads * kPerThread);
  std::atomic<int> ran_on_pool{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Record& r = records[t * kPerThread + i];
        r.due = Clock::now() + std::chrono::microseconds((i * 37 + t * 11) % 20000);
        timer.post(r.due, [&] {
          if (Clock::now() < r.due) r.early = true;
          ++r.fired;
          pool.post([&] { ++ran_on_pool; });
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(
      test::waitFor([&] { return ran_on_pool.load() == static_cast<int>(records.size()); }, 20s));
  for (auto& r : records) {
    EXPECT_FALSE(r.early.load());
    EXPECT_EQ(r.fired.load(), 1);
  }
  timer.shutdown();
  pool.shutdown(5s);
}

}  // namespace
}  // namespace sluice
