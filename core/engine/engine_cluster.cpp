// The engine as one node of a cluster (docs/cluster.md): the catalog follows the shared store,
// a flow runs only on the node that owns and claimed it, and the status of the flows that run
// elsewhere comes from what their nodes publish. The control loop is core/cluster/coordinator.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/engine/engine.hpp"
#include "core/model/json.hpp"
#include "core/model/semver.hpp"

namespace sluice {

namespace {

constexpr std::chrono::milliseconds kPollRemote{25};

std::optional<State> stateFromString(std::string_view s) {
  for (size_t i = 0; i < kStateCount; ++i) {
    if (toString(static_cast<State>(i)) == s) return static_cast<State>(i);
  }
  return std::nullopt;
}

SystemTime fromMs(int64_t ms) { return SystemTime(std::chrono::milliseconds(ms)); }

int64_t toMs(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string metricsJson(const FlowStatus& s) {
  std::string out = "{\"counters\":{";
  for (size_t i = 0; i < s.counters.size(); ++i) {
    if (i > 0) out += ',';
    json::appendString(out, s.counters[i].first);
    out += ':' + std::to_string(s.counters[i].second);
  }
  out += "},\"gauges\":{";
  bool first = true;
  for (const auto& [name, value] : s.gauges) {
    if (!std::isfinite(value)) continue;
    if (!first) out += ',';
    first = false;
    json::appendString(out, name);
    out += ':' + std::to_string(value);
  }
  out += "}}";
  return out;
}

void readMetrics(const std::string& text, FlowStatus& s) {
  rapidjson::Document doc;
  if (!json::parse(text, doc, nullptr) || !doc.IsObject()) return;
  s.counters.clear();
  s.gauges.clear();
  if (auto c = doc.FindMember("counters"); c != doc.MemberEnd() && c->value.IsObject()) {
    for (const auto& m : c->value.GetObject()) {
      if (m.value.IsInt64()) s.counters.emplace_back(m.name.GetString(), m.value.GetInt64());
    }
  }
  if (auto g = doc.FindMember("gauges"); g != doc.MemberEnd() && g->value.IsObject()) {
    for (const auto& m : g->value.GetObject()) {
      if (m.value.IsNumber()) s.gauges.emplace_back(m.name.GetString(), m.value.GetDouble());
    }
  }
}

bool reaches(State s, Desired target) {
  switch (target) {
    case Desired::kRunning:
      return s == State::kRunning;
    case Desired::kPaused:
      return s == State::kPaused;
    case Desired::kStopped:
      return s == State::kStopped;
  }
  return false;
}

}  // namespace

void Engine::joinCluster(const std::string& node_id, std::chrono::milliseconds ttl,
                         std::function<bool()> leading) {
  if (!cluster_ || coordinator_) return;
  node_id_ = node_id;
  coordinator_ = std::make_unique<cluster::Coordinator>(
      *store_, *cluster_, static_cast<cluster::Participant&>(*this),
      cluster::CoordinatorOptions{node_id, ttl, std::move(leading)});
  // A transition here is published to the other nodes at once.
  feed_listener_ = feed_.addListener([c = coordinator_.get()] { c->wake("local"); });
}

void Engine::fence(const std::string& why) {
  if (!coordinator_) return;
  coordinator_->fence();  // state writes fail from here on; nothing more is claimed
  std::vector<LocalRun> running;
  {
    // Under placement_mu_ only, never the catalog's lock (which a request may hold while it
    // waits on the store): a round about to start a flow either registered it already (it is
    // stopped here) or sees fenced_ and starts nothing.
    std::lock_guard placement(placement_mu_);
    fenced_ = true;
    for (auto& [id, run] : local_) running.push_back(std::move(run));
    local_.clear();
  }
  spdlog::warn("cluster: fenced ({}): stopping {} flows", why, running.size());
  for (const auto& run : running) evictLocal(run.flow, run.epoch, "fenced: " + why);
}

void Engine::leaseRenewed(std::chrono::steady_clock::time_point valid_until) {
  if (!cluster_) return;
  run_until_ns_.store(valid_until.time_since_epoch().count(), std::memory_order_release);
}

void Engine::unfence() {
  if (!coordinator_) return;
  {
    std::lock_guard placement(placement_mu_);
    fenced_ = false;
  }
  coordinator_->unfence();
}

void Engine::evictLocal(const std::shared_ptr<FlowRuntime>& flow, uint64_t epoch,
                        const std::string& why) {
  std::weak_ptr<FlowRuntime> weak = flow;
  flow->evict(why, [this, weak, epoch](const Outcome&) {
    // Stopped (or given up on: then released once its plugin code returned, takeReleases): the
    // claim can go, so that the new owner may start it.
    auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard placement(placement_mu_);
      releases_.emplace_back(self, epoch);
    }
    coordinator_->wake("local");
  });
}

size_t Engine::flowCount() const {
  std::lock_guard lock(catalog_mu_);
  return order_.size();
}

std::map<std::string, size_t> Engine::flowsPerNode() const {
  std::map<std::string, size_t> out;
  std::lock_guard lock(placement_mu_);
  for (const auto& [id, o] : owners_) ++out[o.node_id];
  return out;
}

FlowStatus Engine::statusOf(const FlowRuntime& flow) const {
  FlowStatus s = flow.status();
  if (auto next = scheduler_ ? scheduler_->lookup(flow.id()) : std::nullopt) {
    s.scheduled = true;
    s.next_run_at = *next;
  }
  if (const auto edges = flow.after(); !edges.empty()) {
    s.has_after = true;
    s.waiting_for = unmetAfter(flow, edges);
  }
  if (!cluster_) return s;
  s.clustered = true;
  std::lock_guard lock(placement_mu_);
  if (auto o = owners_.find(flow.id()); o != owners_.end()) {
    s.node = o->second.node_id;
    s.epoch = o->second.epoch;
  }
  if (flow.local()) return s;
  auto r = remote_.find(flow.id());
  if (r == remote_.end()) return s;
  // Only what the owner published: a row of a previous owner (one that died, or that stopped
  // it) says nothing about the flow now.
  if (!s.node.empty() && r->second.node_id != s.node) return s;
  if (auto state = stateFromString(r->second.state)) s.state = *state;
  s.error = r->second.error;
  s.since = fromMs(r->second.since_ms);
  s.operation.clear();
  s.deadline.reset();
  s.next_restart_at.reset();
  readMetrics(r->second.metrics, s);
  return s;
}

std::shared_ptr<FlowRuntime> Engine::findFresh(const std::string& id) {
  auto flow = find(id);
  if (flow || !coordinator_) return flow;
  coordinator_->syncNow(std::chrono::seconds(2));
  return find(id);
}

Engine::Brief Engine::briefStatus(const FlowRuntime& flow) const {
  if (flow.local()) {
    const FlowStatus s = flow.status();
    return {s.state, s.error, s.since};
  }
  std::lock_guard lock(placement_mu_);
  auto r = remote_.find(flow.id());
  auto o = owners_.find(flow.id());
  if (r == remote_.end() || (o != owners_.end() && r->second.node_id != o->second.node_id)) {
    const FlowStatus s = flow.status();  // not published by its owner yet: what this node knows
    return {s.state, s.error, s.since};
  }
  return {stateFromString(r->second.state).value_or(State::kStopped), r->second.error,
          fromMs(r->second.since_ms)};
}

void Engine::awaitRemote(std::shared_ptr<std::vector<RemoteWait>> waits, SystemTime since) {
  // One poll for every flow of a command that runs elsewhere, never on the caller's thread.
  const auto now = std::chrono::steady_clock::now();
  auto rest = std::make_shared<std::vector<RemoteWait>>();
  for (auto& w : *waits) {
    const Brief s = briefStatus(*w.flow);
    // A failure counts once it is newer than the command (the owner's clock).
    const bool failed = s.state == State::kFailed && s.since >= since;
    // A short job may run and complete between two polls: that answers a start too.
    const bool completed =
        w.target == Desired::kRunning && s.state == State::kCompleted && s.since >= since;
    if (reaches(s.state, w.target) || failed || completed) {
      w.done({s.state, s.error}, false);
    } else if (now >= w.deadline) {
      w.done({s.state, s.error}, true);
    } else {
      rest->push_back(std::move(w));
    }
  }
  if (rest->empty()) return;
  timer_.at(now + kPollRemote, [this, rest, since] { awaitRemote(rest, since); });
}

std::shared_ptr<FlowRuntime> Engine::makeRuntime(const StoredFlow& f) {
  rapidjson::Document doc;
  json::ParseError perr;
  FlowSpec spec;
  std::vector<Problem> problems;
  if (!json::parse(f.record_json, doc, &perr) || !parseFlowSpec(doc, "", &spec, problems)) {
    // Keep what was stored, verbatim: the operator can fix it with PUT.
    spec = FlowSpec{};
    spec.id = f.id;
    spec.type = "";
    spec.record_json = f.record_json;
    spdlog::error("flow {}: stored configuration is no longer valid", f.id);
  }
  // The version stored with the flow while it is loaded and the pin allows it, else the newest.
  std::shared_ptr<const FlowType> type;
  if (!spec.type.empty() && !f.type_version.empty()) {
    std::string ignored;
    const auto pin = parseTypePin(spec.type, &ignored);
    const auto stored = parseSemVer(f.type_version);
    if (pin && stored && pin->matches(*stored)) {
      type = registry_.find(pin->name + "@" + f.type_version);
    }
  }
  if (!type && !spec.type.empty()) type = registry_.find(spec.type);
  if (!type) spdlog::error("flow {}: flow type '{}' is not loaded", f.id, spec.type);
  auto flow = FlowRuntime::create(&services_, std::move(spec), type, f.desired, f.incarnation);
  flow->setStoredVersion(f.type_version);
  flow->setRuns(f.runs, parseStoredRunRecord(f.last_run));
  if (flow->scheduled() && f.desired == Desired::kPaused) flow->restoreIdlePaused();
  if (cluster_) flow->setLocal(false);  // runs once this node claimed it
  return flow;
}

// ---- cluster::Participant ----------------------------------------------------------------------

void Engine::syncCatalog(std::vector<StoredFlow> stored, uint64_t mark) {
  std::vector<std::string> created, updated, deleted;
  {
    std::lock_guard lock(catalog_mu_);
    if (shut_down_) return;
    std::set<std::string> seen;
    bool added = false;
    for (auto& f : stored) {
      seen.insert(f.id);
      auto it = flows_.find(f.id);
      // Written through this node after the read began: the read may be older, leave it.
      if (it == flows_.end()) {
        auto d = deleted_.find(f.id);
        if (d != deleted_.end() && d->second > mark) continue;
      } else if (it->second->writtenSince(mark)) {
        continue;
      }
      if (it != flows_.end() && it->second->incarnation() != f.incarnation) {
        // Deleted and created again under the same id on another node.
        auto old = it->second;
        flows_.erase(it);
        order_.erase(std::find(order_.begin(), order_.end(), old));
        {
          std::lock_guard placement(placement_mu_);
          local_.erase(f.id);
        }
        old->remove([](const Outcome&) {});
        it = flows_.end();
      }
      if (it == flows_.end()) {
        auto flow = makeRuntime(f);
        flows_.emplace(f.id, flow);
        order_.push_back(flow);
        created.push_back(f.id);
        added = true;
        continue;
      }
      const auto& flow = it->second;
      if (flow->recordJson() != f.record_json) {
        FlowSpec spec;
        rapidjson::Document doc;
        std::vector<Problem> problems;
        if (json::parse(f.record_json, doc, nullptr) && parseFlowSpec(doc, "", &spec, problems)) {
          auto type = registry_.find(spec.type);
          if (flow->local()) {
            // Changed on another node while it runs here: restart with it (stored already).
            flow->update(
                std::move(spec), type,
                [id = f.id](const Result<Done>& r) {
                  if (!r.ok()) spdlog::error("flow {}: {}", id, r.error().message);
                },
                nullptr, std::nullopt, /*persist=*/false);
          } else {
            flow->adoptSpec(std::move(spec), type);
          }
          updated.push_back(f.id);
        }
      }
      if (flow->desired() != f.desired) {
        if (!flow->local()) {
          flow->adoptRemote(f.desired);
        } else {
          // A command committed on another node: carry it out here.
          const Desired from = flow->accepted();
          auto noop = [](const Outcome&) {};
          switch (f.desired) {
            case Desired::kRunning:
              // A scheduled flow paused with no run going on has nothing to resume: start it.
              flow->acceptCommand(from == Desired::kPaused && !flow->idlePaused() ? Command::kResume
                                                                                  : Command::kStart,
                                  StopMode::kSoft, noop);
              break;
            case Desired::kPaused:
              // A scheduled flow paused while idle only has its schedule suspended.
              if (from == Desired::kStopped && !flow->scheduled()) {
                flow->acceptCommand(Command::kStart, StopMode::kSoft, noop);
              }
              flow->acceptCommand(Command::kPause, StopMode::kSoft, noop);
              break;
            case Desired::kStopped:
              flow->acceptCommand(Command::kStop, StopMode::kSoft, noop);
              break;
          }
        }
      }
    }
    for (auto it = flows_.begin(); it != flows_.end();) {
      if (seen.count(it->first) != 0 || it->second->writtenSince(mark)) {
        ++it;  // stored, or created through this node after the read began
        continue;
      }
      auto flow = it->second;
      deleted.push_back(it->first);
      {
        std::lock_guard placement(placement_mu_);
        local_.erase(it->first);
      }
      order_.erase(std::find(order_.begin(), order_.end(), flow));
      it = flows_.erase(it);
      flow->remove([](const Outcome&) {});
    }
    for (auto it = deleted_.begin(); it != deleted_.end();) {
      it = it->second <= mark ? deleted_.erase(it) : std::next(it);  // the read saw them gone
    }
    if (added) {
      // Creation order is the store's (incarnations increase), whichever node created them.
      std::stable_sort(order_.begin(), order_.end(), [](const auto& a, const auto& b) {
        return a->incarnation() < b->incarnation();
      });
    }
    for (const auto& id : created) publishConfig(id, "created");
    for (const auto& id : updated) publishConfig(id, "updated");
    for (const auto& id : deleted) publishConfig(id, "deleted");
  }
  if (!created.empty() || !updated.empty() || !deleted.empty()) invalidateList();
  // Schedules follow the catalog: each node knows them all, and fires those it runs.
  for (const auto& list : {created, updated}) {
    for (const auto& id : list) {
      if (auto flow = find(id)) scheduleFlow(id, flow->spec(), flow->desired());
    }
  }
  for (const auto& id : deleted) scheduler_->remove(id);
  for (const auto& f : stored) {
    if (auto flow = find(f.id); flow && scheduler_->scheduled(f.id)) {
      scheduler_->suspend(f.id, flow->desired() == Desired::kPaused);
    }
  }
  status_changes_.fetch_add(1);
}

void Engine::setOwners(const std::vector<OwnerRow>& owners) {
  std::lock_guard lock(placement_mu_);
  owners_.clear();
  for (const auto& o : owners) owners_[o.flow_id] = o;
  status_changes_.fetch_add(1);
}

void Engine::placeClaims(const std::vector<Claim>& claims, const std::string& why) {
  std::unordered_map<std::string, const Claim*> by_id;
  for (const auto& c : claims) by_id[c.flow_id] = &c;
  std::lock_guard lock(catalog_mu_);  // acceptCommand's contract
  if (shut_down_) return;
  for (const auto& [id, flow] : flows_) {
    auto c = by_id.find(id);
    const bool claimed = c != by_id.end() && c->second->incarnation == flow->incarnation();
    if (!claimed) {
      if (!flow->local()) continue;
      uint64_t epoch = 0;
      {
        std::lock_guard placement(placement_mu_);
        if (auto run = local_.find(id); run != local_.end()) {
          epoch = run->second.epoch;
          local_.erase(run);
        }
      }
      evictLocal(flow, epoch, why);
      continue;
    }
    {
      std::lock_guard placement(placement_mu_);
      if (fenced_) return;  // the fence stopped what ran here: start nothing
      local_[id] = {flow, c->second->epoch};
      if (flow->local()) continue;
      flow->setLocal(true);  // registered before a fence can look: it would stop this one too
    }
    spdlog::info("flow {}: claimed at epoch {}", id, c->second->epoch);
    const Desired d = flow->desired();
    if (d == Desired::kStopped) continue;
    // A fence between here and the strand makes the flow not local: the start then refuses.
    flow->keepStoredVersionOnNextStart();  // a failover changes no flow's code
    flow->acceptCommand(Command::kStart, StopMode::kSoft, [](const Outcome&) {});
    if (d == Desired::kPaused) {
      flow->acceptCommand(Command::kPause, StopMode::kSoft, [](const Outcome&) {});
    }
  }
  status_changes_.fetch_add(1);
}

bool Engine::awaitsClaims() {
  std::lock_guard placement(placement_mu_);
  if (fenced_) return false;
  for (const auto& [id, o] : owners_) {
    if (o.node_id == node_id_ && local_.count(id) == 0) return true;
  }
  return false;
}

std::vector<Claim> Engine::takeReleases() {
  std::vector<Claim> out;
  std::lock_guard placement(placement_mu_);
  std::vector<std::pair<std::shared_ptr<FlowRuntime>, uint64_t>> waiting;
  for (auto& [flow, epoch] : releases_) {
    if (flow->local()) continue;  // claimed here again since: the claim stays
    if (flow->codeRunning()) {
      waiting.emplace_back(std::move(flow), epoch);  // its stop gave up: not before it returns
      continue;
    }
    out.push_back({flow->id(), flow->incarnation(), epoch});
  }
  releases_ = std::move(waiting);
  return out;
}

std::vector<SharedStatus> Engine::localStatus(bool all) {
  std::vector<std::shared_ptr<FlowRuntime>> local;
  {
    std::lock_guard lock(catalog_mu_);
    for (const auto& f : order_) {
      if (f->local()) local.push_back(f);
    }
  }
  std::vector<SharedStatus> rows;
  std::set<std::string> here;
  for (const auto& f : local) {
    FlowStatus s = f->status();
    here.insert(f->id());
    auto& last = published_[f->id()];
    const bool changed = last.state != s.state || last.error != s.error || last.since != s.since;
    if (!changed && !all) continue;
    std::string metrics = metricsJson(s);
    // Transitions at once; metrics (`all`, once a second) only when they changed.
    if (!changed && metrics == last.metrics) continue;
    last = {s.state, s.error, s.since, metrics};
    SharedStatus row;
    row.flow_id = f->id();
    row.node_id = node_id_;
    {
      std::lock_guard placement(placement_mu_);
      auto e = local_.find(f->id());
      row.epoch = e == local_.end() ? 0 : e->second.epoch;
    }
    row.state = std::string(toString(s.state));
    row.error = s.error;
    row.since_ms = toMs(s.since);
    row.metrics = std::move(metrics);
    rows.push_back(std::move(row));
  }
  for (auto it = published_.begin(); it != published_.end();) {
    it = here.count(it->first) != 0 ? std::next(it) : published_.erase(it);
  }
  return rows;
}

void Engine::applyRemoteStatus(const std::vector<SharedStatus>& rows) {
  std::vector<SharedStatus> changed;
  {
    std::lock_guard placement(placement_mu_);
    for (const auto& row : rows) {
      if (row.node_id == node_id_) continue;  // this node's own flows answer for themselves
      auto& slot = remote_[row.flow_id];
      if (slot.state != row.state || slot.error != row.error || slot.node_id != row.node_id ||
          slot.since_ms != row.since_ms) {
        changed.push_back(row);
      }
      slot = row;
    }
  }
  // Transitions on other nodes reach this node's /events too.
  for (const auto& row : changed) {
    auto flow = find(row.flow_id);
    if (!flow || flow->local()) continue;
    std::string data = stateEventJson(row.flow_id, row.state, flow->desired(), fromMs(row.since_ms),
                                      row.error, row.node_id);
    feed_.publish(EventKind::kState, row.flow_id, std::move(data));
  }
  status_changes_.fetch_add(1);
}

}  // namespace sluice
