// Issue 9 against the real binary: GET /metrics (the families, values that follow what the test
// did, route templates rather than raw paths, per-flow series and their limit, promtool's
// verdict), and /healthz and /readyz (open while auth is required; 503 during the restore at
// start-up and while draining at shutdown).
#include <algorithm>
#include <atomic>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fakes/observe_fixture.hpp"
#include "fakes/proc.hpp"

namespace sluice::test::observe {
namespace {

using namespace std::chrono_literals;

class ObserveMetricsTest : public ObserveFixture {
 protected:
  MetricsPage scrape(const std::string& query = "") {
    auto r = get("/metrics" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    MetricsPage page(r.body);
    EXPECT_TRUE(page.malformed.empty()) << "malformed lines, first: " << page.malformed.front();
    return page;
  }
  std::optional<double> ticks(const MetricsPage& page, const std::string& id) {
    return page.value("sluice_flow_counter", {{"flow_id", id}, {"name", "ticks"}});
  }
};

int threadCount(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

/// Checks a histogram family's series with `labels`: cumulative buckets, +Inf == _count.
void expectHistogram(const MetricsPage& page, const std::string& family,
                     const std::map<std::string, std::string>& labels, double min_count) {
  SCOPED_TRACE(family);
  EXPECT_EQ(page.type(family), "histogram");
  auto buckets = page.find(family + "_bucket", labels);
  ASSERT_GE(buckets.size(), 2u) << "no buckets";
  double last = -1;
  double last_le = -1;
  std::optional<double> inf;
  for (const Sample* b : buckets) {
    ASSERT_EQ(b->labels.count("le"), 1u) << b->line;
    EXPECT_GE(b->value, last) << "buckets are not cumulative: " << b->line;
    last = b->value;
    if (b->labels.at("le") == "+Inf") {
      inf = b->value;
    } else {
      const double le = std::stod(b->labels.at("le"));
      EXPECT_GT(le, last_le) << "bounds out of order: " << b->line;
      last_le = le;
    }
  }
  ASSERT_TRUE(inf.has_value()) << "no le=\"+Inf\" bucket";
  auto count = page.value(family + "_count", labels);
  auto sum = page.value(family + "_sum", labels);
  ASSERT_TRUE(count.has_value()) << "no _count";
  ASSERT_TRUE(sum.has_value()) << "no _sum";
  EXPECT_EQ(*count, *inf);
  EXPECT_GE(*count, min_count);
  EXPECT_GE(*sum, 0);
}

// ---------------------------------------------------------------------------------------------

TEST_F(ObserveMetricsTest, FamiliesAndValuesFollowWhatHappened) {
  startServer();
  createFlows(R"([{"flow_id":"t","type":"ticker","config":{"interval_ms":20}},
                  {"flow_id":"u","type":"ticker","config":{"interval_ms":20}},
                  {"flow_id":"n","type":"noop"}])");
  command("start", {"t", "u"});
  // Ids that must never appear in a label: the routes are templates.
  const std::vector<std::string> raw_ids = {"nope-4e1d9", "gone-9a2c7", "path-77b1x"};
  expectJsonError(get("/flows/status/" + raw_ids[0]), 404, "GET /flows/status/<unknown>");
  expectJsonError(get("/flows/" + raw_ids[1]), 404, "GET /flows/<unknown>");
  EXPECT_EQ(get("/no/such/" + raw_ids[2]).status, 404);

  auto r = get("/metrics");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string content_type = r.header("content-type");
  EXPECT_EQ(content_type.rfind("text/plain", 0), 0u) << content_type;
  EXPECT_NE(content_type.find("version=0.0.4"), std::string::npos) << content_type;
  MetricsPage page(r.body);
  ASSERT_TRUE(page.malformed.empty()) << page.malformed.front();

  const std::vector<std::pair<std::string, std::string>> families = {
      {"sluice_flows", "gauge"},
      {"sluice_flows_desired", "gauge"},
      {"sluice_flow_transitions_total", "counter"},
      {"sluice_flow_failures_total", "counter"},
      {"sluice_flow_restarts_total", "counter"},
      {"sluice_plugins_loaded", "gauge"},
      {"sluice_plugins_refused", "gauge"},
      {"sluice_http_requests_total", "counter"},
      {"sluice_http_request_duration_seconds", "histogram"},
      {"sluice_store_commit_duration_seconds", "histogram"},
      {"sluice_step_lateness_seconds", "histogram"},
      {"sluice_workers_busy", "gauge"},
      {"sluice_worker_queue_depth", "gauge"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_threads", "gauge"},
      {"process_start_time_seconds", "gauge"},
  };
  for (const auto& [family, type] : families) {
    EXPECT_EQ(page.type(family), type) << family;
    EXPECT_TRUE(page.hasHelp(family)) << family;
    const bool histogram = type == "histogram";
    EXPECT_FALSE(page.find(histogram ? family + "_count" : family).empty())
        << "no sample of " << family;
  }
  EXPECT_FALSE(page.type("sluice_flow_counter").empty());
  EXPECT_FALSE(page.type("sluice_flow_gauge").empty());

  // Flows by state: 2 running tickers and a stopped noop.
  EXPECT_EQ(page.value("sluice_flows", {{"state", "running"}}), 2.0);
  EXPECT_EQ(page.value("sluice_flows", {{"state", "stopped"}}), 1.0);
  double total = 0;
  for (const Sample* s : page.find("sluice_flows")) total += s->value;
  EXPECT_EQ(total, 3.0);
  EXPECT_EQ(page.value("sluice_flows_desired", {{"state", "running"}}), 2.0);
  EXPECT_EQ(page.value("sluice_flows_desired", {{"state", "stopped"}}), 1.0);
  EXPECT_EQ(page.value("sluice_flows_desired", {{"state", "paused"}}), 0.0);
  EXPECT_EQ(page.value("sluice_flow_transitions_total", {{"to", "starting"}}), 2.0);
  EXPECT_EQ(page.value("sluice_flow_transitions_total", {{"to", "running"}}), 2.0);
  EXPECT_EQ(page.value("sluice_flow_transitions_total", {{"to", "failed"}}), 0.0);
  EXPECT_EQ(page.value("sluice_flow_failures_total"), 0.0);
  EXPECT_EQ(page.value("sluice_flow_restarts_total"), 0.0);

  // Plugins: as GET /plugins lists them.
  auto plugins = parseJson(get("/plugins").body);
  ASSERT_TRUE(plugins.IsObject() && plugins["plugins"].IsArray() && plugins["refused"].IsArray());
  EXPECT_EQ(page.value("sluice_plugins_loaded"),
            static_cast<double>(plugins["plugins"].GetArray().Size()));
  EXPECT_EQ(page.value("sluice_plugins_refused"),
            static_cast<double>(plugins["refused"].GetArray().Size()));

  // HTTP requests by method, route template and code: exactly the ones made above.
  auto requests = [&](const char* method, const char* route, const char* code) {
    return page.value("sluice_http_requests_total",
                      {{"method", method}, {"route", route}, {"code", code}});
  };
  EXPECT_EQ(requests("GET", "/flows/status/{id}", "404"), 1.0);
  EXPECT_EQ(requests("GET", "/flows/{id}", "404"), 1.0);
  EXPECT_EQ(requests("POST", "/flows", "201"), 1.0);
  EXPECT_EQ(requests("PATCH", "/flows/commands", "200"), 1.0);
  std::set<std::string> routes;
  for (const auto& s : page.samples) {
    for (const auto& [key, value] : s.labels) {
      for (const auto& id : raw_ids) {
        EXPECT_EQ(value.find(id), std::string::npos)
            << "a raw path in the label " << key << ": " << s.line;
      }
    }
    if (auto it = s.labels.find("route"); it != s.labels.end()) routes.insert(it->second);
  }
  const std::set<std::string> templates = {
      "/healthz",        "/readyz",     "/openapi.json",      "/metrics",
      "/events",         "/flows",      "/flows/status",      "/flows/commands",
      "/flows/validate", "/flows/{id}", "/plugins",           "/tokens",
      "/tokens/{name}",  "/audit",      "/flows/status/{id}", "other"};
  for (const auto& route : routes) {
    EXPECT_EQ(templates.count(route), 1u) << "not a route template: " << route;
  }
  expectHistogram(page, "sluice_http_request_duration_seconds", {{"route", "/flows/status/{id}"}},
                  1);
  EXPECT_EQ(
      page.value("sluice_http_request_duration_seconds_count", {{"route", "/flows/status/{id}"}}),
      1.0);
  expectHistogram(page, "sluice_http_request_duration_seconds", {{"route", "/flows"}}, 1);
  // The store committed at least the creation and the start.
  expectHistogram(page, "sluice_store_commit_duration_seconds", {}, 2);
  expectHistogram(page, "sluice_step_lateness_seconds", {}, 0);  // the tickers' steps

  EXPECT_GE(page.value("sluice_workers_busy").value_or(-1), 0);
  EXPECT_GE(page.value("sluice_worker_queue_depth").value_or(-1), 0);

  // Process metrics: near what /proc says of the server.
  const pid_t pid = server_->pid();
  EXPECT_GT(page.value("process_resident_memory_bytes").value_or(0), 1e6);
  EXPECT_NEAR(page.value("process_open_fds").value_or(-100), openFds(pid), 16);
  EXPECT_NEAR(page.value("process_threads").value_or(-100), threadCount(pid), 8);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_NEAR(page.value("process_start_time_seconds").value_or(0), now - 5, 65);
  EXPECT_LE(page.value("process_start_time_seconds").value_or(now + 10), now + 1);

  // Per-flow series: the tickers' ticks, increasing; the noop has none.
  auto first_t = ticks(page, "t");
  ASSERT_TRUE(first_t.has_value()) << r.body;
  ASSERT_TRUE(ticks(page, "u").has_value()) << r.body;
  EXPECT_TRUE(page.find("sluice_flow_counter", {{"flow_id", "n"}}).empty());
  EXPECT_EQ(page.value("sluice_metrics_flows_omitted"), 0.0);
  double later = *first_t;
  EXPECT_TRUE(waitFor(
      [&] {
        later = ticks(scrape(), "t").value_or(-1);
        return later > *first_t;
      },
      10s))
      << "ticks of t stayed at " << *first_t << " (now " << later << ")";
}

TEST_F(ObserveMetricsTest, PromtoolFindsNoProblemButTheMandatedNames) {
  if (!std::filesystem::exists("/usr/bin/promtool")) GTEST_SKIP() << "no /usr/bin/promtool";
  startServer();
  auto promtool = [&](const std::string& name, const std::string& text, int* rc) {
    const auto file = dir_ / (name + ".txt");
    std::ofstream(file, std::ios::binary) << text;
    return shell("/usr/bin/promtool check metrics < " + file.string() + " 2>&1", rc);
  };

  // Without flows: no per-flow series, and nothing to complain about.
  // A few requests first, so that the HTTP families have series.
  EXPECT_EQ(get("/flows").status, 200);
  EXPECT_EQ(get("/flows/status/none").status, 404);
  auto r = get("/metrics");
  ASSERT_EQ(r.status, 200);
  int rc = -1;
  std::string out = promtool("empty", r.body, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(trim(out), "") << out;

  // With a counter (ticker) and a gauge (fault's hog_mb): promtool's lint flags only the names
  // the issue mandates (sluice_flow_counter, sluice_flow_gauge), never a parse error.
  createFlows(R"([{"flow_id":"t","type":"ticker","config":{"interval_ms":20}},
                  {"flow_id":"g","type":"fault","config":{"in":"start","do":"hog"}}])");
  command("start", {"t", "g"});
  std::string body;
  ASSERT_TRUE(waitFor(
      [&] {
        body = get("/metrics").body;
        MetricsPage page(body);
        return !page.find("sluice_flow_counter", {{"flow_id", "t"}}).empty() &&
               !page.find("sluice_flow_gauge", {{"flow_id", "g"}}).empty();
      },
      10s))
      << body;
  out = promtool("flows", body, &rc);
  EXPECT_NE(rc, 1) << "promtool could not parse the page: " << out;
  EXPECT_EQ(out.find("error while linting"), std::string::npos) << out;
  std::set<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (!trim(line).empty()) lines.insert(trim(line));
  }
  const std::set<std::string> expected = {
      "sluice_flow_counter metric name should not include type 'counter'",
      "sluice_flow_gauge metric name should not include type 'gauge'"};
  EXPECT_EQ(lines, expected) << out;
  EXPECT_EQ(rc, 3) << out;
}

TEST_F(ObserveMetricsTest, PerFlowSeriesPastTheLimitAreOmittedUnlessSelected) {
  startServer({"--metrics-flow-limit", "2"});
  createFlows(R"([{"flow_id":"a","type":"ticker","config":{"interval_ms":20}},
                  {"flow_id":"b","type":"ticker","config":{"interval_ms":20}},
                  {"flow_id":"c","type":"ticker","config":{"interval_ms":20}}])");
  command("start", {"a", "b", "c"});

