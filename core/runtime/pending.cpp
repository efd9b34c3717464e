#include "core/runtime/pending.hpp"

namespace sluice {

Pending::Pending(std::string operation, uint32_t timeout_ms, Done done)
    : deadline_(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms)),
      done_(std::move(done)),
      operation_(std::move(operation)),
      timeout_ms_(timeout_ms) {}

void Pending::begin() {
  std::lock_guard lock(mu_);
  begun_ = Clock::now();
  deadline_ = std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms_);
}

std::optional<Clock::time_point> Pending::begunAt() const {
  std::lock_guard lock(mu_);
  return begun_;
}

SystemTime Pending::deadline() const {
  std::lock_guard lock(mu_);
  return deadline_;
}

bool Pending::claim(bool by_deadline) {
  std::lock_guard lock(mu_);
  if (claimed_) return false;
  claimed_ = true;
  timed_out_ = by_deadline;
  return true;
}

bool Pending::claimed() const {
  std::lock_guard lock(mu_);
  return claimed_;
}

bool Pending::timedOut() const {
  std::lock_guard lock(mu_);
  return timed_out_;
}

void Pending::arm(Timer* timer, std::chrono::milliseconds after, Task fn) {
  const uint64_t id = timer->at(Clock::now() + after, std::move(fn));
  std::lock_guard lock(mu_);
  timers_.push_back(id);
}

void Pending::cancelTimers(Timer* timer) {
  boost::container::small_vector<uint64_t, 2> timers;
  {
    std::lock_guard lock(mu_);
    timers.swap(timers_);
  }
  for (uint64_t t : timers) timer->cancel(t);
}

}  // namespace sluice
