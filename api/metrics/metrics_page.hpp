// GET /metrics: the engine, the HTTP edge and the process, in the Prometheus text format.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace sluice {
class Engine;
}

namespace sluice::metrics {

class HttpMetrics;

struct MetricsPageOptions {
  /// Per-flow series (the plugins' counters and gauges) are written for every flow only while
  /// there are at most this many flows; past it, only for flows selected with ?flow_id=.
  size_t flow_limit = 1000;
};

/// The whole exposition. `selected`: the flows whose series are wanted (?flow_id=), or nothing
/// for the default (every flow, up to the limit). Unknown ids are skipped.
std::string renderMetrics(Engine& engine, const HttpMetrics& http,
                          const MetricsPageOptions& options,
                          const std::optional<std::vector<std::string>>& selected);

}  // namespace sluice::metrics
