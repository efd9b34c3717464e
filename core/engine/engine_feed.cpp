// The engine's side of observability: the events it publishes besides state transitions
// (configurations, plugins), its readiness, and paged, filtered reads of the catalog.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/engine/engine.hpp"
#include "core/model/json.hpp"

namespace sluice {

void Engine::publishLoaded(const LoadedPlugin& p) {
  std::string data = "{\"file\":";
  json::appendString(data, p.file);
  data += ",\"plugin\":";
  json::appendString(data, p.name);
  data += ",\"loaded\":true,\"types\":[";
  for (size_t i = 0; i < p.types.size(); ++i) {
    if (i > 0) data += ',';
    json::appendString(data, p.types[i]->name);
  }
  data += "],\"error\":null}";
  feed_.publish(EventKind::kPlugin, "", std::move(data));
}

void Engine::publishRefused(const std::string& file, const std::string& reason) {
  std::string data = "{\"file\":";
  json::appendString(data, file);
  data += ",\"plugin\":null,\"loaded\":false,\"types\":[],\"error\":";
  json::appendString(data, reason);
  data += '}';
  feed_.publish(EventKind::kPlugin, "", std::move(data));
}

void Engine::publishPlugins() {
  for (const auto& p : registry_.plugins()) publishLoaded(p);
  for (const auto& r : registry_.refused()) publishRefused(r.file, r.reason);
}

void Engine::publishConfig(const std::string& id, std::string_view op) {
  std::string data = "{\"flow_id\":";
  json::appendString(data, id);
  data += ",\"op\":\"";
  data += op;
  data += "\"}";
  feed_.publish(EventKind::kConfig, id, std::move(data));
}

Engine::Readiness Engine::readiness() {
  {
    std::lock_guard lock(catalog_mu_);
    if (shut_down_) return {false, "the engine is shutting down"};
  }
  if (size_t n = restoring(); n > 0) {
    return {false, "restoring flows: " + std::to_string(n) + " still starting"};
  }
  std::string error;
  {
    // A probe takes the store's write lock and may wait on it: it runs on an engine worker, at
    // most one at a time and one per second, and /readyz answers from the last result without
    // waiting.
    std::lock_guard lock(probe_mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!probing_ && now - probed_at_ >= std::chrono::seconds(1)) {
      probing_ = true;
      probed_at_ = now;
      pool_.post([this] {
        auto r = store_->checkWritable();
        std::lock_guard done(probe_mu_);
        if (!r.ok() && probe_error_.empty()) spdlog::warn("not ready: {}", r.error().message);
        probe_error_ = r.ok() ? "" : r.error().message;
        probing_ = false;
      });
    }
    error = probe_error_;
  }
  if (!error.empty()) return {false, error};
  return {true, ""};
}

Result<std::vector<std::shared_ptr<FlowRuntime>>> Engine::pageFlows(const PageQuery& q,
                                                                    bool* more) const {
  const Error gone{ErrorKind::kInvalid,
                   "after: no flow '" + q.after.value_or("") +
                       "' exists (it may have been deleted): start again from the first page",
                   {}};
  std::vector<std::shared_ptr<FlowRuntime>> out;
  std::vector<std::shared_ptr<FlowRuntime>> order;
  *more = false;
  {
    std::lock_guard lock(catalog_mu_);
    // Where the page starts: order_ is in creation order, which is incarnation order, so the
    // flow named by `after` is found by its id and a binary search (a linear scan only should
    // that order not hold), not by comparing every id before it.
    size_t start = 0;
    if (q.after) {
      auto named = flows_.find(*q.after);
      if (named == flows_.end()) return gone;
      const auto& flow = named->second;
      auto it = std::lower_bound(order_.begin(), order_.end(), flow->incarnation(),
                                 [](const std::shared_ptr<FlowRuntime>& f, Incarnation v) {
                                   return f->incarnation() < v;
                                 });
      if (it == order_.end() || *it != flow) it = std::find(order_.begin(), order_.end(), flow);
      if (it == order_.end()) return gone;
      start = static_cast<size_t>(it - order_.begin()) + 1;
    }
    if (!q.status && !q.type) {
      // Unfiltered: only the page's flows are taken, so a page costs the same at 1,000 flows
      // as at 1,000,000.
      const size_t end = start + std::min<size_t>(q.limit, order_.size() - start);  // no overflow
      out.assign(order_.begin() + static_cast<std::ptrdiff_t>(start),
                 order_.begin() + static_cast<std::ptrdiff_t>(end));
      *more = end < order_.size();
      return out;
    }
    // Filtered: the rest of the catalog is read outside the lock (each flow's state takes
    // the flow's own lock).
    order.assign(order_.begin() + static_cast<std::ptrdiff_t>(start), order_.end());
  }
  for (const auto& f : order) {
    const FlowStatus s = statusOf(*f);
    if (q.status && s.state != *q.status) continue;
    // ?type=ticker matches every pin of ticker (ticker@1, ...); ?type=ticker@1 only that pin.
    if (q.type && s.type != *q.type && s.type.substr(0, s.type.find('@')) != *q.type) continue;
    if (out.size() == q.limit) {
      *more = true;
      break;
    }
    out.push_back(f);
  }
  return out;
}

Result<Engine::Page<std::pair<std::string, std::string>>> Engine::recordsPage(
    const PageQuery& q) const {
  Page<std::pair<std::string, std::string>> page;
  auto flows = pageFlows(q, &page.more);
  if (!flows.ok()) return flows.error();
  page.items.reserve(flows.value().size());
  for (const auto& f : flows.value()) page.items.emplace_back(f->id(), f->recordJson());
  return page;
}

Result<Engine::Page<FlowStatus>> Engine::statusPage(const PageQuery& q) const {
  Page<FlowStatus> page;
  auto flows = pageFlows(q, &page.more);
  if (!flows.ok()) return flows.error();
  page.items.reserve(flows.value().size());
  for (const auto& f : flows.value()) page.items.push_back(statusOf(*f));
  return page;
}

}  // namespace sluice
