// Engine: dependencies between flows (runtime.after, docs/orchestration.md). A flow with
// `after` starts once every upstream flow's last run ended as its edge requires, after this
// flow's own last start; the engine checks at every run end of an upstream, and starts the flow
// through the command path. Edges must name flows that exist and must not make a cycle (400
// naming it); an upstream with dependents is deleted only with ?force=true.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "core/engine/engine.hpp"

namespace sluice {
namespace {

bool endedAs(RunResult r, AfterOn on) {
  switch (on) {
    case AfterOn::kSucceeded:
      return r == RunResult::kSucceeded;
    case AfterOn::kFailed:
      return r == RunResult::kFailed;
    case AfterOn::kCompleted:
      return r != RunResult::kNone;
  }
  return false;
}

// The first cycle through `start` in `graph` (id -> upstream ids), as "a -> b -> a", rotated to
// begin at its smallest id (so one cycle reads the same from any of its flows); empty when none.
// Depth-first without recursion: chains may be as long as the catalog.
std::string cycleFrom(const std::string& start,
                      const std::map<std::string, std::vector<std::string>>& graph) {
  struct Frame {
    const std::string* id;
    size_t next = 0;  // the next upstream to visit
  };
  std::vector<Frame> stack{{&start}};
  std::set<std::string> on_path{start}, done;
  while (!stack.empty()) {
    Frame& top = stack.back();
    auto it = graph.find(*top.id);
    if (it == graph.end() || top.next == it->second.size()) {
      on_path.erase(*top.id);
      done.insert(*top.id);
      stack.pop_back();
      continue;
    }
    const std::string& up = it->second[top.next++];
    if (on_path.count(up) != 0) {
      std::vector<std::string> cycle;
      bool in = false;
      for (const Frame& f : stack) {
        in = in || *f.id == up;
        if (in) cycle.push_back(*f.id);
      }
      std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
      std::string text;
      for (const std::string& id : cycle) text += id + " -> ";
      return text + cycle.front();
    }
    if (done.count(up) == 0) {
      on_path.insert(up);
      stack.push_back({&up});
    }
  }
  return "";
}

}  // namespace

void Engine::graphProblems(const std::vector<FlowSpec>& specs, bool creating,
                           std::vector<Problem>& problems) const {
  bool any = false;
  for (const auto& s : specs) any = any || !s.runtime.after.empty();
  if (!any) return;
  // The graph as it would be: every flow's upstreams, with the specs in place.
  std::map<std::string, std::vector<std::string>> graph;
  for (const auto& [id, flow] : flows_) {
    for (const AfterSpec& e : afterLocked(*flow)) graph[id].push_back(e.flow_id);
    graph.try_emplace(id);
  }
  for (const auto& s : specs) {
    auto& ups = graph[s.id];
    ups.clear();
    for (const AfterSpec& e : s.runtime.after) ups.push_back(e.flow_id);
  }
  std::set<std::string> reported;
  for (size_t i = 0; i < specs.size(); ++i) {
    const FlowSpec& s = specs[i];
    const std::optional<size_t> index = creating ? std::optional<size_t>(i) : std::nullopt;
    for (size_t k = 0; k < s.runtime.after.size(); ++k) {
      const std::string& up = s.runtime.after[k].flow_id;
      if (graph.count(up) == 0) {
        problems.push_back(
            {index, s.id, "/runtime/after/" + std::to_string(k) + "/flow_id",
             "runtime.after[" + std::to_string(k) + "]: flow '" + up + "' does not exist"});
      }
    }
    std::string cycle = cycleFrom(s.id, graph);
    if (!cycle.empty() && reported.insert(cycle).second) {
      problems.push_back(
          {index, s.id, "/runtime/after",
           "runtime.after makes a cycle: " + cycle + " (a flow cannot wait for itself)"});
    }
  }
}

std::vector<AfterSpec> Engine::afterLocked(const FlowRuntime& flow) const {
  auto p = pending_after_.find(flow.id());
  return p != pending_after_.end() ? p->second.second : flow.after();
}

void Engine::markEdgesMade(const std::vector<std::string>& ids) {
  // A run's end reaches startDependents() once its record is stored, a moment after it showed:
  // a flow created (or given its edges) in that moment must not count that run.
  if (ids.empty()) return;
  const auto now = std::chrono::system_clock::now();
  std::lock_guard lock(dag_mu_);
  for (const auto& id : ids) triggered_[id] = now;
}

std::vector<std::string> Engine::dependentsLocked(const std::string& id) const {
  std::vector<std::string> out;
  for (const auto& flow : order_) {
    for (const AfterSpec& e : afterLocked(*flow)) {
      if (e.flow_id == id) {
        out.push_back(flow->id());
        break;
      }
    }
  }
  return out;
}

Error Engine::dependentsError(const std::string& id, const std::vector<std::string>& deps) {
  std::string names;
  std::vector<Problem> details;
  for (const std::string& d : deps) {
    names += (names.empty() ? "'" : ", '") + d + "'";
    details.push_back({std::nullopt, d, "/runtime/after",
                       "flow '" + d + "' lists '" + id + "' in runtime.after"});
  }
  return Error{ErrorKind::kInvalid,
               "flow '" + id + "' is upstream of " + names +
                   " (runtime.after): change or delete those first, or delete it with "
                   "?force=true (they then wait for a flow that does not exist)",
               std::move(details)};
}

std::vector<FlowStatus::AfterWait> Engine::unmetAfter(const FlowRuntime& flow,
                                                      const std::vector<AfterSpec>& edges) const {
  std::vector<FlowStatus::AfterWait> out;
  if (edges.empty()) return out;
  // Upstream runs count when they ended after this flow's last start (or its last trigger).
  std::optional<SystemTime> mark = flow.lastRun().started;
  {
    std::lock_guard lock(dag_mu_);
    if (auto t = triggered_.find(flow.id());
        t != triggered_.end() && (!mark || t->second > *mark)) {
      mark = t->second;
    }
  }
  for (const AfterSpec& e : edges) {
    FlowStatus::AfterWait w{e.flow_id, e.on};
    auto up = find(e.flow_id);
    if (!up) {
      w.missing = true;
      out.push_back(std::move(w));
      continue;
    }
    const RunRecord r = up->lastEndedRun();  // not the run going on now, if any
    const bool fresh = r.ended && r.result != RunResult::kNone && (!mark || *r.ended > *mark);
    if (fresh) w.last_result = r.result;
    if (fresh && endedAs(r.result, e.on)) continue;
    out.push_back(std::move(w));
  }
  return out;
}

void Engine::startDependents(const std::string& upstream) {
  std::vector<std::shared_ptr<FlowRuntime>> candidates;
  {
    // The generation is read before the index is built: a change that lands meanwhile bumps
    // it again, so the next run end rebuilds (as the list cache does).
    const uint64_t generation = graph_generation_.load(std::memory_order_acquire);
    std::lock_guard lock(catalog_mu_);
    if (shut_down_) return;
    if (dependents_generation_ != generation) {
      dependents_.clear();
      for (const auto& flow : order_) {
        for (const AfterSpec& e : afterLocked(*flow)) dependents_[e.flow_id].push_back(flow->id());
      }
      dependents_generation_ = generation;
      no_dependents_at_.store(dependents_.empty() ? generation : UINT64_MAX,
                              std::memory_order_release);
    }
    auto it = dependents_.find(upstream);
    if (it == dependents_.end()) return;  // the common case: nothing runs after it
    for (const std::string& id : it->second) {
      if (auto f = flows_.find(id); f != flows_.end()) candidates.push_back(f->second);
    }
  }
  for (const auto& flow : candidates) {
    const std::string id = flow->id();
    {
      // One check and trigger at a time: two upstreams that end at once start it once.
      std::lock_guard trigger(dag_trigger_mu_);
      // Its edges as applied: an update that adds this one is not applied yet.
      const auto edges = flow->after();
      if (std::none_of(edges.begin(), edges.end(),
                       [&](const AfterSpec& e) { return e.flow_id == upstream; }) ||
          !unmetAfter(*flow, edges).empty()) {
        continue;
      }
      if (isActive(flow->status().state)) {
        spdlog::info("flow {}: its upstream runs ended as required, but it still runs", id);
        continue;
      }
      if (flow->desired() == Desired::kPaused) {
        spdlog::info("flow {}: its upstream runs ended as required, but it is paused", id);
        continue;
      }
      std::lock_guard lock(dag_mu_);
      triggered_[id] = std::chrono::system_clock::now();
    }
    spdlog::info("flow {}: every upstream run ended as runtime.after requires: starting it", id);
    startScheduled(id, "run after its upstream flows");
  }
}

}  // namespace sluice
