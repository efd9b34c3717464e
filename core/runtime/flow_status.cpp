#include "core/runtime/flow_status.hpp"

#include "core/model/json.hpp"
#include "core/runtime/flow_runtime.hpp"

namespace sluice {

std::string stateEventJson(std::string_view flow_id, std::string_view status, Desired desired,
                           SystemTime since, std::string_view error, std::string_view node) {
  std::string data = "{\"flow_id\":";
  json::appendString(data, flow_id);
  data += ",\"status\":";
  json::appendString(data, status);
  data += ",\"desired\":\"";
  data += toString(desired);
  data += "\",\"since\":\"";
  data += formatTime(since);
  data += "\",\"error\":";
  if (error.empty()) {
    data += "null";
  } else {
    json::appendString(data, error);
  }
  if (!node.empty()) {
    data += ",\"node\":";
    json::appendString(data, node);
  }
  data += '}';
  return data;
}

// The change feed's state event of a flow (see core/events/change_feed.hpp).
void FlowRuntime::publishStateLocked(bool transition) {
  if (!services_->feed) return;
  // Published under mu_: a flow's events are in the order of its transitions.
  std::string data = stateEventJson(id_, toString(state_), desired_, since_, error_);
  if (transition) {
    services_->feed->publishState(id_, state_, std::move(data));
  } else {
    services_->feed->publish(EventKind::kState, id_, std::move(data));  // a new error only
  }
}

}  // namespace sluice
