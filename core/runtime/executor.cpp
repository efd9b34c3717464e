#include "core/runtime/executor.hpp"

#include <algorithm>

namespace sluice {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = 1;
  running_threads_ = threads;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ThreadPool::~ThreadPool() { shutdown(std::chrono::milliseconds(2000)); }

namespace {
thread_local ThreadPool* batching_pool = nullptr;  // the pool a Batch on this thread collects for
thread_local std::vector<std::function<void()>>* batching_tasks = nullptr;
}  // namespace

ThreadPool::Batch::Batch(ThreadPool* pool) : pool_(pool) {
  if (pool_ == nullptr || batching_pool != nullptr) {
    pool_ = nullptr;  // no pool, or nested: posts go straight through
    return;
  }
  // One vector per thread, kept with its capacity: a batch a millisecond would otherwise grow a
  // new one each time, and glibc consolidates its free lists at every allocation past 1 KB.
  thread_local std::vector<std::function<void()>> collected;
  tasks_ = &collected;
  batching_pool = pool_;
  batching_tasks = tasks_;
}

ThreadPool::Batch::~Batch() {
  if (pool_ == nullptr) return;
  batching_pool = nullptr;
  batching_tasks = nullptr;
  if (!tasks_->empty()) pool_->postAll(*tasks_);
}

void ThreadPool::postAll(std::vector<std::function<void()>>& tasks) {
  size_t wake = 0;
  size_t idle = 0;
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      for (auto& t : tasks) tasks_.push_back(std::move(t));
      idle = idle_;
      wake = std::min(idle, tasks.size());
    }
  }
  if (wake == idle && wake > 1) {
    cv_.notify_all();
  } else {
    for (size_t i = 0; i < wake; ++i) cv_.notify_one();
  }
  tasks.clear();  // dropped ones (the pool stopped) are destroyed outside the lock
}

void ThreadPool::post(std::function<void()> task) {
  if (batching_pool == this) {
    batching_tasks->push_back(std::move(task));
    return;
  }
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
    wake = idle_ > 0;  // else every worker is busy and takes it when done: no wake-up to pay
  }
  if (wake) cv_.notify_one();
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

size_t ThreadPool::size() const {
  std::lock_guard lock(mu_);
  return running_threads_;
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
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
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
  std::deque<std::function<void()>> dropped;
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

Timer::Timer() : thread_([this] { run(); }) {}

Timer::~Timer() { shutdown(); }

uint64_t Timer::at(Clock::time_point when, std::function<void()> fn) {
  uint64_t id;
  bool wake;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    incoming_.push_back({when, id, std::move(fn)});
    wake = when < wake_at_;  // the thread sleeps past it (never while it is awake)
  }
  if (wake) cv_.notify_one();
  return id;
}

void Timer::cancel(uint64_t id) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    cancels_.push_back(id);
    cancel_pending_.store(true, std::memory_order_relaxed);
    // Asleep: woken once per burst of cancels, so that what they hold is released soon.
    wake = cancels_.size() == 1 && wake_at_ != Clock::time_point::min();
  }
  if (wake) cv_.notify_one();
}

void Timer::shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  incoming_.clear();
  cancels_.clear();
  order_.clear();
  due_of_.clear();
}

void Timer::takeIn(std::unique_lock<std::mutex>& lock, std::vector<Entry>& incoming,
                   std::vector<uint64_t>& cancels) {
  incoming.swap(incoming_);
  cancels.swap(cancels_);
  cancel_pending_.store(false, std::memory_order_relaxed);
  lock.unlock();
  // Arms first: a cancel may follow its at() in the same intake.
  for (auto& e : incoming) {
    order_.emplace(std::make_pair(e.due, e.id), std::move(e.fn));
    due_of_.emplace(e.id, e.due);
  }
  incoming.clear();  // moved-from
  for (const uint64_t id : cancels) {
    auto it = due_of_.find(id);
    if (it == due_of_.end()) continue;  // fired already (or taken out to fire: see run())
    order_.erase({it->second, id});
    due_of_.erase(it);
  }
  std::sort(cancels.begin(), cancels.end());
}

void Timer::run() {
  constexpr size_t kMaxBatch = 4096;
  std::vector<Entry> incoming;
  std::vector<uint64_t> cancels;
  std::vector<std::pair<uint64_t, std::function<void()>>> batch;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_at_ = Clock::time_point::min();  // awake: at() and cancel() need not wake this thread
    if (stopping_) return;
    // The ordered entries belong to this thread alone: at() and cancel() only queue, so that
    // 100,000 re-arms a second do not wait behind the firing of a batch.
    takeIn(lock, incoming, cancels);
    cancels.clear();
    const Clock::time_point now = Clock::now();
    while (!order_.empty() && order_.begin()->first.first <= now && batch.size() < kMaxBatch) {
      auto first = order_.begin();
      const uint64_t id = first->first.second;
      batch.emplace_back(id, std::move(first->second));
      order_.erase(first);
      due_of_.erase(id);
    }
    if (!batch.empty()) {
      lock.lock();
      takeIn(lock, incoming, cancels);  // what was cancelled until the batch fires is not fired
      {
        ThreadPool::Batch posts(batch_pool_);
        for (auto& [id, fn] : batch) {
          // What was cancelled until the last moment (by a callback of this batch too) is not
          // fired; the common case is one relaxed load.
          if (cancel_pending_.load(std::memory_order_relaxed)) {
            std::vector<uint64_t> more;
            lock.lock();
            takeIn(lock, incoming, more);
            cancels.insert(cancels.end(), more.begin(), more.end());
            std::sort(cancels.begin(), cancels.end());
          }
          if (!std::binary_search(cancels.begin(), cancels.end(), id)) fn();
        }
      }
      cancels.clear();
      batch.clear();  // what the callbacks held is released outside the lock
      lock.lock();
      continue;
    }
    lock.lock();
    if (stopping_ || !incoming_.empty() || !cancels_.empty()) continue;
    if (order_.empty()) {
      wake_at_ = Clock::time_point::max();
      cv_.wait(lock);
    } else {
      // To the whole millisecond after the first: what falls due in between fires with it.
      wake_at_ = Clock::time_point(std::chrono::ceil<std::chrono::milliseconds>(
          order_.begin()->first.first.time_since_epoch()));
      cv_.wait_until(lock, wake_at_);
    }
  }
}

}  // namespace sluice
