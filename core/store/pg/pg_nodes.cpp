// The PgStore's cluster membership: node leases on the database's clock, and leadership as a
// session advisory lock.
#include "core/store/pg/pg_store.hpp"

namespace sluice {

namespace {

constexpr const char* kLeaderLock = "7405183020";

constexpr const char* kNodeColumns =
    "node_id, url, started_ms, (extract(epoch from heartbeat_at) * 1000)::bigint, "
    "(extract(epoch from lease_until) * 1000)::bigint, leader, lease_until > now()";

}  // namespace

Result<pg::Connection*> PgStore::memberConnection(int64_t ttl_ms) {
  if (member_conn_ && member_conn_->up()) return member_conn_.get();
  leading_ = false;  // a lock held, if any, went with the old session
  member_conn_.reset();
  auto opened = pg::Connection::open(url_);
  if (!opened.ok()) return opened.error();
  // The server ends this session once it is idle for 2/3 of the TTL (renewals come every
  // third): the leadership of a node that froze or was cut off is free again within that.
  const std::string idle = "SET idle_session_timeout = '" + std::to_string(ttl_ms * 2 / 3) + "ms'";
  pg::Rows set = opened.value()->exec(idle.c_str());
  if (!set.ok()) return pg::errorOf(set, *opened.value(), "cannot set the session's idle bound");
  member_conn_ = std::move(opened.value());
  return member_conn_.get();
}

Result<int64_t> PgStore::renewNodeLease(const std::string& node_id, const std::string& url,
                                        int64_t started_ms, int64_t ttl_ms, bool leader) {
  std::lock_guard lock(member_mu_);
  // Twice at most: the server may have ended an idle session (idle_session_timeout), which
  // only shows on its next use.
  for (int attempt = 0;; ++attempt) {
    auto conn = memberConnection(ttl_ms);
    if (!conn.ok()) return conn.error();
    pg::Rows rows = renewOn(*conn.value(), node_id, url, started_ms, ttl_ms, leader);
    if (rows.ok()) return rows.int64(0, 0);
    if (conn.value()->up() || attempt == 1) {
      return pg::errorOf(rows, *conn.value(), "cannot renew the node's lease");
    }
  }
}

pg::Rows PgStore::renewOn(pg::Connection& conn, const std::string& node_id, const std::string& url,
                          int64_t started_ms, int64_t ttl_ms, bool leader) {
  return conn.exec(
      "INSERT INTO nodes (node_id, url, started_ms, heartbeat_at, lease_until, leader) "
      "VALUES ($1, $2, $3, now(), now() + $4::bigint * interval '1 millisecond', $5) "
      "ON CONFLICT (node_id) DO UPDATE SET url = excluded.url, started_ms = excluded.started_ms, "
      "heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until, "
      "leader = excluded.leader "
      "RETURNING (extract(epoch from lease_until) * 1000)::bigint",
      {node_id, url, started_ms, ttl_ms, leader ? "true" : "false"});
}

Result<std::vector<NodeRecord>> PgStore::listNodes() {
  const std::string sql = std::string("SELECT ") + kNodeColumns + " FROM nodes ORDER BY node_id";
  auto rows = single("cannot read the cluster's nodes", sql.c_str(), {});
  if (!rows.ok()) return rows.error();
  const pg::Rows& r = rows.value();
  std::vector<NodeRecord> out;
  for (int i = 0; i < r.size(); ++i) {
    out.push_back({r.text(i, 0), r.text(i, 1), r.int64(i, 2), r.int64(i, 3), r.int64(i, 4),
                   r.text(i, 5) == "t", r.text(i, 6) == "t"});
  }
  return out;
}

Result<Done> PgStore::leaveCluster(const std::string& node_id) {
  return inTransaction("cannot remove the node: ", nullptr, [&](Tx& tx) {
    return tx.run("DELETE FROM nodes WHERE node_id = $1", {node_id}).has_value() &&
           tx.run("SELECT pg_notify('sluice_nodes', '')").has_value();
  });
}

Result<bool> PgStore::holdLeadership(int64_t ttl_ms) {
  std::lock_guard lock(member_mu_);
  auto conn = memberConnection(ttl_ms);
  if (!conn.ok()) return conn.error();
  if (leading_) {
    // Held while the session lives: check that it still does.
    if (conn.value()->exec("SELECT 1").ok()) return true;
    leading_ = false;
    member_conn_.reset();
    return false;
  }
  const std::string sql = std::string("SELECT pg_try_advisory_lock(") + kLeaderLock + ")";
  pg::Rows rows = conn.value()->exec(sql.c_str());
  if (!rows.ok()) return pg::errorOf(rows, *conn.value(), "cannot try the leadership lock");
  leading_ = rows.text(0, 0) == "t";
  return leading_;
}

}  // namespace sluice
