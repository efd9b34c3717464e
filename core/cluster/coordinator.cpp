#include "core/cluster/coordinator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/cluster/assignment.hpp"

namespace sluice::cluster {

namespace {

// The safety net's period, and how often metrics are published.
std::chrono::milliseconds periodFor(std::chrono::milliseconds ttl) {
  return std::clamp(ttl / 3, std::chrono::milliseconds(100), std::chrono::milliseconds(1000));
}
constexpr std::chrono::milliseconds kMetricsPeriod{1000};

}  // namespace

Coordinator::Coordinator(Store& store, ClusterStore& cluster, Participant& participant,
                         CoordinatorOptions options)
    : store_(store),
      cluster_(cluster),
      participant_(participant),
      options_(std::move(options)),
      period_(periodFor(options_.ttl)) {
  dirty_ = {true, true, true, true, true};
  watch_ = cluster_.watch([this](const std::string& channel) { wake(channel); });
  thread_ = std::thread([this] { run(); });
}

Coordinator::~Coordinator() { stop(); }

void Coordinator::stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  round_cv_.notify_all();
  thread_.join();
  watch_.reset();
}

void Coordinator::wake(const std::string& what) {
  {
    std::lock_guard lock(mu_);
    const bool all = what.empty();
    dirty_.flows = dirty_.flows || all || what == "flows";
    dirty_.owners = dirty_.owners || all || what == "owners";
    dirty_.status = dirty_.status || all || what == "status";
    dirty_.nodes = dirty_.nodes || all || what == "nodes";
    dirty_.local = dirty_.local || all || what == "local";
  }
  cv_.notify_all();
}

void Coordinator::fence() {
  // Never waits on a round (which may wait on the store): the engine stops the flows itself.
  fenced_ = true;
  cluster_.dropClaims();  // no state write passes from now on
}

void Coordinator::unfence() {
  fenced_ = false;
  wake("");
}

void Coordinator::syncNow(std::chrono::milliseconds bound) {
  std::unique_lock lock(mu_);
  const uint64_t wanted = rounds_done_ + 2;  // a round that starts after this call, completed
  rounds_wanted_ = std::max(rounds_wanted_, wanted);
  dirty_ = {true, true, true, true, true};
  cv_.notify_all();
  round_cv_.wait_for(lock, bound, [&] { return stop_ || rounds_done_ >= wanted; });
}

void Coordinator::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto now = std::chrono::steady_clock::now();
    const bool periodic = now - last_full_ >= period_;
    if (!periodic && !dirty_.any() && rounds_wanted_ <= rounds_done_) {
      cv_.wait_until(lock, last_full_ + period_);
      continue;
    }
    Dirty dirty = dirty_;
    dirty_ = {};
    lock.unlock();
    round(dirty, periodic);
    lock.lock();
    ++rounds_done_;
    round_cv_.notify_all();
  }
}

