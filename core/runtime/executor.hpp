// The engine's workers: a fixed pool of threads for plugin hooks (the timer that feeds them its
// steps is in timer.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/runtime/task.hpp"

namespace sluice {

using Clock = std::chrono::steady_clock;

/// Fixed pool of worker threads running posted tasks in FIFO order.
class ThreadPool {
 public:
  /// `nice`: the workers run that much nicer than the thread that made the pool (Linux
  /// scheduling priority, per thread; 0 = the same). The engine's workers run plugin code at a
  /// lower priority than its own threads (HTTP, timer, run records), so that plugin code that
  /// takes every core slows the flows, not the API or the engine's bookkeeping.
  explicit ThreadPool(size_t threads, int nice = 0);
  ~ThreadPool();  // runs no further task; joins workers that return within `join_bound`
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Queues `task` (any thread). Ignored after shutdown began.
  void post(Task task);

  /// While one is alive on a thread, what that thread posts to `pool` is kept aside and handed
  /// over together when it ends: one lock and one wake-up per idle worker for the whole batch
  /// (the timer fires a millisecond's steps this way). Nothing posted inside may be waited for
  /// inside. Not nested.
  ///
  /// `cores_only`: wake no more idle workers than the machine has cores, unless tasks were
  /// already waiting (a backlog). The timer's batches of steps are short tasks: waking eight
  /// workers on two cores each millisecond costs more in context switches than the steps
  /// (issue 14). Whoever posts that way checks `wakeIfStalled()` within a millisecond or two,
  /// so that tasks queued behind plugin code that blocks are not left waiting.
  class Batch {
   public:
    explicit Batch(ThreadPool* pool, bool cores_only = false);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    ThreadPool* pool_;
    bool cores_only_;
    std::vector<Task>* tasks_ = nullptr;  // the thread's own, capacity kept
  };
  /// When a task queued at the last look, a millisecond or more ago (or by the last cores-only
  /// batch), is still queued, wakes every idle worker: the awake ones are busy in plugin code
  /// that blocks, for good or for a while. Returns whether tasks wait with a worker idle (worth
  /// another look within a millisecond).
  bool wakeIfStalled(std::chrono::steady_clock::time_point now);
  /// Wake-ups handed to workers since the pool began (tests).
  uint64_t wakeUps() const;
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
  /// Workers waiting for a task.
  size_t idle() const;
  /// Workers running a task right now.
  size_t busy() const { return busy_.load(std::memory_order_relaxed); }

  static constexpr size_t kMaxReplacements = 32;
  /// Stops taking tasks and joins the workers; a worker stuck in plugin code past `bound` is
  /// detached (returns false then).
  bool shutdown(std::chrono::milliseconds bound);

 private:
  void run();
  void retireLocked();  // the calling worker leaves the pool; mu_ held
  void postAll(std::vector<Task>& tasks, bool cores_only);

  std::optional<int> nice_;  // the workers' nice value, when they get their own

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;  // guarded by mu_
  std::atomic<size_t> busy_{0};
  size_t idle_ = 0;  // guarded by mu_: workers waiting for a task
  // Guarded by mu_: tasks queued and taken, ever (FIFO: task k is taken when taken_ > k), and
  // posted_ at the last look of wakeIfStalled() or the last cores-only batch, and its time.
  uint64_t posted_ = 0;
  uint64_t taken_ = 0;
  uint64_t posted_at_look_ = 0;
  std::chrono::steady_clock::time_point looked_at_{};
  std::atomic<uint64_t> wake_ups_{0};
  bool stopping_ = false;       // guarded by mu_
  size_t running_threads_ = 0;  // guarded by mu_
  size_t replacements_ = 0;     // guarded by mu_: standing in right now
  size_t retire_any_ = 0;       // guarded by mu_: workers asked to retire
  std::condition_variable exited_cv_;
  std::vector<std::thread> threads_;  // guarded by mu_
};

}  // namespace sluice
