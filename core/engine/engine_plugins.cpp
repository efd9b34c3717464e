// The engine's side of plugin versions: reloads without a restart, which flows run which
// version, and upgrades with rollback (docs/plugin-guide.md, "Versions and reload").
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/engine/engine.hpp"
#include "core/model/content_tag.hpp"
#include "core/model/json.hpp"

namespace sluice {

ReloadReport Engine::reloadPlugins() {
  ReloadReport report = registry_.reload();
  // Flows with no instance take the newest version their type allows now, so that none holds
  // a retired library; running flows keep theirs until they restart or are upgraded.
  std::vector<std::shared_ptr<FlowRuntime>> flows;
  {
    std::lock_guard lock(catalog_mu_);
    flows = order_;
  }
  for (const auto& f : flows) f->retype(registry_.find(f->spec().type));
  for (const auto& file : report.removed) publishRefused(file, "file removed");
  for (const auto& p : registry_.plugins()) {
    const bool loaded_now =
        std::find(report.loaded.begin(), report.loaded.end(), p.file) != report.loaded.end();
    if (loaded_now && !p.retired) publishLoaded(p);
  }
  for (const auto& r : report.refused) publishRefused(r.file, r.reason);
  spdlog::info("plugins reloaded: {} loaded, {} removed, {} refused, {} unchanged",
               report.loaded.size(), report.removed.size(), report.refused.size(),
               report.unchanged);
  return report;
}

void Engine::reloadPluginsAsync(std::function<void(const ReloadReport&)> done) {
  pool_.post([this, done = std::move(done)] { done(reloadPlugins()); });
}

std::map<const FlowType*, std::vector<std::string>> Engine::flowsByType() const {
  std::vector<std::shared_ptr<FlowRuntime>> flows;
  {
    std::lock_guard lock(catalog_mu_);
    flows = order_;
  }
  std::map<const FlowType*, std::vector<std::string>> out;
  for (const auto& f : flows) {
    if (auto t = f->currentType()) out[t.get()].push_back(f->id());
  }
  return out;
}

void Engine::upgrade(const std::optional<std::vector<std::string>>& ids,
                     std::function<void(Result<std::vector<UpgradeDetail>>)> done) {
  std::vector<std::shared_ptr<FlowRuntime>> flows;
  {
    std::lock_guard lock(catalog_mu_);
    if (!ids) {
      flows = order_;
    } else {
      std::vector<std::string> unknown;
      for (const auto& id : *ids) {
        auto it = flows_.find(id);
        if (it == flows_.end()) {
          unknown.push_back(id);
        } else {
          flows.push_back(it->second);
        }
      }
      if (!unknown.empty()) {
        std::string list;
        for (const auto& id : unknown) list += (list.empty() ? "'" : ", '") + id + "'";
        return done(
            Error{ErrorKind::kNotFound, "no flow upgraded: unknown flow id " + list + "", {}});
      }
    }
  }
  struct Gather {
    std::mutex mu;
    std::vector<UpgradeDetail> details;  // guarded by mu
    size_t left = 0;                     // guarded by mu
    std::function<void(Result<std::vector<UpgradeDetail>>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->details.resize(flows.size());
  gather->left = flows.size();
  gather->done = std::move(done);
  auto finish_one = [gather](size_t i, UpgradeDetail d) {
    std::unique_lock lock(gather->mu);
    gather->details[i] = std::move(d);
    if (--gather->left != 0) return;
    auto details = std::move(gather->details);
    lock.unlock();
    gather->done(std::move(details));
  };
  if (flows.empty()) return gather->done(std::vector<UpgradeDetail>{});
  for (size_t i = 0; i < flows.size(); ++i) {
    const auto& flow = flows[i];
    UpgradeDetail d;
    d.flow_id = flow->id();
    const FlowSpec spec = flow->spec();
    const auto current = flow->currentType();
    const auto fresh = registry_.find(spec.type);
    d.from = current ? current->version.str() : "";
    d.state = statusOf(*flow).state;
    if (!fresh) {
      d.to = d.from;
      d.error = "no loaded version of flow type '" + spec.type + "'";
      finish_one(i, std::move(d));
      continue;
    }
    d.to = fresh->version.str();
    if (fresh == current) {
      finish_one(i, std::move(d));  // already on the newest version its type allows
      continue;
    }
    if (cluster_ && !flow->local()) {
      d.to = d.from;
      d.error = "flow '" + d.flow_id +
                "' does not run on this node: send the upgrade to the node that runs it";
      finish_one(i, std::move(d));
      continue;
    }
    if (d.state == State::kStopped || d.state == State::kFailed || d.state == State::kCompleted) {
      flow->retype(fresh);
      d.upgraded = flow->currentType() == fresh;
      if (!d.upgraded) d.error = "flow '" + d.flow_id + "' was starting; try again";
      finish_one(i, std::move(d));
      continue;
    }
    // Same configuration, new code: update() restarts it softly, and rolls back on failure.
    flow->update(
        spec, fresh,
        [this, flow, i, d, finish_one](const Result<sluice::Done>& r) mutable {
          d.state = statusOf(*flow).state;
          if (r.ok()) {
            d.upgraded = true;
          } else {
            d.error = r.error().kind == ErrorKind::kPrecondition
                          ? "flow '" + d.flow_id +
                                "' was reconfigured while upgrading; nothing changed, try again"
                          : r.error().message;
            const auto now = flow->currentType();
            d.to = now ? now->version.str() : "";
          }
          finish_one(i, std::move(d));
        },
        // Only onto the configuration read above: a PUT that landed since wins (precondition).
        nullptr, std::vector<std::string>{contentTag(spec.record_json)}, /*persist=*/false);
  }
}

}  // namespace sluice
