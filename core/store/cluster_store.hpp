// What the nodes of a cluster share beyond the Store: who owns each flow, who runs it, and the
// status the running node publishes. Only a shared store (PostgreSQL) provides it; a SQLite store
// is one node, and Store::cluster() is null there. docs/cluster.md describes the protocol.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model/errors.hpp"
#include "core/store/store.hpp"

namespace sluice {

/// A flow's owner as the leader assigned it. `epoch` comes from one increasing sequence and is
/// new on every change of owner; `active_node` is the node that claimed the run (empty when
/// none), which may still be the previous owner until it stopped the flow.
struct OwnerRow {
  std::string flow_id;
  std::string node_id;
  uint64_t epoch = 0;
  std::string active_node;
};

/// A flow this node owns and has claimed: it may run it, with this epoch on every state write.
struct Claim {
  std::string flow_id;
  Incarnation incarnation = 0;
  uint64_t epoch = 0;
};

/// What the running node publishes of a flow for the other nodes' status and /events.
struct SharedStatus {
  std::string flow_id;
  std::string node_id;
  uint64_t epoch = 0;
  std::string state;  // toString(State)
  std::string error;
  int64_t since_ms = 0;
  std::string metrics = "{}";  // {"counters":{...},"gauges":{...}}
  uint64_t version = 0;        // set by the store: increases with every write
};

class ClusterStore {
 public:
  virtual ~ClusterStore() = default;

  /// Every ownership row.
  virtual Result<std::vector<OwnerRow>> listOwners() = 0;
  /// Gives each flow its new owner, with a new epoch where the owner changes (the leader).
  virtual Result<Done> assignOwners(
      const std::vector<std::pair<std::string, std::string>>& flow_to_node) = 0;
  /// Claims the runs of the flows `node_id` owns that no other live node has claimed (a node
  /// whose lease ran out by the store's clock holds no claim), and returns every claim the node
  /// holds with its epoch. From then on state writes of those incarnations carry that epoch.
  virtual Result<std::vector<Claim>> claimOwned(const std::string& node_id) = 0;
  /// Gives up the claims on flows this node stopped (Claim::flow_id, Claim::epoch), each only
  /// if it still holds it at that epoch (not a claim taken again since); their state writes
  /// are refused from now on. One transaction.
  virtual Result<Done> releaseClaims(const std::string& node_id,
                                     const std::vector<Claim>& claims) = 0;
  /// Forgets the claims this process holds (fenced): every state write is refused until the
  /// next claimOwned that begins after this call.
  virtual void dropClaims() = 0;

  /// Upserts the status of flows this node runs; rows of flows it no longer claims are skipped.
  virtual Result<Done> publishStatus(const std::string& node_id,
                                     const std::vector<SharedStatus>& rows) = 0;
  /// Status rows written after `version`, in version order.
  virtual Result<std::vector<SharedStatus>> statusSince(uint64_t version) = 0;

  /// Calls `changed(channel)` on a thread of the store when flows ("flows"), owners ("owners"),
  /// status ("status") or nodes ("nodes") change, and with "" after every (re)connection, when
  /// notifications may have been lost. Stops when the returned handle is destroyed.
  class Watch {
   public:
    virtual ~Watch() = default;
  };
  virtual std::unique_ptr<Watch> watch(std::function<void(const std::string& channel)> changed) = 0;
};

}  // namespace sluice
