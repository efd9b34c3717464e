// The Prometheus text exposition format 0.0.4 (what GET /metrics answers), written straight
// into a caller's string: no iostreams, no allocation per sample, so that a scrape of ~10,000
// flows costs a few milliseconds. The caller reserves and reuses the string between scrapes.
//
// The writer does not check names: metric and label names are the caller's constants (plugin
// counter names go into label values, which may hold any UTF-8). Values are always escaped.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/metrics/histogram.hpp"

namespace sluice::metrics {

/// One label of a series. Views only: the strings must outlive the call that writes them.
struct Label {
  std::string_view name;
  std::string_view value;
};

class ExpositionWriter {
 public:
  /// Appends to `out`; keeps a reference, so `out` must outlive the writer.
  explicit ExpositionWriter(std::string& out) : out_(out) {}

  /// `# HELP name help` (help escaped) and `# TYPE name type`; `type` is counter, gauge or
  /// histogram. Write it once before the family's samples.
  void family(std::string_view name, std::string_view type, std::string_view help);

  /// `# text`, a free comment. Newlines are escaped, and a text whose first word is HELP or
  /// TYPE gets a leading '_' so that a parser never mistakes it for a descriptor.
  void comment(std::string_view text);

  /// `name{labels} value`, the double as appendDouble writes it.
  void sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    writeDouble(name, {}, labels.begin(), labels.size(), value);
  }
  void sample(std::string_view name, const std::vector<Label>& labels, double value) {
    writeDouble(name, {}, labels.data(), labels.size(), value);
  }
  /// Integers (counters, sizes) exactly, without exponent. A template so that a plain int
  /// argument is not ambiguous between int64_t, uint64_t and double.
  template <std::integral T>
  void sample(std::string_view name, std::initializer_list<Label> labels, T value) {
    writeInteger(name, labels.begin(), labels.size(), value);
  }
  template <std::integral T>
  void sample(std::string_view name, const std::vector<Label>& labels, T value) {
    writeInteger(name, labels.data(), labels.size(), value);
  }

  /// The `name_bucket{labels,le="..."}` series (cumulative, ending with le="+Inf"), then
  /// `name_sum` and `name_count`. `snap.buckets` must hold bounds.size() + 1 counts, else
  /// std::invalid_argument.
  void histogram(std::string_view name, std::initializer_list<Label> labels,
                 const Histogram::Snapshot& snap, const std::vector<double>& bounds) {
    writeHistogram(name, labels.begin(), labels.size(), snap, bounds);
  }
  void histogram(std::string_view name, const std::vector<Label>& labels,
                 const Histogram::Snapshot& snap, const std::vector<double>& bounds) {
    writeHistogram(name, labels.data(), labels.size(), snap, bounds);
  }
  /// Same, from a live histogram, through a snapshot buffer the writer reuses.
  void histogram(std::string_view name, std::initializer_list<Label> labels, const Histogram& h) {
    h.snapshot(scratch_);
    writeHistogram(name, labels.begin(), labels.size(), scratch_, h.bounds());
  }
  void histogram(std::string_view name, const std::vector<Label>& labels, const Histogram& h) {
    h.snapshot(scratch_);
    writeHistogram(name, labels.data(), labels.size(), scratch_, h.bounds());
  }

 private:
  template <std::integral T>
  void writeInteger(std::string_view name, const Label* labels, size_t n, T value) {
    if constexpr (std::is_signed_v<T>) {
      writeSigned(name, labels, n, static_cast<int64_t>(value));
    } else {
      writeUnsigned(name, labels, n, static_cast<uint64_t>(value));
    }
  }
  void writeSigned(std::string_view name, const Label* labels, size_t n, int64_t value);
  void writeUnsigned(std::string_view name, const Label* labels, size_t n, uint64_t value);
  void writeDouble(std::string_view name, std::string_view suffix, const Label* labels, size_t n,
                   double value);
  void writeHistogram(std::string_view name, const Label* labels, size_t n,
                      const Histogram::Snapshot& snap, const std::vector<double>& bounds);
  // `name` + `suffix` + `{labels} `, up to the value.
  void writeSeries(std::string_view name, std::string_view suffix, const Label* labels, size_t n);

  std::string& out_;
  Histogram::Snapshot scratch_;
  // The le texts of the last bounds written: most histograms share one set of bounds, and
  // formatting each bound of each of 10,000 histograms would dominate the scrape.
  std::vector<double> le_bounds_;
  std::vector<std::string> le_texts_;  // `0.005"} `, ..., `+Inf"} `
  std::string labels_;                 // scratch of writeHistogram
  std::string bucket_prefix_;          // scratch of writeHistogram
};

/// Appends `v` as the Go client writes it: the shortest digits that round-trip, in fixed notation
/// for exponents -4 to 5 and as d.ddde±dd beyond (0.0005, 2.5, 123456, 1e+06, 1.5e-07), or
/// +Inf, -Inf, NaN.
void appendDouble(std::string& out, double v);

/// True when `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*, the format's metric name syntax.
bool validMetricName(std::string_view name);
/// A valid metric name made from `name`: each invalid character (a whole UTF-8 sequence counts
/// as one) becomes '_', a leading digit gets a '_' prefix, and an empty name becomes "_".
std::string sanitizeMetricName(std::string_view name);

}  // namespace sluice::metrics
