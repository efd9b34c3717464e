#include "core/runtime/executor.hpp"

namespace sluice {

ThreadPool::ThreadPool(size_t threads) {
  if (threads == 0) threads = 1;
  running_threads_ = threads;
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ThreadPool::~ThreadPool() { shutdown(std::chrono::milliseconds(2000)); }

void ThreadPool::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
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
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty() || retire_any_ > 0; });
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
  bool first;
  {
    std::lock_guard lock(mu_);
    id = next_id_++;
    entries_.emplace(id, std::make_pair(when, std::move(fn)));
    auto it = order_.emplace(when, id);
    first = it == order_.begin();
  }
  if (first) cv_.notify_one();
  return id;
}

void Timer::cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  auto range = order_.equal_range(it->second.first);
  for (auto o = range.first; o != range.second; ++o) {
    if (o->second == id) {
      order_.erase(o);
      break;
    }
  }
  entries_.erase(it);
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
  order_.clear();
  entries_.clear();
}

void Timer::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (order_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = order_.begin();
    const Clock::time_point due = first->first;  // a copy: cancel() may erase the node meanwhile
    if (due > Clock::now()) {
      cv_.wait_until(lock, due);
      continue;
    }
    uint64_t id = first->second;
    order_.erase(first);
    auto it = entries_.find(id);
    std::function<void()> fn = std::move(it->second.second);
    entries_.erase(it);
    lock.unlock();
    fn();
    fn = nullptr;  // what the callback held is released outside the lock
    lock.lock();
  }
}

}  // namespace sluice
