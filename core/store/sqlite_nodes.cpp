// The SqliteStore's cluster membership: one machine, so its clock is the store's, and its one
// node always leads.
#include <sqlite3.h>

#include <chrono>

#include "core/model/wall_clock.hpp"
#include "core/store/sqlite_statement.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice {

Result<int64_t> SqliteStore::renewNodeLease(const std::string& node_id, const std::string& url,
                                            int64_t started_ms, int64_t ttl_ms, bool leader) {
  std::lock_guard lock(mu_);
  const int64_t now = wallClockMs();
  Statement st(db_,
               "INSERT OR REPLACE INTO nodes (node_id, url, started_ms, heartbeat_ms, "
               "lease_until_ms, leader) VALUES (?, ?, ?, ?, ?, ?)");
  if (!st.ok()) return sqlError("cannot renew the node's lease");
  st.bind(1, node_id);
  st.bind(2, url);
  st.bindInt64(3, started_ms);
  st.bindInt64(4, now);
  st.bindInt64(5, now + ttl_ms);
  st.bindInt64(6, leader ? 1 : 0);
  if (st.step() != SQLITE_DONE) return sqlError("cannot renew the node's lease");
  return now + ttl_ms;
}

Result<std::vector<NodeRecord>> SqliteStore::listNodes() {
  std::lock_guard lock(mu_);
  Statement st(db_,
               "SELECT node_id, url, started_ms, heartbeat_ms, lease_until_ms, leader FROM nodes "
               "ORDER BY node_id");
  if (!st.ok()) return sqlError("cannot read the cluster's nodes");
  const int64_t now = wallClockMs();
  std::vector<NodeRecord> out;
  while (st.step() == SQLITE_ROW) {
    out.push_back({st.text(0), st.text(1), st.int64(2), st.int64(3), st.int64(4), st.int64(5) != 0,
                   st.int64(4) > now});
  }
  return out;
}

Result<Done> SqliteStore::leaveCluster(const std::string& node_id) {
  std::lock_guard lock(mu_);
  Statement st(db_, "DELETE FROM nodes WHERE node_id = ?");
  if (!st.ok()) return sqlError("cannot remove the node");
  st.bind(1, node_id);
  if (st.step() != SQLITE_DONE) return sqlError("cannot remove the node");
  return Done{};
}

Result<bool> SqliteStore::holdLeadership(int64_t) { return true; }

}  // namespace sluice
