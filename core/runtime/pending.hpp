// A command waiting for its outcome, and its deadlines on the timer thread.
//
// A Pending is answered exactly once: by the operation when it ends, or by a deadline. Whoever
// claims it first answers; the other learns it was answered and only cleans up.
#pragma once

#include <boost/container/small_vector.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/model/states.hpp"
#include "core/runtime/timer.hpp"

namespace sluice {

using SystemTime = std::chrono::system_clock::time_point;

/// Where a command left a flow.
struct Outcome {
  State state = State::kStopped;
  std::string error;
};

class Pending {
 public:
  using Done = std::function<void(const Outcome&)>;
  Pending(std::string operation, uint32_t timeout_ms, Done done);

  /// First caller wins; the others learn the command was already answered.
  bool claim(bool by_deadline);
  bool claimed() const;
  /// Answered by a deadline.
  bool timedOut() const;
  /// Calls the caller's callback (once claimed).
  void answer(const Outcome& o) const { done_(o); }

  /// The operation begins on the flow's strand (it waited for a worker until now): its deadline
  /// is now + the timeout from here on.
  void begin();
  /// When the operation began, or nothing while it still waits to run.
  std::optional<Clock::time_point> begunAt() const;
  uint32_t timeoutMs() const { return timeout_ms_; }

  /// Arms `fn` on `timer` at now + `after`; cancelled by cancelTimers(). A closure of up to
  /// Task::kInline bytes is kept without an allocation.
  void arm(Timer* timer, std::chrono::milliseconds after, Task fn);
  void cancelTimers(Timer* timer);

  const std::string& operation() const { return operation_; }
  SystemTime deadline() const;

 private:
  mutable std::mutex mu_;
  bool claimed_ = false;    // guarded by mu_
  bool timed_out_ = false;  // guarded by mu_
  // guarded by mu_: inline for a start's deadline or a stop's two (escalation and bound); a
  // start that waited for a worker past its deadline re-arms, and only then may this allocate
  boost::container::small_vector<uint64_t, 2> timers_;
  std::optional<Clock::time_point> begun_;  // guarded by mu_
  SystemTime deadline_;                     // guarded by mu_
  const Done done_;
  const std::string operation_;
  const uint32_t timeout_ms_;
};

}  // namespace sluice
