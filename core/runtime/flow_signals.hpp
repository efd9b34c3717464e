// What a flow tells the plugin code it runs, read through the host functions from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// Flags raised by the flow's commands. Atomics: read by plugin threads without a lock.
struct FlowSignals {
  std::atomic<bool> cancel{false};           // hard stop (or a soft stop past its timeout)
  std::atomic<bool> pause_requested{false};  // pause in progress or paused
  std::atomic<bool> stop_requested{false};   // any stop
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
