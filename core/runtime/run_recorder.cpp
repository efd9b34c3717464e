#include "core/runtime/run_recorder.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/runtime/brief_lock.hpp"

namespace sluice {

RunRecorder::RunRecorder(Store* store) : store_(store), thread_([this] { run(); }) {}

RunRecorder::~RunRecorder() { stop(); }

bool RunRecorder::record(RunRecordRow row, std::function<void()> then) {
  {
    std::unique_lock lock(mu_, std::defer_lock);
    lockBriefly(lock);
    if (!exited_) {  // while stopping too: the thread writes everything queued before it exits
      // The thread waits for an empty queue, or lingers for a group (run()): rows added to a
      // queued one need no wake-up (a command's flows record theirs while the thread writes
      // the first ones), unless they complete a group.
      const bool wake = queued_.empty() || queued_.size() + 1 == kGroupRows;
      queued_.push_back(std::move(row));
      ++enqueued_;
      if (then) waiters_.push_back({enqueued_, std::move(then)});
      lock.unlock();
      // After the lock: the recorder outlives every flow that records (the engine stops them
      // before it).
      if (wake) cv_.notify_one();
      return true;
    }
  }
  std::vector<RunRecordRow> rows{std::move(row)};
  write(rows);
  return false;
}

void RunRecorder::afterDurable(std::function<void()> then) {
  {
    std::lock_guard lock(mu_);
    if (stored_ < enqueued_) {
      waiters_.push_back({enqueued_, std::move(then)});
      return;
    }
  }
  then();
}

uint64_t RunRecorder::transactions() const {
  std::lock_guard lock(mu_);
  return transactions_;
}

void RunRecorder::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool RunRecorder::write(std::vector<RunRecordRow>& rows) {
  auto stored = store_->setRunRecords(rows);
  if (stored.ok()) return true;
  spdlog::warn("cannot store the runs of {} flow(s) (first: {}): {}", rows.size(), rows[0].id,
               stored.error().message);
  return false;
}

void RunRecorder::run() {
  // The group written and the queue swap buffers, so both keep their capacity: a command's
  // rows grow neither again (each growth moved every row and touched new pages). Up to
  // kKeepRows each.
  std::vector<RunRecordRow> rows;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
    // In a burst (the last transaction ended a moment ago: a command to many flows), a
    // millisecond more gathers a larger group: hundreds of rows per transaction instead of a
    // few dozen, and a tenth of the commits and fsyncs. A lone record is written at once.
    if (!stopping_ && queued_.size() < kGroupRows &&
        std::chrono::steady_clock::now() - last_write_ < kBurst) {
      cv_.wait_for(lock, kLinger, [&] { return stopping_ || queued_.size() >= kGroupRows; });
    }
    if (queued_.empty()) {
      exited_ = true;  // stopping, and everything queued is written: record() writes itself now
      return;
    }
    rows.swap(queued_);
    const uint64_t upto = enqueued_;
    lock.unlock();
    // A failed transaction (a database that went away for a moment, a deadlock it broke) is
    // tried again; past the last try the rows are given up on, as one warning, and those
    // waiting are answered (the flows' states are right in memory; only their stored runs lag).
    for (int attempt = 1; !write(rows) && attempt < kAttempts; ++attempt) {
      std::this_thread::sleep_for(kRetryDelay * attempt);
    }
    if (rows.capacity() > kKeepRows) {
      // A restore's burst is not kept for good (`rows = {}` would keep the capacity: that is
      // the initializer-list assignment, which only clears).
      std::vector<RunRecordRow>().swap(rows);
    } else {
      rows.clear();
    }
    lock.lock();
    last_write_ = std::chrono::steady_clock::now();
    ++transactions_;
    stored_ = upto;
    std::vector<std::function<void()>> ready;
    while (!waiters_.empty() && waiters_.front().upto <= stored_) {
      ready.push_back(std::move(waiters_.front().then));
      waiters_.pop_front();
    }
    lock.unlock();
    for (auto& then : ready) then();
    lock.lock();
  }
}

}  // namespace sluice
