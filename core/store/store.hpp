// Durable storage of flow configurations, desired states and per-flow plugin state.
// An interface so another backend can replace SQLite without touching api/ or plugins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics/histogram.hpp"
#include "core/model/errors.hpp"
#include "core/model/states.hpp"
#include "core/store/access.hpp"

namespace sluice {

class ClusterStore;  // core/store/cluster_store.hpp

/// Identifies one life of a flow id: a flow deleted and created again under the same id is a
/// new incarnation. Plugin state and configuration updates are keyed by it, so nothing of a
/// deleted flow reaches its successor. Never 0 for a stored flow.
using Incarnation = uint64_t;

struct StoredFlow {
  std::string id;
  std::string record_json;  // the configuration object, compact JSON text
  Desired desired = Desired::kStopped;
  Incarnation incarnation = 0;  // set by the store (loadAll, insertFlows)
  std::string type_version{};   // the flow type version it last started on; empty = never
  uint64_t runs = 0;            // runs begun (core/model/run_record.hpp)
  std::string last_run{};       // the last run, storedRunRecord(); empty = never ran
};

/// A flow's desired state as a command sets it. `incarnation`, when not 0, is the flow's current
/// one: a store may find the row by it (its key) instead of by id.
struct DesiredRow {
  std::string id;
  Desired desired = Desired::kStopped;
  Incarnation incarnation = 0;
};

/// What a flow's life records about incarnation `incarnation` of flow `id`: its runs (how many
/// began, and the last one as storedRunRecord text) when `has_run`, and the flow type version
/// it starts on when `type_version` is not empty.
struct RunRecordRow {
  std::string id;
  Incarnation incarnation = 0;
  uint64_t runs = 0;
  std::string last_run;
  std::string type_version{};
  bool has_run = true;
};

/// One key of a flow incarnation's plugin state.
struct StateRow {
  Incarnation incarnation = 0;
  std::string key;
  std::string value;
};

/// Everything a store holds, for `sluice migrate`: flows in creation order with their
/// incarnations, plugin state, tokens, the audit log and the durable sequences.
struct StoreSnapshot {
  std::vector<StoredFlow> flows;
  std::vector<StateRow> state;
  std::vector<TokenRecord> tokens;
  std::vector<AuditEntry> audit;
  std::vector<std::pair<std::string, uint64_t>> sequences;  // name, next number
};

/// One applied schema version (core/store/migrations.hpp).
struct SchemaVersion {
  int version = 0;
  std::string name;
};

/// One node of a cluster as the store sees it. Times are the store's clock, in ms since the
/// epoch; `alive` is the store's own judgement (its lease has not run out by its clock).
struct NodeRecord {
  std::string node_id;
  std::string url;
  int64_t started_ms = 0;
  int64_t heartbeat_ms = 0;
  int64_t lease_until_ms = 0;
  bool leader = false;
  bool alive = false;
};

/// Every method is thread-safe and durable when it returns ok: a write that returned ok survives
/// a crash of the process or the machine.
///
/// The writes that change flows take an optional audit record: when it is given, its entry is
/// appended in the same transaction and `written` is set once that transaction committed.
class Store {
 public:
  virtual ~Store() = default;

  /// All flows, in creation order.
  virtual Result<std::vector<StoredFlow>> loadAll() = 0;
  /// Adds every flow in one transaction (all or nothing); their incarnations, in order.
  virtual Result<std::vector<Incarnation>> insertFlows(const std::vector<StoredFlow>& flows,
                                                       AuditRecord* audit) = 0;
  /// Replaces the configuration of incarnation `inc` of flow `id`; keeps its position and
  /// desired state. kNotFound when that incarnation is no longer stored (deleted, or replaced by
  /// a flow created again under the same id): nothing is written then.
  virtual Result<Done> updateFlow(const std::string& id, Incarnation inc,
                                  const std::string& record_json, AuditRecord* audit) = 0;
  /// Removes a flow's configuration (not its plugin state: see deleteState).
  virtual Result<Done> deleteFlow(const std::string& id, AuditRecord* audit) = 0;
  /// Removes the plugin state of an incarnation (after its flow was deleted and stopped).
  virtual Result<Done> deleteState(Incarnation inc) = 0;
  /// Records the runs and type versions of flows in one transaction, in order (a later row of
  /// the same flow wins). A row whose incarnation is gone (deleted, or recreated) is skipped.
  virtual Result<Done> setRunRecords(const std::vector<RunRecordRow>& rows) = 0;
  Result<Done> setRunRecord(const std::string& id, Incarnation inc, uint64_t runs,
                            const std::string& last_run) {
    return setRunRecords({RunRecordRow{id, inc, runs, last_run}});
  }
  /// Records the flow type version incarnation `inc` of flow `id` started on.
  Result<Done> setTypeVersion(const std::string& id, Incarnation inc, const std::string& version) {
    return setRunRecords({RunRecordRow{id, inc, 0, "", version, false}});
  }
  /// Sets the desired state of several flows in one transaction.
  virtual Result<Done> setDesired(const std::vector<DesiredRow>& states, AuditRecord* audit) = 0;

