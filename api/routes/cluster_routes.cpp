#include "api/routes/cluster_routes.hpp"

#include "api/routes/admin_routes.hpp"
#include "api/routes/responses.hpp"
#include "core/model/json.hpp"

namespace sluice::api {

std::string clusterDocument(Store& store, const cluster::Membership& membership,
                            const std::map<std::string, size_t>& flows_per_node, int* status) {
  auto nodes = store.listNodes();
  if (!nodes.ok()) {
    *status = 503;
    return errorBody("cannot read the cluster's nodes: " + nodes.error().message);
  }
  // The leader: the live node that says so; should two (a leader whose session just died and
  // its successor), the one heard from last.
  const NodeRecord* leader = nullptr;
  for (const auto& n : nodes.value()) {
    if (n.alive && n.leader && (leader == nullptr || n.heartbeat_ms > leader->heartbeat_ms)) {
      leader = &n;
    }
  }
  const auto view = membership.view();
  std::string out = "{\"node\":";
  json::appendString(out, membership.options().node_id);
  out += ",\"leader\":";
  if (leader != nullptr) {
    json::appendString(out, leader->node_id);
  } else {
    out += "null";
  }
  out += ",\"lease_ttl_ms\":" + std::to_string(membership.options().ttl.count());
  out += ",\"fenced\":";
  out += view.fenced ? "true" : "false";
  out += ",\"nodes\":[";
  bool first = true;
  for (const auto& n : nodes.value()) {
    if (!first) out += ',';
    first = false;
    out += "{\"node_id\":";
    json::appendString(out, n.node_id);
    out += ",\"url\":";
    json::appendString(out, n.url);
    out += ",\"alive\":";
    out += n.alive ? "true" : "false";
    out += ",\"leader\":";
    out += &n == leader ? "true" : "false";
    out += ",\"started\":\"" + isoTime(n.started_ms) + "\"";
    out += ",\"last_heartbeat\":\"" + isoTime(n.heartbeat_ms) + "\"";
    out += ",\"lease_until\":\"" + isoTime(n.lease_until_ms) + "\"";
    auto count = flows_per_node.find(n.node_id);
    out += ",\"flows\":" + std::to_string(count == flows_per_node.end() ? 0 : count->second);
    out += '}';
  }
  out += "]}";
  *status = 200;
  return out;
}

}  // namespace sluice::api
