#include "core/runtime/flow_status.hpp"

#include <array>
#include <cstdio>
#include <ctime>

#include "core/model/json.hpp"
#include "core/runtime/flow_runtime.hpp"

namespace sluice {

std::string formatTime(SystemTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 40> buf{};
  size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::array<char, 8> frac{};
  std::snprintf(frac.data(), frac.size(), ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(buf.data(), n) + frac.data();
}

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
