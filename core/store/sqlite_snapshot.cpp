// The SqliteStore's schema versions, and its whole contents as one snapshot (sluice migrate).
#include <sqlite3.h>

#include <chrono>
#include <map>

#include "core/model/wall_clock.hpp"
#include "core/store/migrations.hpp"
#include "core/store/sqlite_statement.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice {

Result<Done> SqliteStore::migrate() {
  std::lock_guard lock(mu_);
  if (!exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name "
            "TEXT NOT NULL, applied_ms INTEGER NOT NULL)")) {
    return sqlError("cannot create the schema_migrations table");
  }
  // Each version in its own write transaction, which first reads what is applied: another
  // process opening the same file at once (the token CLI, a second server) applies it once.
  for (const auto& m : schemaMigrations()) {
    int current = 0;
    auto done = inTransaction("cannot apply schema version", nullptr, [&] {
      Statement st(db_, "SELECT coalesce(max(version), 0) FROM schema_migrations");
      if (!st.ok() || st.step() != SQLITE_ROW) return false;
      current = static_cast<int>(st.int64(0));
      if (current >= m.version) return true;
      if (!exec(m.sqlite)) return false;
      Statement add(db_,
                    "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)");
      add.bindInt64(1, m.version);
      add.bind(2, m.name);
      add.bindInt64(3, wallClockMs());
      return add.step() == SQLITE_DONE;
    });
    if (!done.ok()) return done.error();
    if (current > latestSchemaVersion()) {
      return Error{ErrorKind::kInternal,
                   "the database has schema version " + std::to_string(current) +
                       ", newer than this build's " + std::to_string(latestSchemaVersion()) +
                       ": run a newer sluice",
                   {}};
    }
  }
  return Done{};
}

Result<std::vector<SchemaVersion>> SqliteStore::schemaHistory() {
  std::lock_guard lock(mu_);
  Statement st(db_, "SELECT version, name FROM schema_migrations ORDER BY version");
  if (!st.ok()) return sqlError("cannot read the schema versions");
  std::vector<SchemaVersion> out;
  while (st.step() == SQLITE_ROW) out.push_back({static_cast<int>(st.int64(0)), st.text(1)});
  return out;
}

Result<StoreSnapshot> SqliteStore::exportAll() {
  StoreSnapshot snap;
  auto flows = loadAll();
  if (!flows.ok()) return flows.error();
  snap.flows = std::move(flows.value());
  auto tokens = loadTokens();
  if (!tokens.ok()) return tokens.error();
  snap.tokens = std::move(tokens.value());
  for (uint64_t after = 0;;) {
    auto page = listAudit(after, 10000);
    if (!page.ok()) return page.error();
    if (page.value().empty()) break;
    after = page.value().back().seq;
    for (auto& e : page.value()) snap.audit.push_back(std::move(e));
  }
  std::lock_guard lock(mu_);
  {
    Statement st(db_,
                 "SELECT incarnation, key, value FROM plugin_state WHERE incarnation IN "
                 "(SELECT seq FROM flows) ORDER BY incarnation, key");
    if (!st.ok()) return sqlError("cannot read plugin state");
    while (st.step() == SQLITE_ROW) {
      snap.state.push_back({static_cast<Incarnation>(st.int64(0)), st.text(1), st.text(2)});
    }
  }
  Statement st(db_, "SELECT name, next FROM sequences ORDER BY name");
  if (!st.ok()) return sqlError("cannot read sequences");
  while (st.step() == SQLITE_ROW) {
    snap.sequences.emplace_back(st.text(0), static_cast<uint64_t>(st.int64(1)));
  }
  return snap;
}

Result<Done> SqliteStore::importAll(const StoreSnapshot& snap) {
  std::lock_guard lock(mu_);
  bool occupied = false;
  auto done = inTransaction("cannot import", nullptr, [&] {
    Statement count(db_, "SELECT (SELECT count(*) FROM flows) + (SELECT count(*) FROM tokens)");
    if (!count.ok() || count.step() != SQLITE_ROW) return false;
    if (count.int64(0) > 0) {
      occupied = true;
      return false;
    }
    std::map<Incarnation, Incarnation> renamed;
    Statement flow(db_, "INSERT INTO flows (flow_id, record, desired) VALUES (?, ?, ?)");
    Statement runs(db_,
                   "INSERT INTO flow_runs (seq, runs, last_run, type_version) VALUES (?, ?, ?, ?)");
    for (const auto& f : snap.flows) {
      flow.bind(1, f.id);
      flow.bind(2, f.record_json);
      flow.bind(3, std::string(toString(f.desired)));
      if (flow.step() != SQLITE_DONE) return false;
      flow.reset();
      const auto seq = static_cast<Incarnation>(sqlite3_last_insert_rowid(db_));
      renamed[f.incarnation] = seq;
      runs.bindInt(1, seq);
      runs.bindInt(2, f.runs);
      runs.bind(3, f.last_run);
      runs.bind(4, f.type_version);
      if (runs.step() != SQLITE_DONE) return false;
      runs.reset();
    }
    Statement state(db_, "INSERT INTO plugin_state (incarnation, key, value) VALUES (?, ?, ?)");
    for (const auto& r : snap.state) {
      auto to = renamed.find(r.incarnation);
      if (to == renamed.end()) continue;  // state of a deleted flow
      state.bindInt(1, to->second);
      state.bind(2, r.key);
      state.bindBlob(3, r.value);
      if (state.step() != SQLITE_DONE) return false;
      state.reset();
    }
    Statement token(db_,
                    "INSERT INTO tokens (name, role, hash, created_ms, expires_ms, revoked_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?)");
    for (const auto& t : snap.tokens) {
      token.bind(1, t.name);
      token.bind(2, t.role);
      token.bind(3, t.hash);
      token.bindInt64(4, t.created_ms);
      t.expires_ms ? token.bindInt64(5, *t.expires_ms) : token.bindNull(5);
      t.revoked_ms ? token.bindInt64(6, *t.revoked_ms) : token.bindNull(6);
      if (token.step() != SQLITE_DONE) return false;
      token.reset();
    }
    for (const auto& e : snap.audit) {
      if (!insertAudit(e)) return false;
    }
    Statement seq(db_,
                  "INSERT INTO sequences (name, next) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                  "SET next = max(next, excluded.next)");
    for (const auto& [name, next] : snap.sequences) {
      seq.bind(1, name);
      seq.bindInt(2, next);
      if (seq.step() != SQLITE_DONE) return false;
      seq.reset();
    }
    return true;
  });
  if (occupied) {
    return Error{ErrorKind::kConflict, "the destination store already holds flows or tokens", {}};
  }
  if (done.ok()) token_changes_->bump();
  return done;
}

}  // namespace sluice
