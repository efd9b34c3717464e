// The cluster's control loop on one node (docs/cluster.md). On a thread of its own it:
//   - re-reads the flows when any node changed them, and hands them to the engine's catalog;
//   - as the leader, assigns every flow to a live node (assignment.hpp), a new fencing epoch
//     with every change of owner;
//   - claims the runs of the flows this node owns (once no other live node holds them) and has
//     the engine run exactly those, stopping the flows that moved away;
//   - publishes the status of the flows it runs (transitions at once, metrics once a second),
//     and reads the status the other nodes publish.
// It wakes on the store's notifications and re-reads everything every period as a safety net.
// `fence` (the membership could not renew its lease for TTL/2) claims nothing until `unfence`;
// the engine stops every flow at once (Engine::fence).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/store/cluster_store.hpp"
#include "core/store/store.hpp"

namespace sluice::cluster {

/// What the coordinator drives: the engine's catalog and runtimes (core/engine/engine_cluster.cpp).
class Participant {
 public:
  virtual ~Participant() = default;
  /// A mark taken before the flows are read (see syncCatalog).
  virtual uint64_t catalogMark() = 0;
  /// Every stored flow, in creation order, read after `mark` was taken: add, change and drop
  /// flows to match, except those written through this node since (the read may predate them).
  virtual void syncCatalog(std::vector<StoredFlow> stored, uint64_t mark) = 0;
  /// Every ownership row (for status and the flow count per node).
  virtual void setOwners(const std::vector<OwnerRow>& owners) = 0;
  /// The flows this node may run now: start those newly claimed toward their desired state
  /// (unless the node is fenced meanwhile), stop (hard) every running flow not among them and
  /// release its claim once stopped.
  virtual void placeClaims(const std::vector<Claim>& claims, const std::string& why) = 0;
  /// Whether this node owns flows it has not claimed yet (their previous owner still held them).
  virtual bool awaitsClaims() = 0;
  /// Flows stopped here since the last call whose claims are to be released (flow id and the
  /// epoch it ran at), none that runs here again.
  virtual std::vector<Claim> takeReleases() = 0;
  /// Status rows of the flows this node runs that changed since the last call (all when `all`).
  virtual std::vector<SharedStatus> localStatus(bool all) = 0;
  /// Status published by the nodes, newest version last.
  virtual void applyRemoteStatus(const std::vector<SharedStatus>& rows) = 0;
};

struct CoordinatorOptions {
  std::string node_id;
  std::chrono::milliseconds ttl{10'000};
  std::function<bool()> leading;  // whether this node holds the leadership now
};

class Coordinator {
 public:
  Coordinator(Store& store, ClusterStore& cluster, Participant& participant,
              CoordinatorOptions options);
  /// Stops the loop (the flows keep running: the engine's shutdown stops them).
  ~Coordinator();
  /// Stops the loop now; fence() and wake() still work (they do nothing more). Idempotent.
  void stop();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  /// Something changed: "flows", "owners", "status", "nodes", "local" (a transition here), or
  /// "" for everything.
  void wake(const std::string& what);
  /// Claims nothing more, and makes every state write fail at once, until unfence (the engine
  /// stops the flows: Engine::fence).
  void fence();
  /// The lease is ours again: claim and run what this node owns.
  void unfence();
  /// Runs one round now and waits for it (tests, and a read that found an unknown flow).
  void syncNow(std::chrono::milliseconds bound);

 private:
  struct Dirty {
    bool flows = false, owners = false, status = false, nodes = false, local = false;
    bool any() const { return flows || owners || status || nodes || local; }
  };
  void run();
  void round(Dirty dirty, bool periodic);
  /// Writes the owners that changed; whether any did. `failed` when the store refused.
  bool assign(const std::vector<StoredFlow>& flows, const std::vector<NodeRecord>& nodes,
              bool* failed);

  Store& store_;
  ClusterStore& cluster_;
  Participant& participant_;
  const CoordinatorOptions options_;
  const std::chrono::milliseconds period_;

  std::mutex mu_;
  std::condition_variable cv_;
  Dirty dirty_;        // guarded by mu_
  bool stop_ = false;  // guarded by mu_
  std::atomic<bool> fenced_{false};
  uint64_t rounds_done_ = 0;    // guarded by mu_
  uint64_t rounds_wanted_ = 0;  // guarded by mu_
  std::condition_variable round_cv_;

  // Loop thread only.
  std::vector<StoredFlow> flows_;
  std::vector<Claim> releases_;  // releases that failed, tried again every round
  uint64_t periods_ = 0;
  bool retry_claims_ = false;      // the last claimOwned failed
  std::vector<std::string> live_;  // the live nodes the leader last saw (sorted by id)
  uint64_t status_version_ = 0;
  std::chrono::steady_clock::time_point last_full_{};
  std::chrono::steady_clock::time_point last_metrics_{};

  std::unique_ptr<ClusterStore::Watch> watch_;
  std::thread thread_;
};

}  // namespace sluice::cluster
