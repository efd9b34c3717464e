// The PgStore's tables for access control (tokens, the audit log), its sequences and its probe.
#include "core/store/pg/pg_store.hpp"

namespace sluice {

namespace {

constexpr const char* kNotifyTokens = "SELECT pg_notify('sluice_tokens', '')";

pg::Param optionalInt(const std::optional<int64_t>& v) { return v ? pg::Param(*v) : pg::Param(); }

}  // namespace

bool PgStore::insertAudit(Tx& tx, const AuditEntry& e) {
  return tx
      .run(
          "INSERT INTO audit (time_ms, token, role, remote, method, path, flow_ids, status, "
          "error, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
          {e.time_ms, e.token, e.role, e.remote, e.method, e.path, auditIdsToJson(e.flow_ids),
           int64_t{e.status}, e.error, e.detail})
      .has_value();
}

Result<uint64_t> PgStore::appendAudit(const AuditEntry& e) {
  auto rows = single("cannot append to the audit log",
                     "INSERT INTO audit (time_ms, token, role, remote, method, path, flow_ids, "
                     "status, error, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                     "RETURNING seq",
                     {e.time_ms, e.token, e.role, e.remote, e.method, e.path,
                      auditIdsToJson(e.flow_ids), int64_t{e.status}, e.error, e.detail},
                     /*binary_result=*/false, /*retry=*/false);  // never two entries for one
  if (!rows.ok()) return rows.error();
  return static_cast<uint64_t>(rows.value().int64(0, 0));
}

Result<std::vector<AuditEntry>> PgStore::listAudit(uint64_t after, size_t limit) {
  auto rows = single("cannot read the audit log",
                     "SELECT seq, time_ms, token, role, remote, method, path, flow_ids, status, "
                     "error, detail FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                     {static_cast<int64_t>(after), static_cast<int64_t>(limit)});
  if (!rows.ok()) return rows.error();
  const pg::Rows& r = rows.value();
  std::vector<AuditEntry> out;
  for (int i = 0; i < r.size(); ++i) {
    AuditEntry e;
    e.seq = static_cast<uint64_t>(r.int64(i, 0));
    e.time_ms = r.int64(i, 1);
    e.token = r.text(i, 2);
    e.role = r.text(i, 3);
    e.remote = r.text(i, 4);
    e.method = r.text(i, 5);
    e.path = r.text(i, 6);
    e.flow_ids = auditIdsFromJson(r.text(i, 7));
    e.status = static_cast<int>(r.int64(i, 8));
    e.error = r.text(i, 9);
    e.detail = r.text(i, 10);
    out.push_back(std::move(e));
  }
  return out;
}

Result<uint64_t> PgStore::pruneAudit(int64_t before_ms) {
  auto rows =
      single("cannot prune the audit log", "DELETE FROM audit WHERE time_ms < $1", {before_ms});
  if (!rows.ok()) return rows.error();
  return rows.value().affected();
}

Result<std::vector<TokenRecord>> PgStore::loadTokens() {
  auto rows = single("cannot read tokens",
                     "SELECT name, role, hash, created_ms, expires_ms, revoked_ms FROM tokens "
                     "ORDER BY id",
                     {});
  if (!rows.ok()) return rows.error();
  const pg::Rows& r = rows.value();
  std::vector<TokenRecord> out;
  for (int i = 0; i < r.size(); ++i) {
    TokenRecord t;
    t.name = r.text(i, 0);
    t.role = r.text(i, 1);
    t.hash = r.text(i, 2);
    t.created_ms = r.int64(i, 3);
    if (!r.isNull(i, 4)) t.expires_ms = r.int64(i, 4);
    if (!r.isNull(i, 5)) t.revoked_ms = r.int64(i, 5);
    out.push_back(std::move(t));
  }
  return out;
}

Result<Done> PgStore::insertToken(const TokenRecord& t, AuditRecord* audit) {
  auto done = inTransaction("cannot store the token: ", audit, [&](Tx& tx) {
    tx.run(
        "INSERT INTO tokens (name, role, hash, created_ms, expires_ms) VALUES ($1, $2, $3, "
        "$4, $5)",
        {t.name, t.role, t.hash, t.created_ms, optionalInt(t.expires_ms)});
    return tx.run(kNotifyTokens).has_value();
  });
  if (!done.ok() && done.error().kind == ErrorKind::kConflict) {
    return Error{ErrorKind::kConflict, "a token named '" + t.name + "' already exists", {}};
  }
  if (done.ok()) ++token_changes_;
  return done;
}

Result<Done> PgStore::revokeToken(const std::string& name, int64_t now_ms, AuditRecord* audit) {
  bool found = true;
  auto done = inTransaction("cannot revoke the token: ", audit, [&](Tx& tx) {
    auto rows = tx.run("UPDATE tokens SET revoked_ms = $1 WHERE name = $2 AND revoked_ms IS NULL",
                       {now_ms, name});
    if (!rows) return false;
    found = rows->affected() > 0;
    return found && tx.run(kNotifyTokens).has_value();
  });
  if (!found) return Error{ErrorKind::kNotFound, "no token named '" + name + "'", {}};
  if (done.ok()) ++token_changes_;
  return done;
}

Result<uint64_t> PgStore::externalChanges() { return token_changes_.load(); }

Result<uint64_t> PgStore::reserveSequence(const std::string& name, uint64_t count) {
  uint64_t first = 1;
  auto done = inTransaction("cannot reserve sequence numbers: ", nullptr, [&](Tx& tx) {
    auto rows = tx.run(
        "INSERT INTO sequences (name, next) VALUES ($1, 1 + $2::bigint) ON CONFLICT (name) DO "
        "UPDATE SET next = sequences.next + $2::bigint RETURNING next - $2::bigint",
        {name, static_cast<int64_t>(count)});
    if (!rows) return false;
    first = static_cast<uint64_t>(rows->int64(0, 0));
    return true;
  });
  if (!done.ok()) return done.error();
  return first;
}

Result<Done> PgStore::checkWritable() {
  auto rows = single("the store cannot be reached", "SELECT pg_is_in_recovery()", {});
  if (!rows.ok()) return rows.error();
  if (rows.value().text(0, 0) == "t") {
    return Error{ErrorKind::kUnavailable, "the PostgreSQL server is a read-only standby", {}};
  }
  return Done{};
}

}  // namespace sluice