  // The default scrape: 3 flows > 2, no per-flow samples, a comment and a gauge say so.
  MetricsPage page = scrape();
  EXPECT_TRUE(page.find("sluice_flow_counter").empty());
  EXPECT_TRUE(page.find("sluice_flow_gauge").empty());
  EXPECT_EQ(page.value("sluice_metrics_flows_omitted"), 3.0);
  EXPECT_EQ(page.value("sluice_metrics_flow_limit"), 2.0);
  const bool commented = std::any_of(page.comments.begin(), page.comments.end(), [](auto& c) {
    return c.rfind("# HELP", 0) != 0 && c.rfind("# TYPE", 0) != 0 &&
           c.find("omitted") != std::string::npos;
  });
  EXPECT_TRUE(commented) << "no comment says the per-flow series were omitted";

  // ?flow_id=a,b selects exactly those two.
  std::set<std::string> ids;
  ASSERT_TRUE(waitFor(
      [&] {
        page = scrape("?flow_id=a,b");
        ids.clear();
        for (const Sample* s : page.find("sluice_flow_counter"))
          ids.insert(s->labels.at("flow_id"));
        return ids.size() == 2;
      },
      10s));
  EXPECT_EQ(ids, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(page.value("sluice_metrics_flows_omitted"), 0.0);
  EXPECT_EQ(page.value("sluice_flows", {{"state", "running"}}), 3.0);

  page = scrape("?flow_id=c");
  ids.clear();
  for (const Sample* s : page.find("sluice_flow_counter")) ids.insert(s->labels.at("flow_id"));
  EXPECT_EQ(ids, (std::set<std::string>{"c"}));

  // More ids than the limit: refused.
  expectJsonError(get("/metrics?flow_id=a,b,c"), 400, "3 flow ids with --metrics-flow-limit 2");
}

// ---------------------------------------------------------------------------------------------
// Health

class ObserveHealthTest : public ObserveFixture {
 protected:
  HttpResponse tryGet(const std::string& path) {
    try {
      return get(path);
    } catch (const std::exception& e) {
      HttpResponse r;
      r.body = e.what();
      return r;
    }
  }
};

TEST_F(ObserveHealthTest, OpenWithoutTokenWhileMetricsNeedsOne) {
  const std::string admin = createToken(data(), "root", "admin", dir_);
  const std::string viewer = createToken(data(), "watcher", "viewer", dir_);
  startServer();

  auto r = get("/healthz");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(jsonEqual(r.body, R"({"status":"ok"})")) << r.body;
  ASSERT_TRUE(waitFor([&] { return get("/readyz").status == 200; }, 10s));
  r = get("/readyz");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(jsonEqual(r.body, R"({"ready":true})")) << r.body;

  expect401(get("/metrics"), "GET /metrics without a token");
  expect401(get("/flows"), "GET /flows without a token");
  r = get("/metrics", bearer(viewer));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("sluice_flows{"), std::string::npos);
  EXPECT_EQ(get("/metrics", bearer(admin)).status, 200);
  // The refusals are counted under the route's template too.
  MetricsPage page(get("/metrics", bearer(viewer)).body);
  EXPECT_EQ(page.value("sluice_http_requests_total",
                       {{"method", "GET"}, {"route", "/metrics"}, {"code", "401"}}),
            1.0);
  EXPECT_GE(page.value("sluice_http_requests_total",
                       {{"method", "GET"}, {"route", "/readyz"}, {"code", "200"}})
                .value_or(0),
            2.0);
}

TEST_F(ObserveHealthTest, NotReadyDuringTheRestoreAtStartup) {
  startServer();
  // A flow whose start takes 3 s, stored with desired running.
  createFlows(
      R"([{"flow_id":"slow","type":"fault","config":{"in":"start","do":"hang","hang_ms":3000}},
                  {"flow_id":"quick","type":"noop"}])");
  command("start", {"slow", "quick"});
  const std::string quick_tag = get("/flows/quick").header("etag");
  const int status = server_->kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;

