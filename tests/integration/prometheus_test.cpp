// Issue 9: a real Prometheus server (Debian's /usr/bin/prometheus) scrapes the real sluice
// binary every second; its query API must then answer sluice_flows and a ticker's ticks.
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

#include "fakes/observe_fixture.hpp"

namespace sluice::test::observe {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPrometheus = "/usr/bin/prometheus";

/// The body of a chunked response as read until the connection closed.
std::string dechunk(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) break;
    const size_t size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) break;
    out += raw.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  return out;
}

/// GET http://127.0.0.1:port<path>; status 0 when the connection failed.
HttpResponse httpGet(uint16_t port, const std::string& path) {
  try {
    auto r = request(port, "GET", path, "", false, 10000);
    if (lower(r.header("transfer-encoding")).find("chunked") != std::string::npos) {
      r.body = dechunk(r.body);
    }
    return r;
  } catch (const std::exception& e) {
    HttpResponse r;
    r.body = e.what();
    return r;
  }
}

/// A Prometheus server scraping one target, on a free port of 127.0.0.1.
class Prometheus {
 public:
  Prometheus(const std::filesystem::path& dir, uint16_t target_port) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    const auto config = dir_ / "prometheus.yml";
    std::ofstream(config) << "global:\n"
                             "  scrape_interval: 1s\n"
                             "  scrape_timeout: 1s\n"
                             "  evaluation_interval: 1s\n"
                             "scrape_configs:\n"
                             "  - job_name: sluice\n"
                             "    scrape_interval: 1s\n"
                             "    metrics_path: /metrics\n"
                             "    static_configs:\n"
                             "      - targets: ['127.0.0.1:"
                          << target_port << "']\n";
    config_ = config;
  }
  ~Prometheus() { stop(); }

  /// Starts it and waits for /-/ready; retries on another port when the one picked was taken.
  /// Returns "" or what went wrong.
  std::string start() {
    std::string why;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = freePort();
      if (port_ == 0) continue;
      const auto log = dir_ / ("prometheus-" + std::to_string(attempt) + ".log");
      std::filesystem::remove_all(dir_ / "tsdb");
      process_ = std::make_unique<ChildProcess>(
          std::vector<std::string>{kPrometheus, "--config.file=" + config_.string(),
                                   "--storage.tsdb.path=" + (dir_ / "tsdb").string(),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                   "--log.level=info"},
          log);
      const bool ready = waitFor(
          [&] {
            if (!process_->running()) return true;
            return httpGet(port_, "/-/ready").status == 200;
          },
          30s);
      if (ready && process_->running()) return "";
      const std::string text = readFile(log);
      why = ready ? "prometheus exited: " + text : "prometheus not ready within 30 s: " + text;
      process_.reset();
      if (text.find("address already in use") == std::string::npos) break;
    }
    return why;
  }
  void stop() {
    if (process_) process_->stop(SIGTERM, 10s);
    process_.reset();
  }
  uint16_t port() const { return port_; }

  /// The result vector of an instant query; empty when the query failed or found nothing.
  rapidjson::Document query(const std::string& promql, std::string* raw) {
    auto r = httpGet(port_, "/api/v1/query?query=" + urlEncode(promql));
    *raw = std::to_string(r.status) + " " + r.body;
    rapidjson::Document doc;
    if (r.status != 200 || !json::parse(r.body, doc, nullptr) || !doc.IsObject()) {
      doc.SetArray();
      return doc;
    }
    rapidjson::Document result;
    if (doc.HasMember("data") && doc["data"].IsObject() && doc["data"].HasMember("result") &&
        doc["data"]["result"].IsArray()) {
      result.CopyFrom(doc["data"]["result"], result.GetAllocator());
    } else {
      result.SetArray();
    }
    return result;
  }

 private:
  std::filesystem::path dir_;
  std::filesystem::path config_;
  uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

/// The value of a result element ({"metric":{...},"value":[ts,"v"]}); NaN when it has none.
double valueOf(const rapidjson::Value& e) {
  if (!e.IsObject() || !e.HasMember("value") || !e["value"].IsArray() ||
      e["value"].GetArray().Size() != 2 || !e["value"][1].IsString()) {
    return std::nan("");
  }
  return std::strtod(e["value"][1].GetString(), nullptr);
}

std::string labelOf(const rapidjson::Value& e, const char* name) {
  if (!e.IsObject() || !e.HasMember("metric")) return "";
  return strOf(e["metric"], name);
}

class PrometheusScrapeTest : public ObserveFixture {};

TEST_F(PrometheusScrapeTest, ARealPrometheusScrapesFlowsAndTicks) {
  if (!std::filesystem::exists(kPrometheus)) GTEST_SKIP() << "no " << kPrometheus;
  startServer();
  createFlows(R"([{"flow_id":"tick1","type":"ticker","config":{"interval_ms":20}},
                  {"flow_id":"idle","type":"noop"}])");
  command("start", {"tick1"});

  Prometheus prometheus(dir_ / "prometheus", port());
  const std::string failed = prometheus.start();
  ASSERT_EQ(failed, "");

  std::string flows_raw;
  std::string ticks_raw;
  double running = std::nan("");
  double ticks = std::nan("");
  bool target_seen = false;
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < until) {
    auto flows = prometheus.query("sluice_flows", &flows_raw);
    for (const auto& e : flows.GetArray()) {
      target_seen = true;
      EXPECT_EQ(labelOf(e, "job"), "sluice");
      if (labelOf(e, "state") == "running") running = valueOf(e);
    }
    auto counters = prometheus.query("sluice_flow_counter{name=\"ticks\"}", &ticks_raw);
    for (const auto& e : counters.GetArray()) {
      if (labelOf(e, "flow_id") == "tick1") ticks = valueOf(e);
    }
    if (target_seen && ticks > 0) break;
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_TRUE(target_seen) << "sluice_flows never arrived: " << flows_raw;
  EXPECT_EQ(running, 1.0) << flows_raw;
  EXPECT_GT(ticks, 0.0) << "the ticks of tick1 never arrived: " << ticks_raw;
  // Sluice counted Prometheus's scrapes like any other request.
  MetricsPage page(get("/metrics").body);
  EXPECT_GE(page.value("sluice_http_requests_total",
                       {{"method", "GET"}, {"route", "/metrics"}, {"code", "200"}})
                .value_or(0),
            1.0);
  prometheus.stop();
}

}  // namespace
}  // namespace sluice::test::observe
