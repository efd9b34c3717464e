#include "api/auth/failure_limiter.hpp"

namespace sluice::auth {
namespace {
constexpr size_t kPruneAbove = 10'000;  // addresses remembered before old ones are dropped
}

int64_t FailureLimiter::retryAfter(const std::string& address, Clock::time_point now) {
  if (size_.load(std::memory_order_relaxed) == 0) return 0;  // the common case: no failures
  std::lock_guard lock(mu_);
  auto it = entries_.find(address);
  if (it == entries_.end() || it->second.locked_until <= now) return 0;
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(it->second.locked_until - now);
  return std::max<int64_t>(1, (left.count() + 999) / 1000);
}

void FailureLimiter::fail(const std::string& address, Clock::time_point now) {
  if (options_.max_failures == 0) return;
  std::lock_guard lock(mu_);
  if (entries_.size() >= kPruneAbove) prune(now);
  Entry& e = entries_[address];
  while (!e.failures.empty() && e.failures.front() <= now - options_.window) {
    e.failures.pop_front();
  }
  e.failures.push_back(now);
  if (e.failures.size() >= options_.max_failures) {
    e.locked_until = now + options_.lockout;
    e.failures.clear();
  }
  size_.store(entries_.size(), std::memory_order_relaxed);
}

void FailureLimiter::prune(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    const bool stale =
        e.locked_until <= now && (e.failures.empty() || e.failures.back() <= now - options_.window);
    it = stale ? entries_.erase(it) : std::next(it);
  }
  size_.store(entries_.size(), std::memory_order_relaxed);
}

}  // namespace sluice::auth