  startServer();  // same data directory: restores both, `slow` for 3 s
  auto r = get("/readyz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto doc = parseJson(r.body);
  ASSERT_TRUE(doc.IsObject()) << r.body;
  EXPECT_TRUE(doc.HasMember("ready") && doc["ready"].IsBool() && !doc["ready"].GetBool()) << r.body;
  EXPECT_NE(lower(strOf(doc, "error")).find("restor"), std::string::npos) << r.body;
  // Alive all along.
  EXPECT_EQ(get("/healthz").status, 200);

  ASSERT_TRUE(waitFor([&] { return get("/readyz").status == 200; }, 20s));
  EXPECT_TRUE(jsonEqual(get("/readyz").body, R"({"ready":true})"));
  EXPECT_EQ(statusOf("slow"), "running");
  EXPECT_EQ(statusOf("quick"), "running");
  // Entity tags survive a restart: an editor's If-Match still holds.
  EXPECT_EQ(get("/flows/quick").header("etag"), quick_tag);
}

TEST_F(ObserveHealthTest, NotReadyWhileDrainingButStillHealthy) {
  startServer();
  // The stop's hang is long enough that a loaded machine (ctest -j2) still sees the drain
  // before the stop answers; its stop timeout is longer still, so it never escalates.
  createFlows(R"([{"flow_id":"s","type":"fault","config":{"in":"stop","do":"hang",)"
              R"("hang_ms":8000},"runtime":{"stop_timeout_ms":30000}}])");
  command("start", {"s"});

  // A request in flight: a stop that takes 8 s.
  HttpResponse stop;
  std::atomic<bool> stop_done{false};
  std::thread stopper([&] {
    try {
      stop = requestWith(port(), "PATCH", "/flows/commands", {},
                         R"({"command":"stop","flow_ids":["s"]})", true, 30000);
    } catch (const std::exception& e) {
      stop.body = e.what();
    }
    stop_done = true;
  });
  EXPECT_TRUE(waitFor([&] { return statusOf("s") == "stopping"; }, 5s));

  // No ASSERT until the thread is joined.
  EXPECT_EQ(::kill(server_->pid(), SIGTERM), 0);
  HttpResponse ready;
  EXPECT_TRUE(waitFor(
      [&] {
        ready = tryGet("/readyz");
        return ready.status == 503;
      },
      5s))
      << ready.status << " " << ready.body;
  EXPECT_FALSE(stop_done.load()) << "the stop answered before the drain could be observed";
  EXPECT_EQ(ready.header("content-type"), "application/json");
  auto doc = parseJson(ready.body);
  EXPECT_TRUE(doc.IsObject() && doc.HasMember("ready") && doc["ready"].IsBool() &&
              !doc["ready"].GetBool())
      << ready.body;
  EXPECT_NE(lower(strOf(doc, "error")).find("shutting down"), std::string::npos) << ready.body;

  auto health = tryGet("/healthz");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_TRUE(jsonEqual(health.body, R"({"status":"ok"})")) << health.body;
  expectJsonError(tryGet("/flows"), 503, "GET /flows while draining");
  expectJsonError(tryGet("/metrics"), 503, "GET /metrics while draining");
  expectJsonError(call("POST", "/flows", {}, R"([{"flow_id":"late"}])"), 503,
                  "POST /flows while draining");

  // The request in flight is answered, then the server exits cleanly.
  stopper.join();
  EXPECT_EQ(stop.status, 200) << stop.body;
  const int status = server_->kill(SIGTERM, 30s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
}

}  // namespace
}  // namespace sluice::test::observe
