// The engine's timer: one thread that fires deadlines and steps, and hands what they post to
// the worker pool in batches.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/runtime/executor.hpp"
#include "core/runtime/ms_wheel.hpp"
#include "core/runtime/task.hpp"

namespace sluice {

/// One thread firing callbacks at deadlines. Callbacks must be short (post real work elsewhere).
/// It wakes on whole milliseconds of the steady clock and fires everything due by then in one
/// batch: 100,000 steps a second due at 100,000 different instants cost at most 1,000 wake-ups
/// (and the workers' wake-ups that follow), for at most a millisecond of lateness.
class Timer {
 public:
  Timer();
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Runs `fn` on the timer thread at `when` (or soon after); returns an id for cancel().
  uint64_t at(Clock::time_point when, Task fn);
  /// The same for a callback that is never cancelled (a flow's steps): it goes into a wheel of
  /// milliseconds (MsWheel), with no id and no ordered tree to keep.
  void post(Clock::time_point when, Task fn);
  /// What the callbacks of one batch post to `pool` reaches it together (ThreadPool::Batch).
  /// Set before the first at(); `pool` outlives the timer's thread.
  void batchPostsTo(ThreadPool* pool) { batch_pool_.store(pool); }
  /// Forgets a callback that has not fired yet; harmless when it already fired.
  void cancel(uint64_t id);
  void shutdown();
  /// The thread waits for its next deadline or a wake-up (tests).
  bool sleeping();
  /// The times cancel() woke the thread (tests: a burst of cancels wakes it a few times).
  uint64_t cancelWakeUps() const { return cancel_wake_ups_.load(std::memory_order_relaxed); }

 private:
  void run();

  struct Entry {
    Clock::time_point due;
    uint64_t id;  // 0: from post(), for the wheel
    Task fn;
  };
  /// Timer thread, `lock` held (released on return): moves what at() queued into the ordered
  /// entries, then takes out what cancel() named; `cancels` is left sorted.
  void takeIn(std::unique_lock<std::mutex>& lock, std::vector<Entry>& incoming,
              std::vector<uint64_t>& cancels);

  // A cancelled entry's task (what it holds) is released within about kCancelLag, or at once
  // when kCancelBatch cancels wait (cancel()).
  static constexpr std::chrono::milliseconds kCancelLag{50};
  static constexpr size_t kCancelBatch = 1024;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> incoming_;    // guarded by mu_: at() since the thread last looked
  std::vector<uint64_t> cancels_;  // guarded by mu_: cancel() since the thread last looked
  std::atomic<uint64_t> cancel_wake_ups_{0};
  std::atomic<bool> cancel_pending_{false};  // cancels_ is not empty (set and cleared under mu_)
  uint64_t next_id_ = 1;                     // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  // guarded by mu_: when the thread wakes by itself (min: it is awake, max: not at all)
  Clock::time_point wake_at_ = Clock::time_point::min();
  // The timer thread's own (and shutdown()'s once it ended): entries in firing order, and the
  // due time of each id, for cancel.
  std::map<std::pair<Clock::time_point, uint64_t>, Task> order_;
  std::unordered_map<uint64_t, Clock::time_point> due_of_;
  MsWheel wheel_;  // what post() queued (its cursor starts at the timer's construction)
  std::atomic<ThreadPool*> batch_pool_{nullptr};  // set once, read by the timer thread
  std::thread thread_;
};

}  // namespace sluice
