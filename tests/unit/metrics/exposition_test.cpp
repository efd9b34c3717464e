// The text exposition format as written: escaping, numbers, histograms, the process metrics, and
// a whole document accepted by promtool (which also lints names and help texts).
#include "api/metrics/exposition.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "api/metrics/process_metrics.hpp"

namespace sluice::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(ExpositionTest, FamilyEscapesBackslashAndNewlineInHelpButNotQuotes) {
  std::string out = "kept\n";
  ExpositionWriter w(out);
  w.family("sluice_flows", "gauge", "Flows \"by\" state\\kind\nsecond line");
  EXPECT_EQ(out,
            "kept\n"
            "# HELP sluice_flows Flows \"by\" state\\\\kind\\nsecond line\n"
            "# TYPE sluice_flows gauge\n");
}

TEST(ExpositionTest, LabelValuesAreEscapedAndAnyUtf8Passes) {
  std::string out;
  ExpositionWriter w(out);
  w.sample("m", {{"flow", "a\"b\\c\nd"}, {"counter", "zähler"}}, 1);
  w.sample("m", {}, 2);
  const std::vector<Label> labels = {{"a", ""}, {"b", "x"}};
  w.sample("m", labels, 3);
  EXPECT_EQ(out,
            "m{flow=\"a\\\"b\\\\c\\nd\",counter=\"zähler\"} 1\n"
            "m 2\n"
            "m{a=\"\",b=\"x\"} 3\n");
}

TEST(ExpositionTest, IntegersAreWrittenExactlyWithoutExponent) {
  std::string out;
  ExpositionWriter w(out);
  w.sample("a", {}, std::numeric_limits<uint64_t>::max());
  w.sample("b", {}, std::numeric_limits<int64_t>::min());
  w.sample("c", {}, 0);
  w.sample("d", {}, size_t{10'000'000'000'000'000'000u});
  w.sample("e", std::vector<Label>{}, -7);
  EXPECT_EQ(out,
            "a 18446744073709551615\n"
            "b -9223372036854775808\n"
            "c 0\n"
            "d 10000000000000000000\n"
            "e -7\n");
}

TEST(ExpositionTest, DoublesAreShortestRoundTripAndSpecialsArePrometheusSpelled) {
  std::string out;
  ExpositionWriter w(out);
  for (double v : {0.1, 1.0, -2.5, 1e21, 1.5e-7, 0.30000000000000004, kInf, -kInf,
                   std::numeric_limits<double>::quiet_NaN()}) {
    w.sample("v", {{"k", "x"}}, v);
  }
  EXPECT_EQ(out,
            "v{k=\"x\"} 0.1\nv{k=\"x\"} 1\nv{k=\"x\"} -2.5\nv{k=\"x\"} 1e+21\n"
            "v{k=\"x\"} 1.5e-07\nv{k=\"x\"} 0.30000000000000004\nv{k=\"x\"} +Inf\n"
            "v{k=\"x\"} -Inf\nv{k=\"x\"} NaN\n");
}

TEST(ExpositionTest, DoublesAreLaidOutLikeTheGoClient) {
  // Expected texts as strconv.FormatFloat(v, 'g', -1, 64) gives them.
  const std::vector<std::pair<double, std::string>> cases = {
      {0, "0"},
      {-0.0, "-0"},
      {0.0005, "0.0005"},
      {0.00012, "0.00012"},
      {0.00001, "1e-05"},
      {100, "100"},
      {999999, "999999"},
      {123456.5, "123456.5"},
      {1e6, "1e+06"},
      {1234567.5, "1.2345675e+06"},
      {1795930477.76, "1.79593047776e+09"},
      {-12.5, "-12.5"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"}};
  for (const auto& [v, text] : cases) {
    std::string out;
    appendDouble(out, v);
    EXPECT_EQ(out, text);
  }
}

TEST(ExpositionTest, DoublesRoundTrip) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 100'000; ++i) {
    double v;
    const uint64_t bits = rng();
    std::memcpy(&v, &bits, sizeof v);
    if (i % 2 == 0) v = std::ldexp(static_cast<double>(bits >> 11), -static_cast<int>(i % 80));
    if (!std::isfinite(v)) continue;
    std::string out;
    appendDouble(out, v);
    ASSERT_EQ(std::strtod(out.c_str(), nullptr), v) << out;
  }
}

