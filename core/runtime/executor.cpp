#include "core/runtime/executor.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/runtime/brief_lock.hpp"

namespace sluice {

ThreadPool::ThreadPool(size_t threads, int nice) {
  if (nice != 0) {
    errno = 0;
    const int own = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
    if (errno == 0) nice_ = std::min(own + nice, 19);
  }
  if (threads == 0) threads = 1;
  running_threads_ = threads;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ThreadPool::~ThreadPool() { shutdown(std::chrono::milliseconds(2000)); }

namespace {
thread_local ThreadPool* batching_pool = nullptr;  // the pool a Batch on this thread collects for
thread_local std::vector<Task>* batching_tasks = nullptr;
}  // namespace

ThreadPool::Batch::Batch(ThreadPool* pool, bool cores_only) : pool_(pool), cores_only_(cores_only) {
  if (pool_ == nullptr || batching_pool != nullptr) {
    pool_ = nullptr;  // no pool, or nested: posts go straight through
    return;
  }
  // One vector per thread, kept with its capacity: a batch a millisecond would otherwise grow a
  // new one each time, and glibc consolidates its free lists at every allocation past 1 KB.
  thread_local std::vector<Task> collected;
  tasks_ = &collected;
  batching_pool = pool_;
  batching_tasks = tasks_;
}

ThreadPool::Batch::~Batch() {
  if (pool_ == nullptr) return;
  batching_pool = nullptr;
  batching_tasks = nullptr;
  if (!tasks_->empty()) pool_->postAll(*tasks_, cores_only_);
}

void ThreadPool::postAll(std::vector<Task>& tasks, bool cores_only) {
  static const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  size_t wake = 0;
  size_t idle = 0;
  {
    lockBriefly(mu_);
    std::lock_guard lock(mu_, std::adopt_lock);
    if (!stopping_) {
      const bool backlog = !tasks_.empty();
      for (auto& t : tasks) tasks_.push_back(std::move(t));
      posted_ += tasks.size();
      idle = idle_;
      wake = std::min(idle, tasks.size());
      if (cores_only && !backlog) {
        wake = std::min(wake, cores);
        // The next look at a stall comes a millisecond after this batch, not at once: the
        // workers just woken have not taken anything yet.
        posted_at_look_ = posted_;
        looked_at_ = std::chrono::steady_clock::now();
      }
    }
  }
  wake_ups_.fetch_add(wake, std::memory_order_relaxed);
  if (wake == idle && wake > 1) {
    cv_.notify_all();
  } else {
    for (size_t i = 0; i < wake; ++i) cv_.notify_one();
  }
  tasks.clear();  // dropped ones (the pool stopped) are destroyed outside the lock
}

void ThreadPool::post(Task task) {
  if (batching_pool == this) {
    batching_tasks->push_back(std::move(task));
    return;
  }
  bool wake;
  {
    lockBriefly(mu_);
    std::lock_guard lock(mu_, std::adopt_lock);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
    ++posted_;
    wake = idle_ > 0;  // else every worker is busy and takes it when done: no wake-up to pay
  }
  if (wake) {
    wake_ups_.fetch_add(1, std::memory_order_relaxed);
    cv_.notify_one();
  }
}

namespace {
thread_local bool retire_after_task = false;  // this worker's stuck call returned
}  // namespace

bool ThreadPool::replaceStuckWorker() {
  std::lock_guard lock(mu_);
  if (stopping_ || replacements_ >= kMaxReplacements) return false;
  ++replacements_;
  ++running_threads_;
  threads_.emplace_back([this] { run(); });
  return true;
}

void ThreadPool::retireAfterTask() { retire_after_task = true; }

void ThreadPool::retireOne() {
  {
    std::lock_guard lock(mu_);
    ++retire_any_;
  }
  cv_.notify_one();
}

bool ThreadPool::wakeIfStalled(std::chrono::steady_clock::time_point now) {
  size_t wake = 0;
  bool waiting = false;
  {
    std::lock_guard lock(mu_);
    waiting = !tasks_.empty() && idle_ > 0;
    if (now - looked_at_ < std::chrono::milliseconds(1)) return waiting;
    // FIFO: a task queued at the last look is still queued when fewer were taken since.
    if (waiting && taken_ < posted_at_look_) wake = std::min(idle_, tasks_.size());
    posted_at_look_ = posted_;
    looked_at_ = now;
  }
  wake_ups_.fetch_add(wake, std::memory_order_relaxed);
  if (wake > 1) {
    cv_.notify_all();
  } else if (wake == 1) {
    cv_.notify_one();
  }
  return waiting;
}

uint64_t ThreadPool::wakeUps() const { return wake_ups_.load(std::memory_order_relaxed); }

size_t ThreadPool::size() const {
  std::lock_guard lock(mu_);
  return running_threads_;
}

size_t ThreadPool::idle() const {
  std::lock_guard lock(mu_);
  return idle_;
}

size_t ThreadPool::queued() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void ThreadPool::retireLocked() {
  if (replacements_ > 0) --replacements_;
  --running_threads_;
  // A thread cannot join itself: it detaches its own handle and returns at once.
  const auto me = std::this_thread::get_id();
  for (auto it = threads_.begin(); it != threads_.end(); ++it) {
    if (it->get_id() == me) {
      it->detach();
      threads_.erase(it);
      break;
    }
  }
  exited_cv_.notify_all();
}

void ThreadPool::run() {
  // Per thread on Linux; a thread made from here (plugin code's own) inherits it. Raising it
  // needs no privilege, and failing to is harmless: the workers then run like the rest.
  if (nice_) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), *nice_);
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_, std::defer_lock);
      lockBriefly(lock);
      ++idle_;
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty() || retire_any_ > 0; });
      --idle_;
      if (stopping_) break;
      if (retire_any_ > 0) {
        --retire_any_;
        retireLocked();
        return;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++taken_;
    }
    busy_.fetch_add(1, std::memory_order_relaxed);
    task();
    task = nullptr;
    busy_.fetch_sub(1, std::memory_order_relaxed);
    if (retire_after_task) {
      retire_after_task = false;
      std::lock_guard lock(mu_);
      if (!stopping_) {
        retireLocked();
        return;
      }
    }
  }
  std::lock_guard lock(mu_);
  --running_threads_;
  exited_cv_.notify_all();
}

bool ThreadPool::shutdown(std::chrono::milliseconds bound) {
  std::deque<Task> dropped;
  {
    std::lock_guard lock(mu_);
    if (threads_.empty()) return true;
    if (stopping_) return true;
    stopping_ = true;
    dropped.swap(tasks_);
  }
  cv_.notify_all();
  dropped.clear();  // outside the lock: what they hold may post (dropped now) as it goes
  {
    std::unique_lock lock(mu_);
    exited_cv_.wait_for(lock, bound, [&] { return running_threads_ == 0; });
  }
  bool all = true;
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    all = running_threads_ == 0;
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    if (all) {
      t.join();
    } else {
      t.detach();  // a worker stuck in plugin code: the process exits without it
    }
  }
  return all;
}

}  // namespace sluice
