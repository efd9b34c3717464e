// The engine's threads: a fixed pool of workers for plugin hooks, and one timer thread for
// deadlines and step scheduling.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice {

using Clock = std::chrono::steady_clock;

/// Fixed pool of worker threads running posted tasks in FIFO order.
class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();  // runs no further task; joins workers that return within `join_bound`
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Queues `task` (any thread). Ignored after shutdown began.
  void post(std::function<void()> task);

  /// While one is alive on a thread, what that thread posts to `pool` is kept aside and handed
  /// over together when it ends: one lock and one wake-up per idle worker for the whole batch
  /// (the timer fires a millisecond's steps this way). Nothing posted inside may be waited for
  /// inside. Not nested.
  class Batch {
   public:
    explicit Batch(ThreadPool* pool);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    ThreadPool* pool_;
    std::vector<std::function<void()>>* tasks_ = nullptr;  // the thread's own, capacity kept
  };
  /// Adds a worker to stand in for one stuck in plugin code that does not return (thread
  /// isolation). At most `kMaxReplacements` stand in at once; false when that many do.
  bool replaceStuckWorker();
  /// Called on a worker whose stuck call returned: it retires once its current task ends, so
  /// the pool goes back to its size.
  void retireAfterTask();
  /// Some worker retires (a replacement was added for a call that returned meanwhile).
  void retireOne();
  /// Live workers.
  size_t size() const;
  /// Tasks waiting for a worker.
  size_t queued() const;
  /// Workers running a task right now.
  size_t busy() const { return busy_.load(std::memory_order_relaxed); }

  static constexpr size_t kMaxReplacements = 32;
  /// Stops taking tasks and joins the workers; a worker stuck in plugin code past `bound` is
  /// detached (returns false then).
  bool shutdown(std::chrono::milliseconds bound);

 private:
  void run();
  void retireLocked();  // the calling worker leaves the pool; mu_ held
  void postAll(std::vector<std::function<void()>>& tasks);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  std::atomic<size_t> busy_{0};
  size_t idle_ = 0;             // guarded by mu_: workers waiting for a task
  bool stopping_ = false;       // guarded by mu_
  size_t running_threads_ = 0;  // guarded by mu_
  size_t replacements_ = 0;     // guarded by mu_: standing in right now
  size_t retire_any_ = 0;       // guarded by mu_: workers asked to retire
  std::condition_variable exited_cv_;
  std::vector<std::thread> threads_;  // guarded by mu_
};

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
  uint64_t at(Clock::time_point when, std::function<void()> fn);
  /// What the callbacks of one batch post to `pool` reaches it together (ThreadPool::Batch).
  /// Set before the first at(); `pool` outlives the timer's thread.
  void batchPostsTo(ThreadPool* pool) { batch_pool_ = pool; }
  /// Forgets a callback that has not fired yet; harmless when it already fired.
  void cancel(uint64_t id);
  void shutdown();

 private:
  void run();

  struct Entry {
    Clock::time_point due;
    uint64_t id;
    std::function<void()> fn;
  };
  /// Timer thread, `lock` held (released on return): moves what at() queued into the ordered
  /// entries, then takes out what cancel() named; `cancels` is left sorted.
  void takeIn(std::unique_lock<std::mutex>& lock, std::vector<Entry>& incoming,
              std::vector<uint64_t>& cancels);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> incoming_;    // guarded by mu_: at() since the thread last looked
  std::vector<uint64_t> cancels_;  // guarded by mu_: cancel() since the thread last looked
  std::atomic<bool> cancel_pending_{false};  // cancels_ is not empty (set and cleared under mu_)
  uint64_t next_id_ = 1;                     // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  // guarded by mu_: when the thread wakes by itself (min: it is awake, max: not at all)
  Clock::time_point wake_at_ = Clock::time_point::min();
  // The timer thread's own (and shutdown()'s once it ended): entries in firing order, and the
  // due time of each id, for cancel.
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> order_;
  std::unordered_map<uint64_t, Clock::time_point> due_of_;
  ThreadPool* batch_pool_ = nullptr;
  std::thread thread_;
};

}  // namespace sluice
