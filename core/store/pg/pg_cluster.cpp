// The PgStore's part of the cluster protocol (core/store/cluster_store.hpp): flow ownership with
// fencing epochs, run claims, the shared status and the change notifications.
#include <spdlog/spdlog.h>

#include "core/store/pg/pg_store.hpp"

namespace sluice {

namespace {

constexpr const char* kNotifyOwners = "SELECT pg_notify('sluice_owners', '')";

class ListenerWatch final : public ClusterStore::Watch {
 public:
  explicit ListenerWatch(std::unique_ptr<pg::Listener> listener) : listener_(std::move(listener)) {}

 private:
  std::unique_ptr<pg::Listener> listener_;
};

}  // namespace

Result<std::vector<OwnerRow>> PgStore::listOwners() {
  auto rows =
      single("cannot read flow owners",
             "SELECT flow_id, node_id, epoch, coalesce(active_node, '') FROM flow_owners", {});
  if (!rows.ok()) return rows.error();
  const pg::Rows& r = rows.value();
  std::vector<OwnerRow> out;
  out.reserve(static_cast<size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    out.push_back({r.text(i, 0), r.text(i, 1), static_cast<uint64_t>(r.int64(i, 2)), r.text(i, 3)});
  }
  return out;
}

Result<Done> PgStore::assignOwners(
    const std::vector<std::pair<std::string, std::string>>& flow_to_node) {
  if (flow_to_node.empty()) return Done{};
  std::vector<std::string> flows, nodes;
  for (const auto& [flow, node] : flow_to_node) {
    flows.push_back(flow);
    nodes.push_back(node);
  }
  return inTransaction("cannot assign flow owners: ", nullptr, [&](Tx& tx) {
    // A new epoch only where the owner changes; a flow deleted meanwhile gets no row.
    tx.run(
        "INSERT INTO flow_owners (flow_id, node_id, epoch) "
        "SELECT u.f, u.n, nextval('owner_epochs') FROM unnest($1::text[], $2::text[]) AS u(f, n) "
        "WHERE EXISTS (SELECT 1 FROM flows WHERE flow_id = u.f) "
        "ON CONFLICT (flow_id) DO UPDATE SET node_id = excluded.node_id, epoch = excluded.epoch "
        "WHERE flow_owners.node_id <> excluded.node_id",
        {pg::arrayLiteral(flows), pg::arrayLiteral(nodes)});
    tx.run(kNotifyOwners);
    return !tx.failed();
  });
}

Result<std::vector<Claim>> PgStore::claimOwned(const std::string& node_id) {
  std::vector<Claim> claims;
  uint64_t generation;
  {
    std::lock_guard lock(claims_mu_);
    generation = claims_generation_;
  }
  auto done = inTransaction("cannot claim flows: ", nullptr, [&](Tx& tx) {
    // Only a node whose own lease is current claims, and only runs that no live node holds: the
    // previous owner keeps its claim until it stopped the flow (releaseClaim) or its lease ran
    // out, and a node fences itself (stops every flow) at half its lease.
    auto claimed = tx.run(
        "UPDATE flow_owners o SET active_node = $1, active_epoch = o.epoch "
        "WHERE o.node_id = $1 AND (o.active_node IS DISTINCT FROM $1 OR o.active_epoch <> o.epoch) "
        "AND EXISTS (SELECT 1 FROM nodes n WHERE n.node_id = $1 AND n.lease_until > now()) "
        "AND (o.active_node IS NULL OR o.active_node = $1 OR NOT EXISTS (SELECT 1 FROM nodes n "
        "WHERE n.node_id = o.active_node AND n.lease_until > now()))",
        {node_id});
    if (!claimed) return false;
    if (claimed->affected() > 0) tx.run(kNotifyOwners);
    auto rows = tx.run(
        "SELECT o.flow_id, f.seq, o.epoch FROM flow_owners o JOIN flows f USING (flow_id) "
        "WHERE o.node_id = $1 AND o.active_node = $1 AND o.active_epoch = o.epoch "
        "ORDER BY f.seq",
        {node_id});
    if (!rows) return false;
    for (int i = 0; i < rows->size(); ++i) {
      claims.push_back({rows->text(i, 0), static_cast<Incarnation>(rows->int64(i, 1)),
                        static_cast<uint64_t>(rows->int64(i, 2))});
    }
    return true;
  });
  if (!done.ok()) return done.error();
  std::lock_guard lock(claims_mu_);
  claim_node_ = node_id;
  // A fence (dropClaims) while the claims were read wins: no write passes until the next call.
  if (generation != claims_generation_) return claims;
  claims_.clear();
  for (const auto& c : claims) claims_[c.incarnation] = {c.flow_id, c.epoch};
  return claims;
}

Result<Done> PgStore::releaseClaims(const std::string& node_id, const std::vector<Claim>& claims) {
  if (claims.empty()) return Done{};
  std::vector<std::string> flows, epochs;
  {
    std::lock_guard lock(claims_mu_);
    for (const auto& c : claims) {
      flows.push_back(c.flow_id);
      epochs.push_back(std::to_string(c.epoch));
      for (auto it = claims_.begin(); it != claims_.end();) {
        it = it->second.first == c.flow_id && it->second.second == c.epoch ? claims_.erase(it)
                                                                           : std::next(it);
      }
    }
  }
  return inTransaction("cannot release claims: ", nullptr, [&](Tx& tx) {
    auto rows = tx.run(
        "UPDATE flow_owners o SET active_node = NULL FROM unnest($2::text[], $3::bigint[]) AS "
        "u(f, e) WHERE o.flow_id = u.f AND o.active_node = $1 AND o.active_epoch = u.e",
        {node_id, pg::arrayLiteral(flows), pg::arrayLiteral(epochs, false)});
    if (rows && rows->affected() > 0) tx.run(kNotifyOwners);
    return !tx.failed();
  });
}

void PgStore::dropClaims() {
  std::lock_guard lock(claims_mu_);
  ++claims_generation_;
  claims_.clear();
}

std::optional<std::pair<std::string, uint64_t>> PgStore::claimFor(Incarnation inc) {
  std::lock_guard lock(claims_mu_);
  if (claim_node_.empty()) return std::nullopt;
  auto it = claims_.find(inc);
  return std::make_pair(claim_node_, it == claims_.end() ? uint64_t{0} : it->second.second);
}

Result<Done> PgStore::publishStatus(const std::string& node_id,
                                    const std::vector<SharedStatus>& rows) {
  if (rows.empty()) return Done{};
  std::vector<std::string> ids, epochs, states, errors, since, metrics;
  for (const auto& s : rows) {
    ids.push_back(s.flow_id);
    epochs.push_back(std::to_string(s.epoch));
    states.push_back(s.state);
    errors.push_back(s.error);
    since.push_back(std::to_string(s.since_ms));
    metrics.push_back(s.metrics);
  }
  // One statement for the batch; a row of a flow this node no longer runs is skipped.
  return inTransaction("cannot publish flow status: ", nullptr, [&](Tx& tx) {
    tx.run(
        "INSERT INTO flow_status (flow_id, node_id, epoch, state, error, since_ms, metrics, "
        "version) SELECT u.f, $1, u.e, u.s, u.err, u.since, u.m, "
        "nextval('flow_status_versions') FROM unnest($2::text[], $3::bigint[], $4::text[], "
        "$5::text[], $6::bigint[], $7::text[]) AS u(f, e, s, err, since, m) "
        "WHERE EXISTS (SELECT 1 FROM flow_owners o WHERE o.flow_id = u.f AND o.active_node = $1) "
        "ON CONFLICT (flow_id) DO UPDATE SET node_id = excluded.node_id, epoch = "
        "excluded.epoch, state = excluded.state, error = excluded.error, since_ms = "
        "excluded.since_ms, metrics = excluded.metrics, version = excluded.version",
        {node_id, pg::arrayLiteral(ids), pg::arrayLiteral(epochs, false), pg::arrayLiteral(states),
         pg::arrayLiteral(errors), pg::arrayLiteral(since, false), pg::arrayLiteral(metrics)});
    tx.run("SELECT pg_notify('sluice_status', '')");
    return !tx.failed();
  });
}

Result<std::vector<SharedStatus>> PgStore::statusSince(uint64_t version) {
  auto rows = single("cannot read flow status",
                     "SELECT flow_id, node_id, epoch, state, error, since_ms, metrics, version "
                     "FROM flow_status WHERE version > $1 ORDER BY version",
                     {static_cast<int64_t>(version)});
  if (!rows.ok()) return rows.error();
  const pg::Rows& r = rows.value();
  std::vector<SharedStatus> out;
  out.reserve(static_cast<size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    SharedStatus s;
    s.flow_id = r.text(i, 0);
    s.node_id = r.text(i, 1);
    s.epoch = static_cast<uint64_t>(r.int64(i, 2));
    s.state = r.text(i, 3);
    s.error = r.text(i, 4);
    s.since_ms = r.int64(i, 5);
    s.metrics = r.text(i, 6);
    s.version = static_cast<uint64_t>(r.int64(i, 7));
    out.push_back(std::move(s));
  }
  return out;
}

std::unique_ptr<ClusterStore::Watch> PgStore::watch(
    std::function<void(const std::string&)> changed) {
  auto listener = std::make_unique<pg::Listener>(
      url_,
      std::vector<std::string>{"sluice_flows", "sluice_owners", "sluice_status", "sluice_nodes"},
      [changed](const std::string& channel, const std::string&) {
        changed(channel.substr(channel.find('_') + 1));
      },
      [changed] { changed(""); });
  if (!listener->waitListening(std::chrono::seconds(5))) {
    spdlog::warn("cluster notifications are not set up yet: the periodic re-read stands in");
  }
  return std::make_unique<ListenerWatch>(std::move(listener));
}

}  // namespace sluice
