#include "api/metrics/metrics_page.hpp"

#include <array>

#include "api/metrics/exposition.hpp"
#include "api/metrics/http_metrics.hpp"
#include "api/metrics/process_metrics.hpp"
#include "core/engine/engine.hpp"

namespace sluice::metrics {
namespace {

void writeFlowSeries(ExpositionWriter& w, const std::vector<const FlowStatus*>& flows) {
  // Untyped: the names the plugins' values are exposed under are fixed by the API
  // (sluice_flow_counter, sluice_flow_gauge), and a typed family may not name its type.
  w.family("sluice_flow_counter", "untyped",
           "A plugin's counter (monotonic, as the plugin reports it), by flow and name.");
  for (const FlowStatus* s : flows) {
    for (const auto& [name, value] : s->counters) {
      w.sample("sluice_flow_counter", {{"flow_id", s->id}, {"name", name}}, value);
    }
  }
  w.family("sluice_flow_gauge", "untyped", "A plugin's gauge, by flow and name.");
  for (const FlowStatus* s : flows) {
    for (const auto& [name, value] : s->gauges) {
      w.sample("sluice_flow_gauge", {{"flow_id", s->id}, {"name", name}}, value);
    }
  }
}

}  // namespace

std::string renderMetrics(Engine& engine, const HttpMetrics& http,
                          const MetricsPageOptions& options,
                          const std::optional<std::vector<std::string>>& selected) {
  const Engine::FlowCounts counts = engine.countFlows();
  const auto& actual = counts.actual;
  const auto& desired = counts.desired;
  // The statuses only for the per-flow series: the whole catalog's only within the limit.
  std::vector<FlowStatus> flows;
  if (selected) {
    flows = engine.statusOfIds(*selected);
  } else if (counts.total <= options.flow_limit) {
    flows = engine.statusAll();
  }
  std::string out;
  out.reserve(4096 + flows.size() * 160);
  ExpositionWriter w(out);
  w.family("sluice_flows", "gauge", "Flows by actual state.");
  for (State st : kAllStates) {
    w.sample("sluice_flows", {{"state", toString(st)}}, actual[static_cast<size_t>(st)]);
  }
  w.family("sluice_flows_desired", "gauge", "Flows by desired state.");
  for (Desired d : {Desired::kStopped, Desired::kRunning, Desired::kPaused}) {
    w.sample("sluice_flows_desired", {{"state", toString(d)}}, desired[static_cast<size_t>(d)]);
  }
  const ChangeFeed& feed = engine.feed();
  w.family("sluice_flow_transitions_total", "counter",
           "Transitions of flows into each actual state since the engine started.");
  for (State st : kAllStates) {
    w.sample("sluice_flow_transitions_total", {{"to", toString(st)}}, feed.transitionsTo(st));
  }
  w.family("sluice_flow_failures_total", "counter", "Transitions of flows into failed.");
  w.sample("sluice_flow_failures_total", {}, feed.transitionsTo(State::kFailed));
  w.family("sluice_flow_restarts_total", "counter", "Restarts made by the restart policy.");
  w.sample("sluice_flow_restarts_total", {}, engine.restarts());
  w.family("sluice_events_last_id", "gauge", "The id of the newest event of GET /events.");
  w.sample("sluice_events_last_id", {}, feed.last());

  w.family("sluice_plugins_loaded", "gauge", "Plugin files loaded.");
  w.sample("sluice_plugins_loaded", {}, engine.plugins().plugins().size());
  w.family("sluice_plugins_refused", "gauge", "Plugin files refused (see GET /plugins).");
  w.sample("sluice_plugins_refused", {}, engine.plugins().refused().size());

  w.family("sluice_workers", "gauge", "Engine worker threads.");
  w.sample("sluice_workers", {}, engine.workerCount());
  w.family("sluice_workers_busy", "gauge", "Engine workers running plugin or engine work.");
  w.sample("sluice_workers_busy", {}, engine.workersBusy());
  w.family("sluice_worker_queue_depth", "gauge", "Tasks waiting for an engine worker.");
  w.sample("sluice_worker_queue_depth", {}, engine.workQueued());

  w.family("sluice_store_commit_duration_seconds", "histogram",
           "Store write transactions, BEGIN to COMMIT.");
  w.histogram("sluice_store_commit_duration_seconds", {}, engine.store().commitDurations());

  w.family("sluice_step_lateness_seconds", "histogram",
           "How late flows' steps began after their due time (interval grid).");
  w.histogram("sluice_step_lateness_seconds", {}, engine.stepLateness());

  http.write(out);
  writeProcessMetrics(out);

  // Per-flow series: bounded, so that 100,000 flows do not make 100,000s of series.
  std::vector<const FlowStatus*> chosen;
  size_t omitted = 0;
  if (selected || counts.total <= options.flow_limit) {
    for (const auto& s : flows) chosen.push_back(&s);
  } else {
    omitted = counts.total;
    w.comment("per-flow series omitted: " + std::to_string(counts.total) +
              " flows are more than --metrics-flow-limit " + std::to_string(options.flow_limit) +
              "; select flows with ?flow_id=a,b");
  }
  w.family("sluice_metrics_flow_limit", "gauge",
           "Flows above which per-flow series are written only for flows selected with "
           "?flow_id=.");
  w.sample("sluice_metrics_flow_limit", {}, options.flow_limit);
  w.family("sluice_metrics_flows_omitted", "gauge",
           "Flows whose per-flow series this scrape left out because of the limit.");
  w.sample("sluice_metrics_flows_omitted", {}, omitted);
  writeFlowSeries(w, chosen);
  return out;
}

}  // namespace sluice::metrics
