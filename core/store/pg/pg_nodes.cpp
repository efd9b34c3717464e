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

Result<int64_t> PgStore::renewNodeLease(const std::string& node_id, const std::string& url,
                                        int64_t started_ms, int64_t ttl_ms, bool leader) {
  auto rows = single(
      "cannot renew the node's lease",
      "INSERT INTO nodes (node_id, url, started_ms, heartbeat_at, lease_until, leader) "
      "VALUES ($1, $2, $3, now(), now() + $4::bigint * interval '1 millisecond', $5) "
      "ON CONFLICT (node_id) DO UPDATE SET url = excluded.url, started_ms = excluded.started_ms, "
      "heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until, "
      "leader = excluded.leader "
      "RETURNING (extract(epoch from lease_until) * 1000)::bigint",
      {node_id, url, started_ms, ttl_ms, leader ? "true" : "false"});
  if (!rows.ok()) return rows.error();
  return rows.value().int64(0, 0);
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
  auto rows = single("cannot remove the node", "DELETE FROM nodes WHERE node_id = $1", {node_id});
  if (!rows.ok()) return rows.error();
  return Done{};
}

Result<bool> PgStore::holdLeadership() {
  std::lock_guard lock(leader_mu_);
  if (leader_conn_ && leading_) {
    // Still held while its session lives: check that it does.
    if (leader_conn_->exec("SELECT 1").ok()) return true;
    leading_ = false;  // the session died, and the lock with it
    leader_conn_.reset();
  }
  if (!leader_conn_ || !leader_conn_->up()) {
    auto opened = pg::Connection::open(url_);
    if (!opened.ok()) return opened.error();
    leader_conn_ = std::move(opened.value());
  }
  const std::string sql = std::string("SELECT pg_try_advisory_lock(") + kLeaderLock + ")";
  pg::Rows rows = leader_conn_->exec(sql.c_str());
  if (!rows.ok()) {
    Error e = pg::errorOf(rows, *leader_conn_, "cannot try the leadership lock");
    leader_conn_.reset();
    return e;
  }
  leading_ = rows.text(0, 0) == "t";
  return leading_;
}

}  // namespace sluice
