// Group commit of the flows' run records (core/model/run_record.hpp) and of the type version
// each starts on.
//
// A run begins or ends on a flow's strand; its record is queued here instead of being written
// there, and one thread writes whatever is queued in one store transaction (one fsync), so that
// a command that starts 100,000 flows costs a few transactions, not 100,000. Durability before
// acknowledgement is kept by the one who answers: afterDurable() calls back once every record
// queued before it is stored (Engine::command answers through it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/store/store.hpp"

namespace sluice {

class RunRecorder {
 public:
  explicit RunRecorder(Store* store);
  ~RunRecorder();  // stop()
  RunRecorder(const RunRecorder&) = delete;
  RunRecorder& operator=(const RunRecorder&) = delete;

  /// Queues `row` (any thread, in the order of the flow's writes). `then`, when set, runs on the
  /// recorder's thread once the row is stored (or given up on after kAttempts, which is
  /// logged). Once the thread has ended (stop()), writes the row on the calling thread instead
  /// and returns false: `then` was not taken, the caller runs it (outside its own locks).
  bool record(RunRecordRow row, std::function<void()> then = nullptr);
  /// Calls `then` once every row queued before this call is stored: at once (on this thread)
  /// when none is waiting, else on the recorder's thread.
  void afterDurable(std::function<void()> then);
  /// Writes what is queued (rows queued meanwhile too), runs its callbacks and ends the thread.
  /// Idempotent.
  void stop();

  /// Transactions written so far (tests, metrics).
  uint64_t transactions() const;

 private:
  struct Waiter {
    uint64_t upto;  // stored once stored_ reaches this
    std::function<void()> then;
  };
  static constexpr int kAttempts = 3;
  static constexpr std::chrono::milliseconds kRetryDelay{100};  // times the attempt's number
  // Group commit in a burst: a transaction that ended less than kBurst ago makes the next one
  // wait up to kLinger for kGroupRows rows.
  static constexpr std::chrono::milliseconds kBurst{2};
  static constexpr std::chrono::milliseconds kLinger{1};
  static constexpr size_t kGroupRows = 2048;
  static constexpr size_t kKeepRows = 16384;  // capacity kept between groups (2 MB per buffer)

  void run();
  bool write(std::vector<RunRecordRow>& rows);  // false (logged) when the transaction failed

  Store* store_;  // borrowed, outlives this
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RunRecordRow> queued_;  // guarded by mu_
  std::deque<Waiter> waiters_;        // guarded by mu_, in order of `upto`
  uint64_t enqueued_ = 0;             // guarded by mu_: rows queued so far
  uint64_t stored_ = 0;               // guarded by mu_: rows stored (or given up on) so far
  uint64_t transactions_ = 0;         // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  bool exited_ = false;               // guarded by mu_: the thread wrote its last rows
  std::chrono::steady_clock::time_point last_write_;  // guarded by mu_: the last one ended
  std::thread thread_;
};

}  // namespace sluice
