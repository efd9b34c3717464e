#include "core/runtime/timer.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "core/runtime/brief_lock.hpp"

namespace sluice {

namespace {

// The whole millisecond of the steady clock at or after `t`; the wheel's slots are these.
int64_t wholeMsAfter(Clock::time_point t) {
  return std::chrono::ceil<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

Timer::Timer()
    : wheel_(
          std::chrono::floor<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count()),
      thread_([this] { run(); }) {}

Timer::~Timer() { shutdown(); }

uint64_t Timer::at(Clock::time_point when, Task fn) {
  uint64_t id;
  bool wake;
  {
    lockBriefly(mu_);
    std::lock_guard lock(mu_, std::adopt_lock);
    id = next_id_++;
    incoming_.push_back({when, id, std::move(fn)});
    wake = when < wake_at_;  // the thread sleeps past it (never while it is awake)
  }
  if (wake) cv_.notify_one();
  return id;
}

void Timer::post(Clock::time_point when, Task fn) {
  bool wake;
  {
    lockBriefly(mu_);
    std::lock_guard lock(mu_, std::adopt_lock);
    incoming_.push_back({when, 0, std::move(fn)});
    wake = when < wake_at_;
  }
  if (wake) cv_.notify_one();
}

void Timer::cancel(uint64_t id) {
  bool wake;
  {
    lockBriefly(mu_);
    std::lock_guard lock(mu_, std::adopt_lock);
    cancels_.push_back(id);
    cancel_pending_.store(true, std::memory_order_relaxed);
    // Asleep: woken so that what the cancelled entries hold is released within about
    // kCancelLag, but not once per cancel: a command's 100,000 flows each cancel their
    // deadlines, and each wake-up cost a futex call here and a turn of the thread. The first
    // cancel of a burst wakes it when it sleeps for longer than that; while cancels come, it
    // looks again every kCancelLag by itself (run()). A full batch wakes it at once.
    const bool asleep = wake_at_ != Clock::time_point::min();
    wake = asleep && (cancels_.size() == kCancelBatch ||
                      (cancels_.size() == 1 && wake_at_ > Clock::now() + kCancelLag));
  }
  if (wake) {
    cancel_wake_ups_.fetch_add(1, std::memory_order_relaxed);
    cv_.notify_one();
  }
}

bool Timer::sleeping() {
  std::lock_guard lock(mu_);
  return wake_at_ != Clock::time_point::min();
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
  wheel_.clear();
}

void Timer::takeIn(std::unique_lock<std::mutex>& lock, std::vector<Entry>& incoming,
                   std::vector<uint64_t>& cancels) {
  incoming.swap(incoming_);
  cancels.swap(cancels_);
  cancel_pending_.store(false, std::memory_order_relaxed);
  lock.unlock();
  // Arms first: a cancel may follow its at() in the same intake.
  for (auto& e : incoming) {
    if (e.id == 0) {
      wheel_.add(wholeMsAfter(e.due), std::move(e.fn));
      continue;
    }
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
  std::vector<std::pair<uint64_t, Task>> batch;
  std::vector<Task> steps;  // from the wheel (never cancelled)
  std::unique_lock lock(mu_);
  for (;;) {
    wake_at_ = Clock::time_point::min();  // awake: at() and cancel() need not wake this thread
    if (stopping_) return;
    // The ordered entries belong to this thread alone: at() and cancel() only queue, so that
    // 100,000 re-arms a second do not wait behind the firing of a batch.
    takeIn(lock, incoming, cancels);
    const bool took_cancels = !cancels.empty();
    cancels.clear();
    const Clock::time_point now = Clock::now();
    while (!order_.empty() && order_.begin()->first.first <= now && batch.size() < kMaxBatch) {
      auto first = order_.begin();
      const uint64_t id = first->first.second;
      batch.emplace_back(id, std::move(first->second));
      order_.erase(first);
      due_of_.erase(id);
    }
    wheel_.takeDue(std::chrono::floor<std::chrono::milliseconds>(now.time_since_epoch()).count(),
                   steps);
    if (!batch.empty() || !steps.empty()) {
      lock.lock();
      takeIn(lock, incoming, cancels);  // what was cancelled until the batch fires is not fired
      {
        ThreadPool::Batch posts(batch_pool_.load(), /*cores_only=*/true);
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
        for (auto& fn : steps) fn();
      }
      cancels.clear();
      batch.clear();  // what the callbacks held is released outside the lock
      steps.clear();
      lock.lock();
      continue;
    }
    // Its batches woke only as many workers as there are cores: while tasks wait with a worker
    // idle, look again each millisecond, and wake the rest when one waited that long.
    ThreadPool* const pool = batch_pool_.load();
    const bool backlog = pool != nullptr && pool->wakeIfStalled(now);
    lock.lock();
    if (stopping_ || !incoming_.empty() || !cancels_.empty()) continue;
    const std::optional<int64_t> wheel_next = wheel_.next();
    if (backlog) {
      wake_at_ = std::min(wheel_next ? Clock::time_point(std::chrono::milliseconds(*wheel_next))
                                     : Clock::time_point::max(),
                          now + std::chrono::milliseconds(1));
      if (!order_.empty()) {
        wake_at_ = std::min(wake_at_, Clock::time_point(std::chrono::milliseconds(
                                          wholeMsAfter(order_.begin()->first.first))));
      }
      cv_.wait_until(lock, wake_at_);
    } else if (order_.empty() && !wheel_next && !took_cancels) {
      wake_at_ = Clock::time_point::max();
      cv_.wait(lock);
    } else {
      // To the whole millisecond after the first: what falls due in between fires with it.
      int64_t ms = wheel_next.value_or(INT64_MAX);
      if (!order_.empty()) ms = std::min(ms, wholeMsAfter(order_.begin()->first.first));
      wake_at_ = ms == INT64_MAX ? Clock::time_point::max()
                                 : Clock::time_point(std::chrono::milliseconds(ms));
      // In a burst of cancels, looks again soon (cancel() wakes it only for a full batch).
      if (took_cancels) wake_at_ = std::min(wake_at_, now + kCancelLag);
      cv_.wait_until(lock, wake_at_);
    }
  }
}

}  // namespace sluice
