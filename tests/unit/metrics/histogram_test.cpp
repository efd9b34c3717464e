// The histogram's buckets (first bound >= v), its cumulative snapshots, and its counts under
// concurrent observers.
#include "core/metrics/histogram.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sluice::metrics {
namespace {

TEST(HistogramTest, CountsEachValueInTheFirstBucketWhoseBoundIsAtLeastIt) {
  Histogram h({0.1, 0.5, 1});
  for (double v : {0.0, 0.1, 0.10000001, 0.5, 0.7, 1.0, 1.5, 100.0}) h.observe(v);
  const auto s = h.snapshot();
  // Per bucket 2 (0, 0.1), 2 (0.10000001, 0.5), 2 (0.7, 1), 2 (+Inf): cumulative below.
  EXPECT_EQ(s.buckets, (std::vector<uint64_t>{2, 4, 6, 8}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_DOUBLE_EQ(s.sum, 0.0 + 0.1 + 0.10000001 + 0.5 + 0.7 + 1.0 + 1.5 + 100.0);
}

TEST(HistogramTest, AnEmptyHistogramHasZeroesAndTheInfBucket) {
  Histogram h(Histogram::defaultLatencyBounds());
  const auto s = h.snapshot();
  EXPECT_EQ(s.buckets, std::vector<uint64_t>(Histogram::defaultLatencyBounds().size() + 1, 0));
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.sum, 0.0);

  Histogram only_inf({});
  only_inf.observe(3);
  EXPECT_EQ(only_inf.snapshot().buckets, std::vector<uint64_t>{1});
}

TEST(HistogramTest, NanIsCountedInInfWithoutSpoilingTheSum) {
  Histogram h({1});
  h.observe(std::numeric_limits<double>::quiet_NaN());
  h.observe(-0.25);  // a clock step backwards: first bucket, and the sum goes down
  h.observe(std::numeric_limits<double>::infinity());
  const auto s = h.snapshot();
  EXPECT_EQ(s.buckets, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(s.count, 3u);
  // +Inf is clamped to 9e9 s for the sum (llround of it would be undefined).
  EXPECT_DOUBLE_EQ(s.sum, 9e9 - 0.25);
}

TEST(HistogramTest, SumIsExactInNanoseconds) {
  Histogram h({1});
  for (int i = 0; i < 1000; ++i) h.observe(0.001);
  // A double accumulator would drift (0.001 is not representable); nanoseconds do not.
  EXPECT_EQ(h.snapshot().sum, 1.0);
}

TEST(HistogramTest, RefusesBoundsThatAreNotFiniteAndStrictlyAscending) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW(Histogram({std::numeric_limits<double>::quiet_NaN()}), std::invalid_argument);
  EXPECT_NO_THROW(Histogram({-1, 0, 1}));
}

TEST(HistogramTest, DefaultLatencyBounds) {
  EXPECT_EQ(Histogram::defaultLatencyBounds(),
            (std::vector<double>{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5, 5, 10}));
}

TEST(HistogramTest, SnapshotIntoReusesTheCallersBuffer) {
  Histogram h({1, 2});
  h.observe(1.5);
  Histogram::Snapshot s;
  s.buckets = {7, 7, 7, 7, 7};  // stale, and too long
  h.snapshot(s);
  EXPECT_EQ(s.buckets, (std::vector<uint64_t>{0, 1, 1}));
  EXPECT_EQ(s.count, 1u);
  EXPECT_DOUBLE_EQ(s.sum, 1.5);
}

TEST(HistogramTest, ConcurrentObservationsAllAddUpAndSnapshotsStayMonotone) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100'000;
  const std::vector<double> values = {0.0002, 0.001, 0.003, 0.2, 20};  // buckets 0, 1, 3, 8, +Inf
  Histogram h(Histogram::defaultLatencyBounds());
  std::atomic<bool> done{false};
  std::atomic<int> bad_snapshots{0};
  // A reader during the writes: cumulative counts never go down and +Inf is always the count.
  std::thread reader([&] {
    Histogram::Snapshot s;
    while (!done.load()) {
      h.snapshot(s);
      for (size_t i = 1; i < s.buckets.size(); ++i) {
        if (s.buckets[i] < s.buckets[i - 1]) ++bad_snapshots;
      }
      if (s.buckets.back() != s.count) ++bad_snapshots;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) h.observe(values[static_cast<size_t>(i + t) % 5]);
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  reader.join();

  EXPECT_EQ(bad_snapshots.load(), 0);
  const auto s = h.snapshot();
  const uint64_t total = uint64_t{kThreads} * kPerThread;
  const uint64_t each = total / 5;
  EXPECT_EQ(s.count, total);
  std::vector<uint64_t> expected(15);
  const size_t index[] = {0, 1, 3, 8, 14};
  for (size_t k = 0; k < 5; ++k) {
    for (size_t i = index[k]; i < expected.size(); ++i) expected[i] += each;
  }
  EXPECT_EQ(s.buckets, expected);
  EXPECT_NEAR(s.sum, static_cast<double>(each) * (0.0002 + 0.001 + 0.003 + 0.2 + 20), 1e-6);
}

}  // namespace
}  // namespace sluice::metrics
