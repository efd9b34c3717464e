// GET /cluster: the nodes sharing this node's store, their liveness, the leader.
#pragma once

#include <map>
#include <string>

#include "api/http/reply.hpp"
#include "core/cluster/membership.hpp"
#include "core/store/store.hpp"

namespace sluice::api {

/// The /cluster document: this node's id, the leader's (null when no live node leads) and every
/// node the store knows, alive or not, with the flows it owns. Reads the store: call it off the
/// I/O threads.
std::string clusterDocument(Store& store, const cluster::Membership& membership,
                            const std::map<std::string, size_t>& flows_per_node, int* status);

}  // namespace sluice::api
