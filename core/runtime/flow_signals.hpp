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

#include "core/runtime/small_mutex.hpp"

namespace sluice {

/// A descriptor that becomes readable once raised (an eventfd), for plugin code that blocks in
/// poll() on its own I/O: sluice_host.stop_fd (ABI 1.2). Created on first use, so that flows
/// that never ask hold no descriptor.
class WakeFd {
 public:
  WakeFd() = default;
  ~WakeFd() {
    if (const int fd = fd_.load(); fd >= 0) ::close(fd);
  }
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;
  /// The descriptor, created now if needed (-1 when the system refuses one); `raised` says
  /// whether it must read as raised already (a stop that came before the first use).
  int fd(bool raised) {
    std::lock_guard lock(create_mu_);
    if (fd_.load() < 0) {
      fd_.store(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      if (raised) raise();
    }
    return fd_.load();
  }
  void raise() {
    const uint64_t one = 1;
    if (const int fd = fd_.load(); fd >= 0) [[maybe_unused]]
      auto n = ::write(fd, &one, sizeof one);
  }
  void clear() {
    uint64_t value = 0;
    const int fd = fd_.load();
    while (fd >= 0 && ::read(fd, &value, sizeof value) > 0) {
    }
  }

 private:
  SmallMutex create_mu_;
  std::atomic<int> fd_{-1};
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
  /// The stop descriptor (created on first use, raised when a stop came first).
  int stopFd() { return wake.fd(stop_requested.load() || cancel.load()); }
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
  mutable SmallMutex mu_;
  std::map<std::string, int64_t> counters_;  // guarded by mu_
  std::map<std::string, double> gauges_;     // guarded by mu_
};

}  // namespace sluice
