#include "core/metrics/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace sluice::metrics {
namespace {

// Largest |v| whose nanoseconds fit an int64 with room to spare; the conversion beyond is
// undefined.
constexpr double kMaxSeconds = 9e9;

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      // Value-initialized: C++20's std::atomic default constructor zeroes.
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) {
      throw std::invalid_argument("histogram bounds must be finite and strictly ascending");
    }
  }
}

void Histogram::observe(double v) {
  // lower_bound: the first bound >= v. NaN compares false with everything, so it lands at
  // the front; send it to +Inf instead, where it hides nothing about the real latencies.
  size_t i = bounds_.size();
  if (!std::isnan(v)) {
    i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    // Rounded to the nearest nanosecond by hand: std::llround is a libm call, a tenth of the
    // cost of observe().
    const double nanos = std::clamp(v, -kMaxSeconds, kMaxSeconds) * 1e9;
    const auto rounded = static_cast<int64_t>(nanos + (nanos < 0 ? -0.5 : 0.5));
    sum_nanos_.fetch_add(static_cast<uint64_t>(rounded), std::memory_order_relaxed);
  }
  counts_[i].fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  snapshot(s);
  return s;
}

void Histogram::snapshot(Snapshot& into) const {
  // The count is the sum of the buckets as read here, not a counter of its own: each bucket is
  // read once, so the cumulative series is monotone and ends at exactly `count` even while
  // other threads observe. The sum, read apart, may be a few observations ahead or behind the
  // count: a mean over a scrape interval (rate of sum / rate of count) is off by a few
  // observations of thousands, which is not worth a lock on the hot path.
  into.buckets.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    into.buckets[i] = running;
  }
  into.count = running;
  into.sum =
      static_cast<double>(static_cast<int64_t>(sum_nanos_.load(std::memory_order_relaxed))) / 1e9;
}

const std::vector<double>& Histogram::defaultLatencyBounds() {
  static const std::vector<double> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return bounds;
}

}  // namespace sluice::metrics
