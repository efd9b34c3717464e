// The PgStore's schema versions, and its whole contents as one snapshot (sluice migrate).
#include <map>

#include "core/store/pg/pg_store.hpp"

namespace sluice {

Result<std::vector<SchemaVersion>> PgStore::schemaHistory() {
  auto rows = single("cannot read the schema versions",
                     "SELECT version, name FROM schema_migrations ORDER BY version", {});
  if (!rows.ok()) return rows.error();
  std::vector<SchemaVersion> out;
  for (int i = 0; i < rows.value().size(); ++i) {
    out.push_back({static_cast<int>(rows.value().int64(i, 0)), rows.value().text(i, 1)});
  }
  return out;
}

Result<StoreSnapshot> PgStore::exportAll() {
  StoreSnapshot snap;
  auto done = inTransaction("cannot export: ", nullptr, [&](Tx& tx) {
    // One consistent view of every table.
    tx.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
    auto flows = tx.run(
        "SELECT flow_id, record, desired, seq, type_version, runs, last_run FROM flows "
        "ORDER BY seq");
    auto tokens = tx.run(
        "SELECT name, role, hash, created_ms, expires_ms, revoked_ms FROM tokens ORDER BY id");
    auto audit = tx.run(
        "SELECT time_ms, token, role, remote, method, path, flow_ids, status, error, detail "
        "FROM audit ORDER BY seq");
    auto sequences = tx.run("SELECT name, next FROM sequences ORDER BY name");
    auto state = tx.run(
        "SELECT incarnation, key, value FROM plugin_state WHERE incarnation IN (SELECT seq FROM "
        "flows) ORDER BY incarnation, key",
        {}, true);
    if (tx.failed()) return false;
    for (int i = 0; i < flows->size(); ++i) {
      snap.flows.push_back({flows->text(i, 0), flows->text(i, 1),
                            desiredFromString(flows->text(i, 2)).value_or(Desired::kStopped),
                            static_cast<Incarnation>(flows->int64(i, 3)), flows->text(i, 4),
                            static_cast<uint64_t>(flows->int64(i, 5)), flows->text(i, 6)});
    }
    for (int i = 0; i < tokens->size(); ++i) {
      TokenRecord t{tokens->text(i, 0),  tokens->text(i, 1), tokens->text(i, 2),
                    tokens->int64(i, 3), std::nullopt,       std::nullopt};
      if (!tokens->isNull(i, 4)) t.expires_ms = tokens->int64(i, 4);
      if (!tokens->isNull(i, 5)) t.revoked_ms = tokens->int64(i, 5);
      snap.tokens.push_back(std::move(t));
    }
    for (int i = 0; i < audit->size(); ++i) {
      AuditEntry e;
      e.time_ms = audit->int64(i, 0);
      e.token = audit->text(i, 1);
      e.role = audit->text(i, 2);
      e.remote = audit->text(i, 3);
      e.method = audit->text(i, 4);
      e.path = audit->text(i, 5);
      e.flow_ids = auditIdsFromJson(audit->text(i, 6));
      e.status = static_cast<int>(audit->int64(i, 7));
      e.error = audit->text(i, 8);
      e.detail = audit->text(i, 9);
      snap.audit.push_back(std::move(e));
    }
    for (int i = 0; i < sequences->size(); ++i) {
      snap.sequences.emplace_back(sequences->text(i, 0),
                                  static_cast<uint64_t>(sequences->int64(i, 1)));
    }
    // Binary columns: the incarnation is a big-endian int8.
    for (int i = 0; i < state->size(); ++i) {
      const std::string raw = state->text(i, 0);
      uint64_t inc = 0;
      for (unsigned char c : raw) inc = (inc << 8) | c;
      snap.state.push_back({static_cast<Incarnation>(inc), state->text(i, 1), state->text(i, 2)});
    }
    return true;
  });
  if (!done.ok()) return done.error();
  return snap;
}

Result<Done> PgStore::importAll(const StoreSnapshot& snap) {
  bool occupied = false;
  auto done = inTransaction("cannot import: ", nullptr, [&](Tx& tx) {
    tx.run("LOCK TABLE flows, tokens IN EXCLUSIVE MODE");
    auto count = tx.run("SELECT (SELECT count(*) FROM flows) + (SELECT count(*) FROM tokens)");
    if (!count) return false;
    if (count->int64(0, 0) > 0) {
      occupied = true;
      return false;
    }
    std::map<Incarnation, Incarnation> renamed;
    for (const auto& f : snap.flows) {
      auto rows = tx.run(
          "INSERT INTO flows (flow_id, record, desired, type_version, runs, last_run) VALUES "
          "($1, $2, $3, $4, $5, $6) RETURNING seq",
          {f.id, f.record_json, std::string(toString(f.desired)), f.type_version,
           static_cast<int64_t>(f.runs), f.last_run});
      if (!rows) return false;
      renamed[f.incarnation] = static_cast<Incarnation>(rows->int64(0, 0));
    }
    for (const auto& r : snap.state) {
      auto to = renamed.find(r.incarnation);
      if (to == renamed.end()) continue;  // state of a deleted flow
      tx.run("INSERT INTO plugin_state (incarnation, key, value) VALUES ($1, $2, $3)",
             {static_cast<int64_t>(to->second), r.key, pg::Param::bytes(r.value)});
    }
    for (const auto& t : snap.tokens) {
      tx.run(
          "INSERT INTO tokens (name, role, hash, created_ms, expires_ms, revoked_ms) VALUES ($1, "
          "$2, $3, $4, $5, $6)",
          {t.name, t.role, t.hash, t.created_ms,
           t.expires_ms ? pg::Param(*t.expires_ms) : pg::Param(),
           t.revoked_ms ? pg::Param(*t.revoked_ms) : pg::Param()});
    }
    for (const auto& e : snap.audit) {
      if (!insertAudit(tx, e)) return false;
    }
    for (const auto& [name, next] : snap.sequences) {
      tx.run(
          "INSERT INTO sequences (name, next) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET "
          "next = greatest(sequences.next, excluded.next)",
          {name, static_cast<int64_t>(next)});
    }
    tx.run("SELECT pg_notify('sluice_tokens', '')");
    return !tx.failed();
  });
  if (occupied) {
    return Error{ErrorKind::kConflict, "the destination store already holds flows or tokens", {}};
  }
  if (done.ok()) ++token_changes_;
  return done;
}

}  // namespace sluice
