#include "core/store/pg/pg_store.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <unordered_map>

#include "core/store/migrations.hpp"

namespace sluice {

namespace {

// Every node migrates under this lock, so two starting at once apply each version once.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7405183019)";
// Flows, their records and desired states changed: the other nodes of a cluster re-read them.
constexpr const char* kNotifyFlows = "SELECT pg_notify('sluice_flows', '')";

}  // namespace

std::optional<pg::Rows> PgStore::Tx::run(const char* sql, const std::vector<pg::Param>& params,
                                         bool binary_result) {
  if (failure_) return std::nullopt;
  pg::Rows rows = conn_.exec(sql, params, binary_result);
  if (rows.ok()) return rows;
  sql_state_ = rows.sqlState();
  failure_ = pg::errorOf(rows, conn_, "");
  return std::nullopt;
}

bool PgStore::Tx::script(const char* sql) {
  if (failure_) return false;
  pg::Rows rows = conn_.script(sql);
  if (rows.ok()) return true;
  sql_state_ = rows.sqlState();
  failure_ = pg::errorOf(rows, conn_, "");
  return false;
}

Error PgStore::Tx::error(const std::string& what) const {
  if (!failure_) return Error{ErrorKind::kInternal, what, {}};
  Error e = *failure_;
  e.message = what + e.message;
  if (sql_state_ == "23505") e.kind = ErrorKind::kConflict;
  return e;
}

PgStore::Lease::~Lease() {
  if (!conn_) return;
  std::lock_guard lock(store_->pool_mu_);
  if (conn_->up()) {
    store_->idle_.push_back(std::move(conn_));
  } else {
    --store_->open_;
  }
  store_->pool_cv_.notify_one();
}

Result<PgStore::Lease> PgStore::acquire() {
  {
    std::unique_lock lock(pool_mu_);
    if (!pool_cv_.wait_for(lock, pg::Connection::kStatementTimeout,
                           [&] { return !idle_.empty() || open_ < max_; })) {
      return Error{ErrorKind::kUnavailable,
                   "all " + std::to_string(max_) + " connections to the store stayed busy for " +
                       std::to_string(pg::Connection::kStatementTimeout.count()) + " ms",
                   {}};
    }
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c));
    }
    ++open_;
  }
  auto opened = pg::Connection::open(url_);
  if (!opened.ok()) {
    std::lock_guard lock(pool_mu_);
    --open_;
    pool_cv_.notify_one();
    return opened.error();
  }
  return Lease(this, std::move(opened.value()));
}

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& url, size_t connections) {
  std::unique_ptr<PgStore> store(new PgStore(url, connections < 1 ? 1 : connections));
  if (auto migrated = store->migrate(); !migrated.ok()) return migrated.error();
  // State of incarnations no longer stored (a flow deleted while its node crashed).
  auto cleaned = store->single(
      "cannot clean plugin state",
      "DELETE FROM plugin_state WHERE incarnation NOT IN (SELECT seq FROM flows)", {});
  if (!cleaned.ok()) return cleaned.error();
  PgStore* self = store.get();
  store->listener_ = std::make_unique<pg::Listener>(
      url, std::vector<std::string>{"sluice_tokens"},
      [self](const std::string&, const std::string&) { ++self->token_changes_; },
      [self] { ++self->token_changes_; });
  // Token changes committed after open() returns must be heard of.
  if (!store->listener_->waitListening(std::chrono::seconds(5))) {
    spdlog::warn(
        "store notifications are not set up yet: token changes of other processes may "
        "be seen late");
  }
  return store;
}

PgStore::~PgStore() { listener_.reset(); }

