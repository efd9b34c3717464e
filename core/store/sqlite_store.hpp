// Store on an embedded SQLite database (WAL, synchronous=FULL).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/store/shared_counter.hpp"
#include "core/store/sqlite_checkpointer.hpp"
#include "core/store/store.hpp"

struct sqlite3;

namespace sluice {

class SqliteStore final : public Store {
 public:
  /// Opens (creating when needed) the database at `path`. `fold_journal` false leaves the
  /// journal (sqlite_journal.cpp) to another process (a tool beside the server) or, in tests,
  /// as it is.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path,
                                                   bool fold_journal = true);
  ~SqliteStore() override;
  /// Checkpoints of the log run off the commits' path so far (core/store/sqlite_checkpointer.hpp).
  uint64_t checkpoints() const;

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

  // sqlite_access.cpp
  Result<std::vector<TokenRecord>> loadTokens() override;
  Result<Done> insertToken(const TokenRecord& token, AuditRecord* audit) override;
  Result<Done> revokeToken(const std::string& name, int64_t now_ms, AuditRecord* audit) override;
  Result<uint64_t> externalChanges() override;
  Result<uint64_t> appendAudit(const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> listAudit(uint64_t after, size_t limit) override;
  Result<uint64_t> pruneAudit(int64_t before_ms) override;
  Result<Done> checkWritable() override;
  Result<uint64_t> reserveSequence(const std::string& name, uint64_t count) override;

  // sqlite_snapshot.cpp
  Result<StoreSnapshot> exportAll() override;
  Result<Done> importAll(const StoreSnapshot& snapshot) override;
  Result<std::vector<SchemaVersion>> schemaHistory() override;

  // sqlite_nodes.cpp
  Result<int64_t> renewNodeLease(const std::string& node_id, const std::string& url,
                                 int64_t started_ms, int64_t ttl_ms, bool leader) override;
  Result<std::vector<NodeRecord>> listNodes() override;
  Result<Done> leaveCluster(const std::string& node_id) override;
  Result<bool> holdLeadership(int64_t ttl_ms) override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  Error sqlError(const std::string& what) const;
  bool exec(const char* sql);
  /// BEGIN IMMEDIATE, `body`, the audit entry when there is one, COMMIT; rolls back and returns
  /// the error (`what`) when `body` returns false or the commit fails. Sets audit->written once
  /// committed. Callers hold mu_.
  Result<Done> inTransaction(const char* what, AuditRecord* audit,
                             const std::function<bool()>& body);
  /// Inserts one audit row. Callers hold mu_.
  bool insertAudit(const AuditEntry& entry);
  /// loadAll() within its read transaction. Callers hold mu_.
  Result<std::vector<StoredFlow>> loadAllLocked();
  /// Applies the schema versions this database lacks, each in its own transaction.
  Result<Done> migrate();

  // sqlite_journal.cpp: desired states and run records are journaled, a batch per row, and
  // folded into their tables by folder_.
  /// The rows as batches of at most a few MB (none when no row carries anything).
  static std::vector<std::string> encodeRuns(const std::vector<RunRecordRow>& rows);
  /// Inserts one batch (`body` not empty). Callers hold mu_, in a transaction.
  bool appendJournal(int kind, std::string_view desired, std::string_view body);
  /// A batch was committed (`ours`: by this process, which then folds it before it closes):
  /// the journal is due to be folded.
  void journaled(bool ours = true);
  /// Applies the journal, in order, to flows read from the tables. Callers hold mu_.
  bool applyJournal(std::vector<StoredFlow>& flows);
  enum class FoldStep { kMore, kEmpty, kFailed };
  /// Folds up to a slice of the oldest batch, in one transaction.
  FoldStep foldSlice();
  void foldLoop();
  /// Ends folder_, then folds what this process journaled.
  void stopFolding();

  std::mutex mu_;  // serializes every use of db_
  sqlite3* db_;    // guarded by mu_
  // Checkpoints the log off the commits' path; released before db_ is closed.
  std::unique_ptr<SqliteCheckpointer> checkpointer_;
  // <db>-tokens: bumped after every committed token change, by this process or another.
  std::unique_ptr<SharedCounter> token_changes_;
  std::mutex fold_mu_;
  std::condition_variable fold_cv_;
  bool fold_due_ = false;           // guarded by fold_mu_
  bool fold_stop_ = false;          // guarded by fold_mu_
  bool journaled_ = false;          // guarded by fold_mu_: this process journaled a batch
  uint64_t batches_journaled_ = 0;  // guarded by fold_mu_
  std::chrono::steady_clock::time_point first_unfolded_at_;  // guarded by fold_mu_
  std::chrono::steady_clock::time_point last_journaled_at_;  // guarded by fold_mu_
  std::thread folder_;
};

}  // namespace sluice
