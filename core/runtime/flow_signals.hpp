// What a flow tells the plugin code it runs, read through the host functions from any thread.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// A descriptor that becomes readable once raised (an eventfd), for plugin code that blocks in
/// poll() on its own I/O: sluice_host.stop_fd (ABI 1.2).
class WakeFd {
 public:
  WakeFd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~WakeFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;
  int fd() const { return fd_; }
  void raise() {
    const uint64_t one = 1;
    if (fd_ >= 0) [[maybe_unused]]
      auto n = ::write(fd_, &one, sizeof one);
  }
  void clear() {
    uint64_t value = 0;
    while (fd_ >= 0 && ::read(fd_, &value, sizeof value) > 0) {
    }
  }

 private:
  int fd_;
};

/// Flags raised by the flow's commands. Atomics: read by plugin threads without a lock. A stop
/// or a cancellation also wakes `wake`.
struct FlowSignals {
  std::atomic<bool> cancel{false};           // hard stop (or a soft stop past its timeout)
  std::atomic<bool> pause_requested{false};  // pause in progress or paused
  std::atomic<bool> stop_requested{false};   // any stop
  WakeFd wake;                               // readable once a stop or cancellation is raised
  void raiseStop() {
    stop_requested = true;
    wake.raise();
  }
  void raiseCancel() {
    cancel = true;
    wake.raise();
  }
  /// A new instance starts: nothing raised.
  void reset() {
    cancel = false;
    pause_requested = false;
    stop_requested = false;
    wake.clear();
  }
};

/// Counters and gauges a flow's plugin reports (GET /flows/status `metrics`). Thread-safe.
class FlowMetrics {
 public:
  void add(const std::string& name, int64_t delta) {
    std::lock_guard lock(mu_);
    counters_[name] += delta;
  }
  void set(const std::string& name, double value) {
    std::lock_guard lock(mu_);
    gauges_[name] = value;
  }
  std::vector<std::pair<std::string, int64_t>> counters() const {
    std::lock_guard lock(mu_);
    return {counters_.begin(), counters_.end()};
  }
  std::vector<std::pair<std::string, double>> gauges() const {
    std::lock_guard lock(mu_);
    return {gauges_.begin(), gauges_.end()};
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> counters_;  // guarded by mu_
  std::map<std::string, double> gauges_;     // guarded by mu_
};

}  // namespace sluice
