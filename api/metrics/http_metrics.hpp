// The HTTP edge's own metrics: requests by method, route template and status code, and their
// durations by route. Route labels are templates such as /flows/status/{id}, never raw paths,
// so the number of series stays bounded whatever clients send.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "core/metrics/histogram.hpp"

namespace sluice::metrics {

class HttpMetrics {
 public:
  /// Counts one answered request; `seconds` from its dispatch to its response.
  void record(std::string_view method, std::string_view route, int code, double seconds);
  /// Appends the sluice_http_* families to `out` in the text exposition format.
  void write(std::string& out) const;

 private:
  mutable std::mutex mu_;
  // guarded by mu_: (method, route, code) -> count; route -> durations
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> durations_;
};

}  // namespace sluice::metrics
