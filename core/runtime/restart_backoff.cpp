#include "core/runtime/restart_backoff.hpp"

#include <algorithm>
#include <random>

namespace sluice {

std::chrono::milliseconds RestartBackoff::delay(const RestartPolicy& rp, uint32_t count,
                                                double jitter) {
  double d = rp.backoff_ms;
  for (uint32_t i = 0; i < count && d < rp.max_backoff_ms; ++i) d *= 2;
  d *= jitter;
  d = std::min<double>(d, rp.max_backoff_ms);
  return std::chrono::milliseconds(static_cast<int64_t>(d));
}

double RestartBackoff::randomJitter() {
  static thread_local std::mt19937 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.8, 1.2)(rng);
}

std::optional<std::chrono::milliseconds> RestartBackoff::onFailure(const RestartPolicy& rp,
                                                                   Clock::time_point now,
                                                                   double jitter) {
  // Running cleanly for the reset window forgives earlier failures.
  if (running_since_ && now - *running_since_ >= std::chrono::milliseconds(rp.reset_after_ms)) {
    count_ = 0;
  }
  running_since_.reset();
  if (!rp.on_failure || count_ >= rp.max_restarts) return std::nullopt;
  auto wait = delay(rp, count_, jitter);
  ++count_;
  ++generation_;
  return wait;
}

void RestartBackoff::reset() {
  ++generation_;
  count_ = 0;
}

}  // namespace sluice
