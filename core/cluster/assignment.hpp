// Which node owns which flow: rendezvous (highest random weight) hashing with a load bound.
// Pure: the leader computes it from the live nodes and the flows, and every node can check it.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::cluster {

struct AssignmentOptions {
  // A node takes at most ceil(flows / nodes * (1 + slack)) flows: the counts per node stay within
  // about ±(slack * (nodes - 1)) of even.
  double slack = 0.03;
};

/// Every flow to one of `nodes` (none when there is no node). Each flow goes to the node that
/// ranks highest for it (a hash of flow and node) among those not yet full, flows taken in the
/// order of their own hash: a node joining or leaving moves about 1/N of the flows, and the
/// result depends only on the two sets, not on their order.
std::unordered_map<std::string, std::string> assignFlows(const std::vector<std::string>& flows,
                                                         const std::vector<std::string>& nodes,
                                                         const AssignmentOptions& options = {});

/// The weight of `node` for `flow` (64-bit, well mixed).
uint64_t rendezvousWeight(const std::string& flow, const std::string& node);

}  // namespace sluice::cluster
