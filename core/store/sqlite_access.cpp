// The SqliteStore's tables for access control: tokens (hashes only) and the audit log.
#include <sqlite3.h>

#include "core/store/sqlite_statement.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice {

bool SqliteStore::insertAudit(const AuditEntry& e) {
  Statement st(db_,
               "INSERT INTO audit (time_ms, token, role, remote, method, path, flow_ids, status, "
               "error, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return false;
  st.bindInt64(1, e.time_ms);
  st.bind(2, e.token);
  st.bind(3, e.role);
  st.bind(4, e.remote);
  st.bind(5, e.method);
  st.bind(6, e.path);
  st.bind(7, auditIdsToJson(e.flow_ids));
  st.bindInt64(8, e.status);
  st.bind(9, e.error);
  st.bind(10, e.detail);
  return st.step() == SQLITE_DONE;
}

Result<uint64_t> SqliteStore::appendAudit(const AuditEntry& entry) {
  std::lock_guard lock(mu_);
  // Autocommit: one durable transaction (synchronous=FULL).
  if (!insertAudit(entry)) return sqlError("cannot append to the audit log");
  return static_cast<uint64_t>(sqlite3_last_insert_rowid(db_));
}

Result<std::vector<AuditEntry>> SqliteStore::listAudit(uint64_t after, size_t limit) {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "SELECT seq, time_ms, token, role, remote, method, path, flow_ids, status, error, "
               "detail FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");
  if (!st.ok()) return sqlError("cannot read the audit log");
  st.bindInt(1, after);
  st.bindInt(2, limit);
  std::vector<AuditEntry> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    AuditEntry e;
    e.seq = static_cast<uint64_t>(st.int64(0));
    e.time_ms = st.int64(1);
    e.token = st.text(2);
    e.role = st.text(3);
    e.remote = st.text(4);
    e.method = st.text(5);
    e.path = st.text(6);
    e.flow_ids = auditIdsFromJson(st.text(7));
    e.status = static_cast<int>(st.int64(8));
    e.error = st.text(9);
    e.detail = st.text(10);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return sqlError("cannot read the audit log");
  return out;
}

Result<uint64_t> SqliteStore::pruneAudit(int64_t before_ms) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM audit WHERE time_ms < ?");
  if (!st.ok()) return sqlError("cannot prune the audit log");
  st.bindInt64(1, before_ms);
  if (st.step() != SQLITE_DONE) return sqlError("cannot prune the audit log");
  return static_cast<uint64_t>(sqlite3_changes(db_));
}

Result<std::vector<TokenRecord>> SqliteStore::loadTokens() {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "SELECT name, role, hash, created_ms, expires_ms, revoked_ms FROM tokens ORDER BY "
               "id");
  if (!st.ok()) return sqlError("cannot read tokens");
  std::vector<TokenRecord> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    TokenRecord t;
    t.name = st.text(0);
    t.role = st.text(1);
    t.hash = st.text(2);
    t.created_ms = st.int64(3);
    if (!st.isNull(4)) t.expires_ms = st.int64(4);
    if (!st.isNull(5)) t.revoked_ms = st.int64(5);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return sqlError("cannot read tokens");
  return out;
}

Result<Done> SqliteStore::insertToken(const TokenRecord& t, AuditRecord* audit) {
  std::lock_guard lock(mu_);
  bool taken = false;
  auto done = inTransaction("cannot store the token", audit, [&] {
    Statement st(db_,
                 "INSERT INTO tokens (name, role, hash, created_ms, expires_ms) VALUES (?, ?, ?, "
                 "?, ?)");
    if (!st.ok()) return false;
    st.bind(1, t.name);
    st.bind(2, t.role);
    st.bind(3, t.hash);
    st.bindInt64(4, t.created_ms);
    if (t.expires_ms) {
      st.bindInt64(5, *t.expires_ms);
    } else {
      st.bindNull(5);
    }
    const int rc = st.step();
    taken = (sqlite3_extended_errcode(db_) & 0xff) == SQLITE_CONSTRAINT;
    return rc == SQLITE_DONE;
  });
  if (!done.ok() && taken) {
    return Error{ErrorKind::kConflict, "a token named '" + t.name + "' already exists", {}};
  }
  if (done.ok()) token_changes_->bump();
  return done;
}

Result<Done> SqliteStore::revokeToken(const std::string& name, int64_t now_ms, AuditRecord* audit) {
  std::lock_guard lock(mu_);
  bool found = true;
  auto done = inTransaction("cannot revoke the token", audit, [&] {
    Statement st(db_, "UPDATE tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL");
    if (!st.ok()) return false;
    st.bindInt64(1, now_ms);
    st.bind(2, name);
    if (st.step() != SQLITE_DONE) return false;
    found = sqlite3_changes(db_) > 0;
    return found;
  });
  if (!found) return Error{ErrorKind::kNotFound, "no token named '" + name + "'", {}};
  if (done.ok()) token_changes_->bump();
  return done;
}

Result<uint64_t> SqliteStore::externalChanges() { return token_changes_->load(); }

}  // namespace sluice