Result<Done> PgStore::migrate() {
  int current = 0;
  auto done = inTransaction("cannot migrate the schema: ", nullptr, [&](Tx& tx) {
    tx.run(kMigrationLock);
    tx.run(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
        "NULL, applied_ms BIGINT NOT NULL)");
    auto rows = tx.run("SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!rows) return false;
    current = static_cast<int>(rows->int64(0, 0));
    if (current > latestSchemaVersion()) return false;
    for (const auto& m : schemaMigrations()) {
      if (m.version <= current) continue;
      if (m.postgres != nullptr) tx.script(m.postgres);
      tx.run(
          "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, "
          "(extract(epoch from now()) * 1000)::bigint)",
          {int64_t{m.version}, m.name});
    }
    return !tx.failed();
  });
  if (current > latestSchemaVersion()) {
    return Error{ErrorKind::kInternal,
                 "the database has schema version " + std::to_string(current) +
                     ", newer than this build's " + std::to_string(latestSchemaVersion()) +
                     ": run a newer sluice",
                 {}};
  }
  return done;
}

Result<Done> PgStore::inTransaction(const char* what, AuditRecord* audit,
                                    const std::function<bool(Tx&)>& body) {
  auto lease = acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = *lease.value();
  const auto began = std::chrono::steady_clock::now();
  pg::Rows begin = conn.exec("BEGIN");
  if (!begin.ok() && !conn.up() && conn.ensureUp()) begin = conn.exec("BEGIN");
  if (!begin.ok()) return pg::errorOf(begin, conn, std::string(what) + "cannot begin");
  Tx tx(conn);
  const bool ok = body(tx) && (audit == nullptr || insertAudit(tx, audit->entry));
  if (!ok || tx.failed()) {
    Error e = tx.error(what);
    conn.exec("ROLLBACK");
    return e;
  }
  pg::Rows commit = conn.exec("COMMIT");
  if (!commit.ok()) return pg::errorOf(commit, conn, std::string(what) + "cannot commit");
  commit_durations_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  if (audit != nullptr) audit->written = true;
  return Done{};
}

Result<pg::Rows> PgStore::single(const char* what, const char* sql,
                                 const std::vector<pg::Param>& params, bool binary_result,
                                 bool retry) {
  auto lease = acquire();
  if (!lease.ok()) return lease.error();
  pg::Connection& conn = *lease.value();
  pg::Rows rows = conn.exec(sql, params, binary_result);
  if (retry && !rows.ok() && !conn.up() && conn.ensureUp()) {
    rows = conn.exec(sql, params, binary_result);
  }
  if (!rows.ok()) return pg::errorOf(rows, conn, what);
  return rows;
}

Result<std::vector<StoredFlow>> PgStore::loadAll() {
  auto rows =
      single("cannot read flows",
             "SELECT flow_id, record, desired, seq, type_version, runs, last_run FROM flows "
             "ORDER BY seq",
             {});
  if (!rows.ok()) return rows.error();
  std::vector<StoredFlow> out;
  const pg::Rows& r = rows.value();
  out.reserve(static_cast<size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    StoredFlow f;
    f.id = r.text(i, 0);
    f.record_json = r.text(i, 1);
    f.desired = desiredFromString(r.text(i, 2)).value_or(Desired::kStopped);
    f.incarnation = static_cast<Incarnation>(r.int64(i, 3));
    f.type_version = r.text(i, 4);
    f.runs = static_cast<uint64_t>(r.int64(i, 5));
    f.last_run = r.text(i, 6);
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<Incarnation>> PgStore::insertFlows(const std::vector<StoredFlow>& flows,
                                                      AuditRecord* audit) {
  std::vector<Incarnation> incarnations;
  std::vector<std::string> ids, records, desired;
  for (const auto& f : flows) {
    ids.push_back(f.id);
    records.push_back(f.record_json);
    desired.emplace_back(toString(f.desired));
  }
  auto done = inTransaction("cannot insert flows: ", audit, [&](Tx& tx) {
    // One statement for the batch (10,000 round trips took 1.8 s); identities are assigned in
    // the arrays' order, which is the creation order.
    auto rows = tx.run(
        "INSERT INTO flows (flow_id, record, desired) SELECT * FROM unnest($1::text[], "
        "$2::text[], $3::text[]) RETURNING flow_id, seq",
        {pg::arrayLiteral(ids), pg::arrayLiteral(records), pg::arrayLiteral(desired)});
    if (!rows) return false;
    std::unordered_map<std::string, Incarnation> seq;
    for (int i = 0; i < rows->size(); ++i) {
      seq[rows->text(i, 0)] = static_cast<Incarnation>(rows->int64(i, 1));
    }
    for (const auto& id : ids) incarnations.push_back(seq[id]);
    return tx.run(kNotifyFlows).has_value();
  });
  if (!done.ok()) return done.error();
  return incarnations;
}

Result<Done> PgStore::updateFlow(const std::string& id, Incarnation inc,
                                 const std::string& record_json, AuditRecord* audit) {
  bool found = true;
  auto done = inTransaction("cannot update flow: ", audit, [&](Tx& tx) {
    auto rows = tx.run("UPDATE flows SET record = $1 WHERE flow_id = $2 AND seq = $3",
                       {record_json, id, static_cast<int64_t>(inc)});
    if (!rows) return false;
    found = rows->affected() == 1;
    return found && tx.run(kNotifyFlows).has_value();
  });
  if (!found) return Error{ErrorKind::kNotFound, "flow '" + id + "' does not exist", {}};
  return done;
}

Result<Done> PgStore::deleteFlow(const std::string& id, AuditRecord* audit) {
  return inTransaction("cannot delete flow: ", audit, [&](Tx& tx) {
    return tx.run("DELETE FROM flows WHERE flow_id = $1", {id}).has_value() &&
           tx.run(kNotifyFlows).has_value();
  });
}

namespace {
// Multi-row writes of flows lock their rows in one order first: two of them at once (a stop of
// every flow while their run records are written) wait for each other instead of deadlocking.
// FOR NO KEY UPDATE is the lock their UPDATEs take anyway: it does not wait for the key-share
// locks that other nodes' foreign keys (flow_owners) hold on the same rows; FOR UPDATE would.
constexpr const char* kLockFlowsInOrder =
    "SELECT 1 FROM flows WHERE flow_id = ANY($1::text[]) ORDER BY flow_id FOR NO KEY UPDATE";
}  // namespace

Result<Done> PgStore::setRunRecords(const std::vector<RunRecordRow>& rows) {
  if (rows.empty()) return Done{};
  // Two statements in one transaction: the last run and the last type version of each flow
  // (later rows win), joined on id and incarnation.
  std::map<std::pair<std::string, Incarnation>, const RunRecordRow*> runs, versions;
  for (const auto& r : rows) {
    if (r.has_run) runs[{r.id, r.incarnation}] = &r;
    if (!r.type_version.empty()) versions[{r.id, r.incarnation}] = &r;
  }
  std::vector<std::string> ids, seqs, counts, records;
  for (const auto& [key, r] : runs) {
    ids.push_back(r->id);
    seqs.push_back(std::to_string(r->incarnation));
    counts.push_back(std::to_string(r->runs));
    records.push_back(r->last_run);
  }
  std::vector<std::string> version_ids, version_seqs, version_texts;
  for (const auto& [key, r] : versions) {
    version_ids.push_back(r->id);
    version_seqs.push_back(std::to_string(r->incarnation));
    version_texts.push_back(r->type_version);
  }
  std::vector<std::string> all_ids = ids;
  all_ids.insert(all_ids.end(), version_ids.begin(), version_ids.end());
  return inTransaction("cannot record the flows' runs: ", nullptr, [&](Tx& tx) {
    if (!tx.run(kLockFlowsInOrder, {pg::arrayLiteral(all_ids)})) return false;
    if (!ids.empty() &&
        !tx.run("UPDATE flows f SET runs = u.runs, last_run = u.last_run FROM "
                "unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS "
                "u(id, seq, runs, last_run) WHERE f.flow_id = u.id AND f.seq = u.seq",
                {pg::arrayLiteral(ids), pg::arrayLiteral(seqs, false),
                 pg::arrayLiteral(counts, false), pg::arrayLiteral(records)})) {
      return false;
    }
    return version_ids.empty() ||
           tx.run(
                 "UPDATE flows f SET type_version = u.v FROM unnest($1::text[], $2::bigint[], "
                 "$3::text[]) AS u(id, seq, v) WHERE f.flow_id = u.id AND f.seq = u.seq",
                 {pg::arrayLiteral(version_ids), pg::arrayLiteral(version_seqs, false),
                  pg::arrayLiteral(version_texts)})
               .has_value();
  });
}

Result<Done> PgStore::deleteState(Incarnation inc) {
  auto rows = single("cannot delete state", "DELETE FROM plugin_state WHERE incarnation = $1",
                     {static_cast<int64_t>(inc)});
  if (!rows.ok()) return rows.error();
  return Done{};
}

Result<Done> PgStore::setDesired(const std::vector<DesiredRow>& states, AuditRecord* audit) {
  if (states.empty() && audit == nullptr) return Done{};
  std::vector<std::string> ids, desired;
  for (const auto& row : states) {
    ids.push_back(row.id);
    desired.emplace_back(toString(row.desired));
  }
  return inTransaction("cannot set desired states: ", audit, [&](Tx& tx) {
    if (!ids.empty() && !tx.run(kLockFlowsInOrder, {pg::arrayLiteral(ids)})) return false;
    if (!ids.empty() &&
        !tx.run("UPDATE flows f SET desired = u.d FROM unnest($1::text[], $2::text[]) AS u(id, d) "
                "WHERE f.flow_id = u.id",
                {pg::arrayLiteral(ids), pg::arrayLiteral(desired)})) {
      return false;
    }
    return tx.run(kNotifyFlows).has_value();
  });
}

Result<std::optional<std::string>> PgStore::stateGet(Incarnation inc, const std::string& key) {
  auto rows = single("cannot read state",
                     "SELECT value FROM plugin_state WHERE incarnation = $1 AND key = $2",
                     {static_cast<int64_t>(inc), key}, /*binary_result=*/true);
  if (!rows.ok()) return rows.error();
  if (rows.value().size() == 0) return std::optional<std::string>();
  return std::optional<std::string>(rows.value().text(0, 0));
}

namespace {

Error staleClaim(Incarnation inc, const std::pair<std::string, uint64_t>& claim) {
  return Error{ErrorKind::kConflict,
               "state write refused: node '" + claim.first + "' holds no current claim on flow " +
                   "incarnation " + std::to_string(inc) +
                   (claim.second == 0 ? std::string(" (not claimed)")
                                      : " at epoch " + std::to_string(claim.second)) +
                   ": the flow is owned elsewhere now",
               {}};
}

}  // namespace

Result<Done> PgStore::statePut(Incarnation inc, const std::string& key, const std::string& value) {
  if (auto claim = claimFor(inc)) {
    // In a cluster: only while this node's claim is current, with the owner's epoch; the
    // database refuses a node that was paused or cut off once the flow moved on.
    auto rows = single("cannot write state",
                       "INSERT INTO plugin_state (incarnation, key, value) "
                       "SELECT $1::bigint, $2::text, $3::bytea WHERE EXISTS (SELECT 1 FROM flows "
                       "f JOIN flow_owners o USING (flow_id) WHERE f.seq = $1::bigint AND "
                       "o.active_node = $4 AND o.epoch = $5::bigint) "
                       "ON CONFLICT (incarnation, key) DO UPDATE SET value = excluded.value",
                       {static_cast<int64_t>(inc), key, pg::Param::bytes(value), claim->first,
                        static_cast<int64_t>(claim->second)});
    if (!rows.ok()) return rows.error();
    if (rows.value().affected() == 0) return staleClaim(inc, *claim);
    return Done{};
  }
  // Only for an incarnation still stored: plugin code of a deleted flow writes nothing.
  auto rows = single("cannot write state",
                     "INSERT INTO plugin_state (incarnation, key, value) "
                     "SELECT $1::bigint, $2::text, $3::bytea "
                     "WHERE EXISTS (SELECT 1 FROM flows WHERE seq = $1::bigint) "
                     "ON CONFLICT (incarnation, key) DO UPDATE SET value = excluded.value",
                     {static_cast<int64_t>(inc), key, pg::Param::bytes(value)});
  if (!rows.ok()) return rows.error();
  return Done{};
}

Result<Done> PgStore::stateDelete(Incarnation inc, const std::string& key) {
  if (auto claim = claimFor(inc)) {
    auto rows =
        single("cannot check the claim",
               "SELECT 1 FROM flows f JOIN flow_owners o USING (flow_id) WHERE f.seq = "
               "$1::bigint AND o.active_node = $2 AND o.epoch = $3::bigint",
               {static_cast<int64_t>(inc), claim->first, static_cast<int64_t>(claim->second)});
    if (!rows.ok()) return rows.error();
    if (rows.value().size() == 0) return staleClaim(inc, *claim);
    auto deleted = single(
        "cannot delete state",
        "DELETE FROM plugin_state p WHERE p.incarnation = $1 AND p.key = $2 AND EXISTS (SELECT 1 "
        "FROM flows f JOIN flow_owners o USING (flow_id) WHERE f.seq = $1 AND o.active_node = $3 "
        "AND o.epoch = $4::bigint)",
        {static_cast<int64_t>(inc), key, claim->first, static_cast<int64_t>(claim->second)});
    if (!deleted.ok()) return deleted.error();
    return Done{};
  }
  auto rows =
      single("cannot delete state", "DELETE FROM plugin_state WHERE incarnation = $1 AND key = $2",
             {static_cast<int64_t>(inc), key});
  if (!rows.ok()) return rows.error();
  return Done{};
}

}  // namespace sluice