TEST(ExpositionTest, HistogramWritesCumulativeBucketsSumAndCount) {
  Histogram h({0.005, 0.25, 1});
  for (double v : {0.001, 0.005, 0.1, 3.0}) h.observe(v);
  std::string out;
  ExpositionWriter w(out);
  w.histogram("step_seconds", {{"flow", "f\"1"}}, h.snapshot(), h.bounds());
  w.histogram("bare_seconds", std::vector<Label>{}, h);  // the live form, no labels
  EXPECT_EQ(out,
            "step_seconds_bucket{flow=\"f\\\"1\",le=\"0.005\"} 2\n"
            "step_seconds_bucket{flow=\"f\\\"1\",le=\"0.25\"} 3\n"
            "step_seconds_bucket{flow=\"f\\\"1\",le=\"1\"} 3\n"
            "step_seconds_bucket{flow=\"f\\\"1\",le=\"+Inf\"} 4\n"
            "step_seconds_sum{flow=\"f\\\"1\"} 3.106\n"
            "step_seconds_count{flow=\"f\\\"1\"} 4\n"
            "bare_seconds_bucket{le=\"0.005\"} 2\n"
            "bare_seconds_bucket{le=\"0.25\"} 3\n"
            "bare_seconds_bucket{le=\"1\"} 3\n"
            "bare_seconds_bucket{le=\"+Inf\"} 4\n"
            "bare_seconds_sum 3.106\n"
            "bare_seconds_count 4\n");
}

TEST(ExpositionTest, HistogramsWithOtherBoundsGetTheirOwnLeTexts) {
  Histogram a({1, 2});
  Histogram b({0.5});
  Histogram empty({});
  std::string out;
  ExpositionWriter w(out);
  w.histogram("a", {}, a);
  w.histogram("b", {}, b);
  w.histogram("e", {}, empty);
  w.histogram("a", {}, a);
  EXPECT_EQ(out,
            "a_bucket{le=\"1\"} 0\na_bucket{le=\"2\"} 0\na_bucket{le=\"+Inf\"} 0\na_sum 0\n"
            "a_count 0\n"
            "b_bucket{le=\"0.5\"} 0\nb_bucket{le=\"+Inf\"} 0\nb_sum 0\nb_count 0\n"
            "e_bucket{le=\"+Inf\"} 0\ne_sum 0\ne_count 0\n"
            "a_bucket{le=\"1\"} 0\na_bucket{le=\"2\"} 0\na_bucket{le=\"+Inf\"} 0\na_sum 0\n"
            "a_count 0\n");
  Histogram::Snapshot wrong;
  wrong.buckets = {1};
  EXPECT_THROW(w.histogram("a", {}, wrong, a.bounds()), std::invalid_argument);
}

TEST(ExpositionTest, CommentsCannotPassForDescriptorsOrBreakLines) {
  std::string out;
  ExpositionWriter w(out);
  w.comment("plain text");
  w.comment("two\nlines");
  w.comment(" HELP me");
  w.comment("TYPE");
  w.comment("HELPER");
  EXPECT_EQ(out, "# plain text\n# two\\nlines\n# _ HELP me\n# _TYPE\n# HELPER\n");
}

TEST(ExpositionTest, MetricNamesAreValidatedAndSanitized) {
  EXPECT_TRUE(validMetricName("sluice_flows"));
  EXPECT_TRUE(validMetricName(":rule:x_1"));
  EXPECT_TRUE(validMetricName("_"));
  EXPECT_FALSE(validMetricName(""));
  EXPECT_FALSE(validMetricName("1abc"));
  EXPECT_FALSE(validMetricName("a-b"));
  EXPECT_FALSE(validMetricName("zähler"));
  EXPECT_EQ(sanitizeMetricName("sluice_ok"), "sluice_ok");
  EXPECT_EQ(sanitizeMetricName("1st.count"), "_1st_count");
  EXPECT_EQ(sanitizeMetricName("zähler-€"), "z_hler__");
  EXPECT_EQ(sanitizeMetricName(""), "_");
  for (const char* s : {"1st.count", "zähler-€", "", "a b\"c"}) {
    EXPECT_TRUE(validMetricName(sanitizeMetricName(s))) << s;
  }
}

