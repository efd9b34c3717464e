// Slows down guessing: an address with too many failed authentications in a window is refused
// (429 with Retry-After) for a lockout period. Other addresses are not affected.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sluice::auth {

struct LimiterOptions {
  size_t max_failures = 20;  // 0 = never lock out
  std::chrono::milliseconds window{10'000};
  std::chrono::milliseconds lockout{30'000};
};

class FailureLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit FailureLimiter(LimiterOptions options) : options_(options) {}

  /// Seconds `address` must wait (rounded up, at least 1), or 0 when it may go on.
  int64_t retryAfter(const std::string& address, Clock::time_point now);
  /// Counts one failed authentication of `address`; locks it out when it reached the limit.
  void fail(const std::string& address, Clock::time_point now);

 private:
  struct Entry {
    std::deque<Clock::time_point> failures;  // within the window
    Clock::time_point locked_until{};
  };
  /// Drops addresses with nothing left to remember. Caller holds mu_.
  void prune(Clock::time_point now);

  LimiterOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::atomic<size_t> size_{0};                     // entries_.size(), read without mu_
};

}  // namespace sluice::auth
