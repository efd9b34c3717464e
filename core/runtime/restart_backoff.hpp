// The restart policy's arithmetic (runtime.restart): when a failed flow is started again.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "core/model/flow_spec.hpp"

namespace sluice {

/// The restart bookkeeping of one flow. Not thread-safe: the flow guards it with its mutex.
class RestartBackoff {
 public:
  using Clock = std::chrono::steady_clock;

  /// Delay before restart number `count` + 1: backoff_ms doubled per earlier restart, times
  /// `jitter` (0.8-1.2 in production), capped at max_backoff_ms.
  static std::chrono::milliseconds delay(const RestartPolicy& rp, uint32_t count, double jitter);
  /// A uniformly random jitter in [0.8, 1.2].
  static double randomJitter();

  /// The flow reached running.
  void onRunning(Clock::time_point now) {
    if (!running_since_) running_since_ = now;
  }
  /// The flow failed: the delay of the next restart, or nothing when the policy gives up (or
  /// does not restart). Counts the restart.
  std::optional<std::chrono::milliseconds> onFailure(const RestartPolicy& rp, Clock::time_point now,
                                                     double jitter);
  /// An operator's start or stop: a fresh count, and any pending restart is void.
  void reset();
  /// Voids a pending restart; returns the generation a restart must carry to be valid.
  uint64_t generation() const { return generation_; }
  uint32_t count() const { return count_; }

 private:
  uint32_t count_ = 0;       // restarts since the last clean run
  uint64_t generation_ = 0;  // bumped by every scheduled restart and every reset
  std::optional<Clock::time_point> running_since_;
};

}  // namespace sluice
