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

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  std::atomic<size_t> busy_{0};
  bool stopping_ = false;       // guarded by mu_
  size_t running_threads_ = 0;  // guarded by mu_
  size_t replacements_ = 0;     // guarded by mu_: standing in right now
  size_t retire_any_ = 0;       // guarded by mu_: workers asked to retire
  std::condition_variable exited_cv_;
  std::vector<std::thread> threads_;  // guarded by mu_
};

/// One thread firing callbacks at deadlines. Callbacks must be short (post real work elsewhere).
class Timer {
 public:
  Timer();
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Runs `fn` on the timer thread at `when` (or soon after); returns an id for cancel().
  uint64_t at(Clock::time_point when, std::function<void()> fn);
  /// Forgets a callback that has not fired yet; harmless when it already fired.
  void cancel(uint64_t id);
  void shutdown();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, uint64_t> order_;  // guarded by mu_
  std::map<uint64_t, std::pair<Clock::time_point, std::function<void()>>>
      entries_;            // guarded by mu_
  uint64_t next_id_ = 1;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice
