#include "core/store/sqlite_store.hpp"

#include <sqlite3.h>

#include <chrono>

#include "core/store/sqlite_statement.hpp"

namespace sluice {
namespace {

// Databases written before incarnations kept plugin state by flow id (table flow_state): move
// it to the incarnation of the flow stored under that id.
constexpr const char* kMigrateFlowState = R"(
BEGIN IMMEDIATE;
INSERT OR REPLACE INTO plugin_state (incarnation, key, value)
  SELECT f.seq, s.key, s.value FROM flow_state s JOIN flows f ON f.flow_id = s.flow_id;
DROP TABLE flow_state;
COMMIT;
)";

// State of incarnations that are no longer stored: a flow deleted while the engine crashed
// before its state was removed, or written late by plugin code of a deleted flow.
constexpr const char* kDropOrphanState =
    "DELETE FROM plugin_state WHERE incarnation NOT IN (SELECT seq FROM flows);";

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path, bool fold_journal) {
  // SQLite's memory statistics take a process-wide mutex on every allocation it makes (each
  // bound value, each row of a 100,000-row transaction); nothing here reads them. Only
  // possible before the library initialises, which the first open does.
  static const int no_memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)no_memstatus;
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Error{ErrorKind::kInternal, "cannot open database " + path + ": " + msg, {}};
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db));
  // The busy timeout first: another process (the token CLI, a server stopping) may hold the
  // lock for a moment when this one opens.
  for (const char* sql :
       {"PRAGMA busy_timeout=5000;", "PRAGMA journal_mode=WAL;", "PRAGMA synchronous=FULL;"}) {
    if (!store->exec(sql)) return store->sqlError("cannot initialise database " + path);
  }
  if (auto migrated = store->migrate(); !migrated.ok()) return migrated.error();
  bool legacy = false;
  {
    Statement st(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'flow_state'");
    legacy = st.ok() && st.step() == SQLITE_ROW;
  }
  if (legacy && !store->exec(kMigrateFlowState)) {
    Error e = store->sqlError("cannot migrate plugin state of " + path);
    store->exec("ROLLBACK");
    return e;
  }
  if (!store->exec(kDropOrphanState)) return store->sqlError("cannot clean plugin state");
  store->checkpointer_ = SqliteCheckpointer::attach(db, path);
  if (fold_journal) {
    // A journal left by a process that ended without folding it is folded too.
    Statement left(db, "SELECT 1 FROM flow_journal LIMIT 1");
    if (left.ok() && left.step() == SQLITE_ROW) store->journaled(false);
    store->folder_ = std::thread([s = store.get()] { s->foldLoop(); });
  }
  std::string error;
  store->token_changes_ = SharedCounter::open(path + "-tokens", &error);
  if (!store->token_changes_) return Error{ErrorKind::kInternal, error, {}};
  return store;
}

SqliteStore::~SqliteStore() {
  stopFolding();
  checkpointer_.reset();
  sqlite3_close(db_);
}

uint64_t SqliteStore::checkpoints() const {
  return checkpointer_ ? checkpointer_->checkpoints() : 0;
}

Error SqliteStore::sqlError(const std::string& what) const {
  return Error{ErrorKind::kInternal, what + ": " + sqlite3_errmsg(db_), {}};
}

bool SqliteStore::exec(const char* sql) {
  return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

Result<std::vector<StoredFlow>> SqliteStore::loadAll() {
  std::lock_guard lock(mu_);
  // One read transaction: the tables and the journal as of one moment, though another process
  // (a server still stopping) folds the journal into the tables meanwhile.
  if (!exec("BEGIN")) return sqlError("cannot read flows");
  auto out = loadAllLocked();
  exec(out.ok() ? "COMMIT" : "ROLLBACK");
  return out;
}

Result<std::vector<StoredFlow>> SqliteStore::loadAllLocked() {
  Statement st(db_, "SELECT flow_id, record, desired, seq FROM flows ORDER BY seq");
  if (!st.ok()) return sqlError("cannot read flows");
  std::vector<StoredFlow> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    StoredFlow f;
    f.id = st.text(0);
    f.record_json = st.text(1);
    f.desired = desiredFromString(st.text(2)).value_or(Desired::kStopped);
    f.incarnation = static_cast<Incarnation>(sqlite3_column_int64(st.get(), 3));
    out.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return sqlError("cannot read flows");
  // The runs, in the same order: one pass over each table, merged here (cheaper than a join's
  // look-up per flow at a million flows). Every flow has its row (insertFlows), and
  // deleteFlow() takes it along.
  Statement runs(db_, "SELECT seq, runs, last_run, type_version FROM flow_runs ORDER BY seq");
  if (!runs.ok()) return sqlError("cannot read the flows' runs");
  size_t at = 0;
  while ((rc = runs.step()) == SQLITE_ROW) {
    const auto seq = static_cast<Incarnation>(runs.int64(0));
    while (at < out.size() && out[at].incarnation < seq) ++at;
    if (at == out.size()) break;
    if (out[at].incarnation != seq) continue;
    out[at].runs = static_cast<uint64_t>(runs.int64(1));
    out[at].last_run = runs.text(2);
    out[at].type_version = runs.text(3);
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sqlError("cannot read the flows' runs");
  // What is journaled and not folded yet, on top (sqlite_journal.cpp).
  if (!applyJournal(out)) return sqlError("cannot read the journal");
  return out;
}

Result<Done> SqliteStore::inTransaction(const char* what, AuditRecord* audit,
                                        const std::function<bool()>& body) {
  const auto began = std::chrono::steady_clock::now();
  if (!exec("BEGIN IMMEDIATE")) return sqlError("cannot begin transaction");
  if (!body() || (audit != nullptr && !insertAudit(audit->entry))) {
    Error e = sqlError(what);
    exec("ROLLBACK");
    return e;
  }
  if (!exec("COMMIT")) {
    Error e = sqlError("cannot commit");
    exec("ROLLBACK");
    return e;
  }
  commit_durations_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  if (audit != nullptr) audit->written = true;
  return Done{};
}

Result<uint64_t> SqliteStore::reserveSequence(const std::string& name, uint64_t count) {
  std::lock_guard lock(mu_);
  uint64_t first = 1;
  auto done = inTransaction("cannot reserve sequence numbers", nullptr, [&] {
    Statement read(db_, "SELECT next FROM sequences WHERE name = ?");
    read.bind(1, name);
    if (read.step() == SQLITE_ROW) first = static_cast<uint64_t>(read.int64(0));
    Statement write(db_, "INSERT OR REPLACE INTO sequences (name, next) VALUES (?, ?)");
    write.bind(1, name);
    write.bindInt64(2, static_cast<int64_t>(first + count));
    return write.step() == SQLITE_DONE;
  });
  if (!done.ok()) return done.error();
  return first;
}

Result<Done> SqliteStore::checkWritable() {
  std::lock_guard lock(mu_);
  // Takes the write lock and gives it back: fails when the file, its directory or the disk
  // cannot be written, or another process holds the lock past the busy timeout.
  if (!exec("BEGIN IMMEDIATE")) return sqlError("the store cannot begin a write transaction");
  exec("ROLLBACK");
  return Done{};
}

Result<std::vector<Incarnation>> SqliteStore::insertFlows(const std::vector<StoredFlow>& flows,
                                                          AuditRecord* audit) {
  std::lock_guard lock(mu_);
  std::vector<Incarnation> incarnations;
  auto done = inTransaction("cannot insert flows", audit, [&] {
    Statement st(db_, "INSERT INTO flows (flow_id, record, desired) VALUES (?, ?, ?)");
    bool ok = st.ok();
    for (size_t i = 0; ok && i < flows.size(); ++i) {
      st.bind(1, flows[i].id);
      st.bind(2, flows[i].record_json);
      st.bind(3, std::string(toString(flows[i].desired)));
      ok = st.step() == SQLITE_DONE;
      incarnations.push_back(static_cast<Incarnation>(sqlite3_last_insert_rowid(db_)));
      st.reset();
    }
    if (!ok || incarnations.empty()) return ok;
    // Their rows in flow_runs (none run yet), in one statement: every seq from the first one
    // inserted is this transaction's (it holds the write lock).
    Statement runs(db_, "INSERT INTO flow_runs (seq) SELECT seq FROM flows WHERE seq >= ?");
    if (!runs.ok()) return false;
    runs.bindInt(1, incarnations.front());
    return runs.step() == SQLITE_DONE;
  });
  if (!done.ok()) return done.error();
  return incarnations;
}

Result<Done> SqliteStore::updateFlow(const std::string& id, Incarnation inc,
                                     const std::string& record_json, AuditRecord* audit) {
  std::lock_guard lock(mu_);
  bool found = true;
  auto done = inTransaction("cannot update flow", audit, [&] {
    Statement st(db_, "UPDATE flows SET record = ? WHERE flow_id = ? AND seq = ?");
    if (!st.ok()) return false;
    st.bind(1, record_json);
    st.bind(2, id);
    st.bindInt(3, inc);
    if (st.step() != SQLITE_DONE) return false;
    found = sqlite3_changes(db_) == 1;
    return found;
  });
  if (!found) return Error{ErrorKind::kNotFound, "flow '" + id + "' does not exist", {}};
  return done;
}

Result<Done> SqliteStore::deleteFlow(const std::string& id, AuditRecord* audit) {
  std::lock_guard lock(mu_);
  return inTransaction("cannot delete flow", audit, [&] {
    Statement runs(db_,
                   "DELETE FROM flow_runs WHERE seq IN (SELECT seq FROM flows WHERE flow_id = ?)");
    Statement st(db_, "DELETE FROM flows WHERE flow_id = ?");
    if (!runs.ok() || !st.ok()) return false;
    runs.bind(1, id);
    st.bind(1, id);
    return runs.step() == SQLITE_DONE && st.step() == SQLITE_DONE;
  });
}

Result<Done> SqliteStore::deleteState(Incarnation inc) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM plugin_state WHERE incarnation = ?");
  if (!st.ok()) return sqlError("cannot delete state");
  st.bindInt(1, inc);
  if (st.step() != SQLITE_DONE) return sqlError("cannot delete state");
  return Done{};
}

Result<std::optional<std::string>> SqliteStore::stateGet(Incarnation inc, const std::string& key) {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT value FROM plugin_state WHERE incarnation = ? AND key = ?");
  if (!st.ok()) return sqlError("cannot read state");
  st.bindInt(1, inc);
  st.bind(2, key);
  int rc = st.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(st.text(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return sqlError("cannot read state");
}

Result<Done> SqliteStore::statePut(Incarnation inc, const std::string& key,
                                   const std::string& value) {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "INSERT OR REPLACE INTO plugin_state (incarnation, key, value) VALUES (?, ?, ?)");
  if (!st.ok()) return sqlError("cannot write state");
  st.bindInt(1, inc);
  st.bind(2, key);
  st.bindBlob(3, value);
  if (st.step() != SQLITE_DONE) return sqlError("cannot write state");
  return Done{};
}

Result<Done> SqliteStore::stateDelete(Incarnation inc, const std::string& key) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM plugin_state WHERE incarnation = ? AND key = ?");
  if (!st.ok()) return sqlError("cannot delete state");
  st.bindInt(1, inc);
  st.bind(2, key);
  if (st.step() != SQLITE_DONE) return sqlError("cannot delete state");
  return Done{};
}

}  // namespace sluice
