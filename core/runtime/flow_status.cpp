#include "core/runtime/flow_status.hpp"

#include "core/model/json.hpp"
#include "core/runtime/flow_runtime.hpp"

namespace sluice {

FlowStatus FlowRuntime::status() const {
  FlowStatus s;
  const FlowMetrics* metrics = nullptr;
  {
    std::lock_guard lock(mu_);
    s.id = id_;
    s.type = spec_->type;
    if (type_) s.type_version = type_->version.str();
    s.state = state_;
    s.desired = desired_;
    s.since = since_;
    s.error = error_;
    s.operation = operation_;
    s.deadline = deadline_;
    s.restarts = spec_->runtime.restart.on_failure;
    s.restart_count = restart_.count();
    s.next_restart_at = next_restart_at_;
    s.runs = runs_;
    if (last_run_) s.last_run = *last_run_;
    metrics = metrics_.get();  // once made, it lives as long as the flow
  }
  if (metrics != nullptr) {
    s.counters = metrics->counters();
    s.gauges = metrics->gauges();
  }
  return s;
}

// The change feed's state event of a flow (see core/events/change_feed.hpp).
void FlowRuntime::publishStateLocked(bool transition) {
  if (!services_->feed) return;
  // Published under mu_: a flow's events are in the order of its transitions. Not transition:
  // a new error in the same state.
  services_->feed->publishState(id_, StateFields{state_, desired_, since_, error_}, transition);
}

}  // namespace sluice
