// Store on a PostgreSQL server (libpq): what several nodes share in a cluster. Every write is one
// transaction committed before the call returns; a lost connection is re-opened on next use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/store/cluster_store.hpp"
#include "core/store/pg/pg_connection.hpp"
#include "core/store/pg/pg_listener.hpp"
#include "core/store/store.hpp"

namespace sluice {

class PgStore final : public Store, public ClusterStore {
 public:
  /// Connects to `url` (postgresql://...), applies the schema versions it lacks and starts
  /// listening for token changes made by other processes.
  static Result<std::unique_ptr<PgStore>> open(const std::string& url, size_t connections = 4);
  ~PgStore() override;

  Result<std::vector<StoredFlow>> loadAll() override;
  Result<std::vector<Incarnation>> insertFlows(const std::vector<StoredFlow>& flows,
                                               AuditRecord* audit) override;
  Result<Done> updateFlow(const std::string& id, Incarnation inc, const std::string& record_json,
                          AuditRecord* audit) override;
  Result<Done> deleteFlow(const std::string& id, AuditRecord* audit) override;
  Result<Done> deleteState(Incarnation inc) override;
  Result<Done> setRunRecords(const std::vector<RunRecordRow>& rows) override;
  Result<Done> setDesired(const std::vector<DesiredRow>& states, AuditRecord* audit) override;
  Result<std::optional<std::string>> stateGet(Incarnation inc, const std::string& key) override;
  Result<Done> statePut(Incarnation inc, const std::string& key, const std::string& value) override;
  Result<Done> stateDelete(Incarnation inc, const std::string& key) override;

  // pg_access.cpp
  Result<std::vector<TokenRecord>> loadTokens() override;
  Result<Done> insertToken(const TokenRecord& token, AuditRecord* audit) override;
  Result<Done> revokeToken(const std::string& name, int64_t now_ms, AuditRecord* audit) override;
  Result<uint64_t> externalChanges() override;
  Result<uint64_t> appendAudit(const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> listAudit(uint64_t after, size_t limit) override;
  Result<uint64_t> pruneAudit(int64_t before_ms) override;
  Result<Done> checkWritable() override;
  Result<uint64_t> reserveSequence(const std::string& name, uint64_t count) override;

  // pg_snapshot.cpp
  Result<StoreSnapshot> exportAll() override;
  Result<Done> importAll(const StoreSnapshot& snapshot) override;
  Result<std::vector<SchemaVersion>> schemaHistory() override;

  // pg_nodes.cpp
  Result<int64_t> renewNodeLease(const std::string& node_id, const std::string& url,
                                 int64_t started_ms, int64_t ttl_ms, bool leader) override;
  Result<std::vector<NodeRecord>> listNodes() override;
  Result<Done> leaveCluster(const std::string& node_id) override;
  Result<bool> holdLeadership(int64_t ttl_ms) override;

  // pg_cluster.cpp
  ClusterStore* cluster() override { return this; }
  Result<std::vector<OwnerRow>> listOwners() override;
  Result<Done> assignOwners(
      const std::vector<std::pair<std::string, std::string>>& flow_to_node) override;
  Result<std::vector<Claim>> claimOwned(const std::string& node_id) override;
  Result<Done> releaseClaims(const std::string& node_id, const std::vector<Claim>& claims) override;
  void dropClaims() override;
  Result<Done> publishStatus(const std::string& node_id,
                             const std::vector<SharedStatus>& rows) override;
  Result<std::vector<SharedStatus>> statusSince(uint64_t version) override;
  std::unique_ptr<Watch> watch(std::function<void(const std::string&)> changed) override;

  /// One transaction's statements: the first failure is kept, and every later one is skipped.
  class Tx {
   public:
    explicit Tx(pg::Connection& c) : conn_(c) {}
    std::optional<pg::Rows> run(const char* sql, const std::vector<pg::Param>& params = {},
                                bool binary_result = false);
    /// Several statements without parameters.
    bool script(const char* sql);
    bool failed() const { return failure_.has_value(); }
    /// The SQLSTATE of the failure ("23505": a unique violation), empty when none.
    const std::string& sqlState() const { return sql_state_; }
    Error error(const std::string& what) const;

   private:
    pg::Connection& conn_;
    std::optional<Error> failure_;
    std::string sql_state_;
  };

 private:
  explicit PgStore(std::string url, size_t connections) : url_(std::move(url)), max_(connections) {}

  /// A pooled connection, given back when the lease ends (dropped when it is broken).
  class Lease {
   public:
    Lease(PgStore* store, std::unique_ptr<pg::Connection> c) : store_(store), conn_(std::move(c)) {}
    Lease(Lease&&) = default;
    ~Lease();
    pg::Connection& operator*() const { return *conn_; }
    pg::Connection* operator->() const { return conn_.get(); }

   private:
    PgStore* store_;
    std::unique_ptr<pg::Connection> conn_;
  };
  Result<Lease> acquire();

  /// BEGIN, `body`, the audit entry when there is one, COMMIT, on one connection; rolls back and
  /// returns the error when `body` returns false or a statement fails. A connection found broken
  /// at BEGIN is re-opened once. kConflict on a unique violation, kUnavailable when the server
  /// cannot be reached.
  Result<Done> inTransaction(const char* what, AuditRecord* audit,
                             const std::function<bool(Tx&)>& body);
  /// One statement in its own transaction, run again once on a fresh connection when it failed
  /// because the connection broke (unless `retry` is false: for statements that must not run
  /// twice).
  Result<pg::Rows> single(const char* what, const char* sql, const std::vector<pg::Param>& params,
                          bool binary_result = false, bool retry = true);
  static bool insertAudit(Tx& tx, const AuditEntry& entry);
  Result<Done> migrate();

  const std::string url_;
  const size_t max_;
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<pg::Connection>> idle_;  // guarded by pool_mu_
  size_t open_ = 0;                                    // guarded by pool_mu_
  // Bumped by every committed token change of this process and every notification of another's.
  std::atomic<uint64_t> token_changes_{0};
  std::unique_ptr<pg::Listener> listener_;
  // The node's lease and leadership (a session advisory lock) on a connection of their own:
  // renewals never wait behind requests for a pooled one.
  std::mutex member_mu_;
  std::unique_ptr<pg::Connection> member_conn_;  // guarded by member_mu_
  bool leading_ = false;                         // guarded by member_mu_
  /// The membership connection, opened when needed (callers hold member_mu_).
  Result<pg::Connection*> memberConnection(int64_t ttl_ms);
  // The claims of this node (claimOwned), by incarnation: in a cluster every state write of an
  // incarnation carries its claim's epoch, and one without a claim is refused.
  std::mutex claims_mu_;
  std::string claim_node_;                                          // guarded; empty: no cluster
  uint64_t claims_generation_ = 0;                                  // guarded: bumped by dropClaims
  std::map<Incarnation, std::pair<std::string, uint64_t>> claims_;  // guarded: flow id, epoch
  /// The claim's node and epoch for a state write of `inc`; nullopt when not in a cluster.
  std::optional<std::pair<std::string, uint64_t>> claimFor(Incarnation inc);
  static pg::Rows renewOn(pg::Connection& conn, const std::string& node_id, const std::string& url,
                          int64_t started_ms, int64_t ttl_ms, bool leader);
};

}  // namespace sluice
