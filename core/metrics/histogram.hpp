// A fixed-bucket histogram for latencies (seconds), cheap enough to observe on every step of
// every flow: one relaxed atomic add for the bucket and one for the sum, no lock, no CAS loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::metrics {

class Histogram {
 public:
  /// A point-in-time copy, in the shape the Prometheus text format wants.
  struct Snapshot {
    std::vector<uint64_t> buckets;  // cumulative: one per bound, then +Inf (always == count)
    double sum = 0;                 // seconds
    uint64_t count = 0;
  };

  /// `bounds` are the buckets' inclusive upper bounds: finite, strictly ascending (an implicit
  /// +Inf bucket follows). Throws std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  /// Counts `v` in the first bucket whose bound is >= v (NaN and values above the last bound
  /// land in +Inf). Thread-safe and lock-free.
  void observe(double v);

  Snapshot snapshot() const;
  /// Same, into `into` (its buckets' storage is reused: no allocation once sized).
  void snapshot(Snapshot& into) const;

  const std::vector<double>& bounds() const { return bounds_; }

  /// 0.5 ms to 10 s, the Prometheus client defaults with finer steps below 5 ms.
  static const std::vector<double>& defaultLatencyBounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket (not cumulative), then +Inf
  // Nanoseconds as a two's-complement int64 in a uint64: an integer fetch_add instead of a CAS
  // loop on a double, and an exact sum. Wraps after 2^63 ns (292 years) of summed time.
  std::atomic<uint64_t> sum_nanos_{0};
};

}  // namespace sluice::metrics