void Coordinator::round(Dirty dirty, bool periodic) {
  if (periodic) {
    // Every period the live nodes are checked (a lease that ran out notifies nobody); every
    // fifth, everything is read again: the safety net for notifications that were lost.
    last_full_ = std::chrono::steady_clock::now();
    dirty.nodes = true;
    dirty.local = true;
    if (++periods_ % 5 == 0) dirty = {true, true, true, true, true};
  }
  if (dirty.flows) {
    const uint64_t mark = participant_.catalogMark();
    auto flows = store_.loadAll();
    if (flows.ok()) {
      flows_ = std::move(flows.value());
      participant_.syncCatalog(flows_, mark);
    } else {
      spdlog::warn("cluster: cannot re-read flows: {}", flows.error().message);
    }
  }
  bool moved = false;
  bool live_changed = false;
  const bool leading = options_.leading && options_.leading();
  if (!leading) live_.clear();  // a later term compares against what it reads then
  if ((dirty.nodes || dirty.flows || dirty.owners) && leading) {
    auto nodes = store_.listNodes();
    if (nodes.ok()) {
      std::vector<std::string> live;
      for (const auto& n : nodes.value()) {
        if (n.alive) live.push_back(n.node_id);
      }
      live_changed = live != live_;
      live_ = std::move(live);
      // Only when something the assignment depends on changed (or at the safety net's read).
      if (live_changed || dirty.flows || dirty.owners) {
        bool failed = false;
        moved = assign(flows_, nodes.value(), &failed);
        if (failed) live_.clear();  // the next period tries again
      }
    } else {
      spdlog::warn("cluster: cannot read nodes: {}", nodes.error().message);
    }
  }
  const bool fenced = fenced_.load();
  // Claims are tried again every period while this node owns flows it could not claim yet (a
  // previous owner still held them), or after a failed attempt.
  const bool claim_again = periodic && (retry_claims_ || participant_.awaitsClaims());
  if (dirty.owners || dirty.flows || moved || live_changed || claim_again) {
    auto owners = cluster_.listOwners();
    if (owners.ok()) participant_.setOwners(owners.value());
    if (!fenced) {
      auto claims = cluster_.claimOwned(options_.node_id);
      retry_claims_ = !claims.ok();
      if (claims.ok()) {
        // A fence that came meanwhile wins: the engine starts nothing while fenced.
        participant_.placeClaims(claims.value(), "owned by another node now");
        // A release still waiting to be sent must not undo a claim this node holds again.
        std::set<std::pair<std::string, uint64_t>> held;
        for (const auto& c : claims.value()) held.emplace(c.flow_id, c.epoch);
        std::erase_if(releases_, [&](const Claim& r) {
          return held.count({r.flow_id, r.epoch}) != 0;
        });
      } else {
        spdlog::warn("cluster: cannot claim flows: {}", claims.error().message);
      }
    }
  }
  for (auto& r : participant_.takeReleases()) releases_.push_back(std::move(r));
  if (!releases_.empty()) {
    if (auto released = cluster_.releaseClaims(options_.node_id, releases_); released.ok()) {
      releases_.clear();
    } else {
      // The next round tries again: the new owners wait for them.
      spdlog::warn("cluster: cannot release {} claims: {}", releases_.size(),
                   released.error().message);
    }
  }
  const auto now = std::chrono::steady_clock::now();
  const bool metrics_due = now - last_metrics_ >= kMetricsPeriod;
  if (metrics_due) last_metrics_ = now;
  if (!fenced) {
    auto rows = participant_.localStatus(metrics_due);
    if (!rows.empty()) {
      if (auto published = cluster_.publishStatus(options_.node_id, rows); !published.ok()) {
        spdlog::warn("cluster: cannot publish status: {}", published.error().message);
      }
    }
  }
  if (dirty.status) {
    // Versions come from a sequence, in the order rows were written, not committed: now and
    // then every row is read again, so a row that committed late is not skipped for good.
    if (periodic && dirty.flows) status_version_ = 0;
    auto rows = cluster_.statusSince(status_version_);
    if (rows.ok() && !rows.value().empty()) {
      status_version_ = rows.value().back().version;
      participant_.applyRemoteStatus(rows.value());
    }
  }
}

bool Coordinator::assign(const std::vector<StoredFlow>& flows, const std::vector<NodeRecord>& nodes,
                         bool* failed) {
  *failed = false;
  std::vector<std::string> live;
  for (const auto& n : nodes) {
    if (n.alive) live.push_back(n.node_id);
  }
  if (live.empty()) return false;
  auto owners = cluster_.listOwners();
  if (!owners.ok()) {
    *failed = true;
    return false;
  }
  std::map<std::string, std::string> current;
  for (const auto& o : owners.value()) current[o.flow_id] = o.node_id;
  std::vector<std::string> ids;
  ids.reserve(flows.size());
  for (const auto& f : flows) ids.push_back(f.id);
  auto wanted = assignFlows(ids, live);
  std::vector<std::pair<std::string, std::string>> moves;
  for (const auto& [flow, node] : wanted) {
    auto it = current.find(flow);
    if (it == current.end() || it->second != node) moves.emplace_back(flow, node);
  }
  if (moves.empty()) return false;
  if (auto done = cluster_.assignOwners(moves); !done.ok()) {
    spdlog::warn("cluster: cannot assign flows: {}", done.error().message);
    *failed = true;
    return false;
  }
  spdlog::info("cluster: assigned {} flows over {} live nodes", moves.size(), live.size());
  return true;
}

}  // namespace sluice::cluster