  /// Per-incarnation plugin key/value state: a value, nothing when absent, or an error.
  virtual Result<std::optional<std::string>> stateGet(Incarnation inc, const std::string& key) = 0;
  virtual Result<Done> statePut(Incarnation inc, const std::string& key,
                                const std::string& value) = 0;
  virtual Result<Done> stateDelete(Incarnation inc, const std::string& key) = 0;

  /// Every token ever issued, revoked ones included (their hashes answer "revoked").
  virtual Result<std::vector<TokenRecord>> loadTokens() = 0;
  /// Adds a token; kConflict when a token that is not revoked has that name.
  virtual Result<Done> insertToken(const TokenRecord& token, AuditRecord* audit) = 0;
  /// Revokes the live token called `name` at `now_ms`; kNotFound when there is none.
  virtual Result<Done> revokeToken(const std::string& name, int64_t now_ms, AuditRecord* audit) = 0;
  /// A number that changes after every committed token change, by this process or another
  /// (the `sluice token` CLI on the same data directory); the caller re-reads the tokens then.
  /// Cheap enough to call on every request.
  virtual Result<uint64_t> externalChanges() = 0;

  /// Appends one entry on its own; its sequence number.
  virtual Result<uint64_t> appendAudit(const AuditEntry& entry) = 0;
  /// Entries with seq > after, in order, at most `limit`.
  virtual Result<std::vector<AuditEntry>> listAudit(uint64_t after, size_t limit) = 0;
  /// Removes entries older than `before_ms`; how many.
  virtual Result<uint64_t> pruneAudit(int64_t before_ms) = 0;

  /// Reserves `count` numbers of the named durable sequence (the change feed's event ids) and
  /// returns the first; numbers are never handed out twice, even across restarts.
  virtual Result<uint64_t> reserveSequence(const std::string& name, uint64_t count) = 0;

  /// Everything stored: on PostgreSQL read in one transaction; on SQLite table by table, so
  /// stop the servers using the file first (sluice migrate says so).
  virtual Result<StoreSnapshot> exportAll() = 0;
  /// Writes a snapshot into this store in one transaction: flows keep their order and desired
  /// states (under new incarnations, their plugin state follows them), tokens and audit entries
  /// are copied, and each sequence continues from the larger of the two. kConflict, writing
  /// nothing, when this store already holds flows or tokens.
  virtual Result<Done> importAll(const StoreSnapshot& snapshot) = 0;
  /// The schema versions applied to this store, in order.
  virtual Result<std::vector<SchemaVersion>> schemaHistory() = 0;

  /// Renews (or first takes) the lease of node `node_id` for `ttl_ms` from the store's now,
  /// recording its URL, start time and whether it leads; the lease's end, by the store's clock.
  virtual Result<int64_t> renewNodeLease(const std::string& node_id, const std::string& url,
                                         int64_t started_ms, int64_t ttl_ms, bool leader) = 0;
  /// Every node that ever renewed a lease and did not leave, by node id.
  virtual Result<std::vector<NodeRecord>> listNodes() = 0;
  /// Removes a node's row (a clean shutdown): the others need not wait for its lease to lapse.
  virtual Result<Done> leaveCluster(const std::string& node_id) = 0;
  /// Tries to become, or stay, the cluster's one leader; whether this store's process leads.
  /// On PostgreSQL a session advisory lock on the connection the lease is renewed on, which the
  /// server ends once it is idle for 2/3 of `ttl_ms`: the lock of a leader that died, froze or
  /// was cut off is free again within that. A SQLite store is one node, which always leads.
  virtual Result<bool> holdLeadership(int64_t ttl_ms) = 0;

  /// The cluster protocol's tables, on a store that several nodes share; null on one that
  /// only this process uses (SQLite).
  virtual ClusterStore* cluster() { return nullptr; }

  /// Whether a write transaction can begin now (the readiness probe); writes nothing.
  virtual Result<Done> checkWritable() = 0;

  /// How long the write transactions took, BEGIN to COMMIT, in seconds.
  const metrics::Histogram& commitDurations() const { return commit_durations_; }

 protected:
  metrics::Histogram commit_durations_{metrics::Histogram::defaultLatencyBounds()};
};

}  // namespace sluice