// name -> value of the samples of `text` (names are label-free in the process metrics).
std::map<std::string, double> parseSamples(const std::string& text) {
  std::map<std::string, double> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

TEST(ProcessMetricsTest, AreAllPresentAndPlausible) {
  std::string out;
  writeProcessMetrics(out);
  const auto m = parseSamples(out);
  const double now = static_cast<double>(std::time(nullptr));
  ASSERT_EQ(m.size(), 7u) << out;
  EXPECT_GT(m.at("process_resident_memory_bytes"), 1024.0 * 1024);
  EXPECT_GE(m.at("process_virtual_memory_bytes"), m.at("process_resident_memory_bytes"));
  EXPECT_GE(m.at("process_open_fds"), 3);
  EXPECT_GE(m.at("process_max_fds"), m.at("process_open_fds"));
  EXPECT_GE(m.at("process_threads"), 1);
  EXPECT_LE(m.at("process_start_time_seconds"), now + 1);  // ticks round: allow a second
  EXPECT_GT(m.at("process_start_time_seconds"), now - 86400);
  EXPECT_GE(m.at("process_cpu_seconds_total"), 0);
  EXPECT_NE(out.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(out.find("# TYPE process_resident_memory_bytes gauge\n"), std::string::npos);
}

// A scrape as GET /metrics would answer it: every family type, escaped labels, plugin counter
// names as label values, specials, a histogram with several series, the process metrics.
std::string sampleDocument() {
  std::string out;
  ExpositionWriter w(out);
  w.comment("Sluice metrics");
  w.family("sluice_flows", "gauge", "Flows by state.");
  w.sample("sluice_flows", {{"state", "running"}}, 3);
  w.sample("sluice_flows", {{"state", "failed"}}, 0);
  w.family("sluice_flow_messages_total", "counter", "Messages \"processed\" per flow,\nby step.");
  w.sample("sluice_flow_messages_total", {{"flow", "a\"b\\c\nd"}, {"step", "0"}}, 12345);
  w.sample("sluice_flow_messages_total", {{"flow", "plain"}, {"step", "1"}}, uint64_t{1} << 60);
  w.family("sluice_plugin_reported_total", "counter", "Counters reported by plugins.");
  w.sample("sluice_plugin_reported_total", {{"flow", "f"}, {"counter", "zähler-€ 1"}}, 7);
  w.family("sluice_last_error_age_seconds", "gauge", "Seconds since a flow's last error.");
  w.sample("sluice_last_error_age_seconds", {{"flow", "a"}}, kInf);
  w.sample("sluice_last_error_age_seconds", {{"flow", "b"}}, 0.25);
  w.sample("sluice_last_error_age_seconds", {{"flow", "c"}},
           std::numeric_limits<double>::quiet_NaN());
  Histogram h(Histogram::defaultLatencyBounds());
  for (double v : {0.0001, 0.003, 0.003, 0.7, 42.0}) h.observe(v);
  w.family("sluice_step_duration_seconds", "histogram", "Step latency.");
  w.histogram("sluice_step_duration_seconds", {{"flow", "a\"b\\c\nd"}}, h);
  w.histogram("sluice_step_duration_seconds", {{"flow", "plain"}}, Histogram({}));
  writeProcessMetrics(out);
  return out;
}

// Pipes `doc` into `promtool check metrics`; its exit status, with its output in *output.
int promtoolCheck(const std::string& doc, std::string* output) {
  char out_path[] = "/tmp/sluice_promtool_XXXXXX";
  const int fd = ::mkstemp(out_path);
  if (fd < 0) return -1;
  ::close(fd);
  const std::string cmd = std::string("promtool check metrics >") + out_path + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "w");
  if (pipe == nullptr) return -1;
  std::fwrite(doc.data(), 1, doc.size(), pipe);
  const int status = ::pclose(pipe);
  if (FILE* f = std::fopen(out_path, "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) output->append(buf, n);
    std::fclose(f);
  }
  std::remove(out_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ExpositionTest, PromtoolAcceptsAWholeDocumentWithoutLintComplaints) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian: apt-get install prometheus)";
  }
  const std::string doc = sampleDocument();
  std::string output;
  EXPECT_EQ(promtoolCheck(doc, &output), 0) << output << "\n" << doc;
  EXPECT_EQ(output.find("error"), std::string::npos) << output;
  EXPECT_EQ(output, "") << "lint complaints:\n" << output;

  // The harness does see failures: an unescaped quote, and a counter without _total.
  std::string broken;
  EXPECT_NE(promtoolCheck("m{a=\"x\"y\"} 1\n", &broken), 0);
  EXPECT_NE(broken.find("error"), std::string::npos) << broken;
  std::string lint;
  EXPECT_NE(promtoolCheck("# HELP m_count x\n# TYPE m_count counter\nm_count 1\n", &lint), 0);
  EXPECT_NE(lint.find("_total"), std::string::npos) << lint;
}

}  // namespace
}  // namespace sluice::metrics
