#include "core/runtime/run_recorder.hpp"

#include <spdlog/spdlog.h>

namespace sluice {

RunRecorder::RunRecorder(Store* store) : store_(store), thread_([this] { run(); }) {}

RunRecorder::~RunRecorder() { stop(); }

void RunRecorder::record(RunRecordRow row, std::function<void()> then) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queued_.push_back(std::move(row));
      ++enqueued_;
      if (then) waiters_.push_back({enqueued_, std::move(then)});
      cv_.notify_one();
      return;
    }
  }
  std::vector<RunRecordRow> rows{std::move(row)};
  write(rows);
  if (then) then();
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

void RunRecorder::write(std::vector<RunRecordRow>& rows) {
  auto stored = store_->setRunRecords(rows);
  if (!stored.ok()) {
    spdlog::warn("cannot store the runs of {} flow(s) (first: {}): {}", rows.size(), rows[0].id,
                 stored.error().message);
  }
}

void RunRecorder::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
    if (queued_.empty()) break;  // stopping, and everything is written
    std::vector<RunRecordRow> rows;
    rows.swap(queued_);
    const uint64_t upto = enqueued_;
    lock.unlock();
    write(rows);
    lock.lock();
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
