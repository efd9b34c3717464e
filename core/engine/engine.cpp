#include "core/engine/engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <set>
#include <thread>

#include "core/model/content_tag.hpp"
#include "core/store/store_factory.hpp"

namespace sluice {

Result<std::unique_ptr<Engine>> Engine::open(const EngineOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Error{ErrorKind::kInternal,
                 "cannot create data directory " + options.data_dir.string() + ": " + ec.message(),
                 {}};
  }
  EngineOptions resolved = options;
  if (resolved.files_root.empty()) resolved.files_root = options.data_dir / "files";
  std::filesystem::create_directories(resolved.files_root, ec);
  if (ec) {
    return Error{ErrorKind::kInternal,
                 "cannot create files root " + resolved.files_root.string() + ": " + ec.message(),
                 {}};
  }
  resolved.files_root = std::filesystem::canonical(resolved.files_root, ec);
  if (ec) return Error{ErrorKind::kInternal, "cannot resolve files root: " + ec.message(), {}};
  if (resolved.host_executable.empty()) {
    resolved.host_executable = std::filesystem::read_symlink("/proc/self/exe", ec);
  }
  auto store = openStore(options.store_url, options.data_dir, /*engine=*/true);
  if (!store.ok()) return store.error();
  auto loaded = store.value()->loadAll();
  if (!loaded.ok()) return loaded.error();
  std::unique_ptr<Engine> engine(new Engine(resolved, std::move(store.value())));
  engine->restore(std::move(loaded.value()));
  return engine;
}

namespace {

RegistryOptions registryOptions(const EngineOptions& options) {
  RegistryOptions r;
  if (options.scan_plugins) r.scanner = options.host_executable;
  r.scan_timeout = std::chrono::milliseconds(options.scan_timeout_ms);
  r.cache_dir = options.data_dir / "plugin-cache";
  return r;
}

}  // namespace

Engine::Engine(const EngineOptions& options, std::unique_ptr<Store> store)
    : options_(options),
      store_(std::move(store)),
      registry_(registryOptions(options)),
      pool_(options.workers, options.worker_nice),
      runs_(store_.get()),
      flow_logs_(options.data_dir / "logs", options.flow_log_bytes),
      services_{&pool_,
                &timer_,
                store_.get(),
                [this] { invalidateList(); },
                options.files_root.string(),
                options.host_executable.string(),
                &feed_,
                &restarts_,
                &status_changes_,
                &run_until_ns_,
                {}} {
  timer_.batchPostsTo(&pool_);  // a millisecond's steps reach the workers together
  cluster_ = store_->cluster();
  feed_.setReserver([store = store_.get()](uint64_t count) -> uint64_t {
    auto first = store->reserveSequence("events", count);
    if (first.ok()) return first.value();
    spdlog::error("event ids: {}", first.error().message);
    return 0;
  });
  services_.logs = &flow_logs_;
  services_.runs = &runs_;
  services_.step_lateness = &step_lateness_;
  services_.resolve_type = [this](const std::string& type) { return registry_.find(type); };
  services_.run_ended = [this](const std::string& id) { onRunEnded(id); };
  services_.completed = [this](const std::shared_ptr<FlowRuntime>& flow, uint64_t seq) {
    onCompleted(flow, seq);
  };
  for (const auto& b : options_.builtin_plugins) registry_.addBuiltin(b.name, b.version, b.types);
  registry_.loadDirectories(options_.plugin_dirs);
  publishPlugins();
  auto clock = options_.schedule_clock;
  if (!clock) clock = [] { return std::chrono::system_clock::now(); };
  scheduler_ = std::make_unique<schedule::Scheduler>(
      std::move(clock),
      [this](const std::vector<schedule::Scheduler::Firing>& firings) { onScheduleFires(firings); },
      options_.schedule_poll);
}

Engine::~Engine() { shutdown(); }

std::shared_ptr<FlowRuntime> Engine::find(const std::string& id) const {
  std::lock_guard lock(catalog_mu_);
  auto it = flows_.find(id);
  return it == flows_.end() ? nullptr : it->second;
}

void Engine::invalidateList() {
  // Every catalog change ends here, after the change: the dependency index follows it too.
  graph_generation_.fetch_add(1, std::memory_order_release);
  std::lock_guard lock(list_mu_);
  ++list_generation_;
  list_cache_.reset();
}

std::shared_ptr<const std::string> Engine::listJson() {
  uint64_t generation;
  {
    std::lock_guard lock(list_mu_);
    if (list_cache_) return list_cache_;
    generation = list_generation_;
  }
  // Built outside the locks. Every change is made before its invalidation bumps the generation,
  // so a list built from a generation that is still current is up to date; one built while a
  // change landed is answered (it was current when the request began) but never cached.
  std::vector<std::shared_ptr<FlowRuntime>> order;
  {
    std::lock_guard lock(catalog_mu_);
    order = order_;
  }
  auto text = std::make_shared<std::string>();
  text->push_back('[');
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0) text->push_back(',');
    text->append(order[i]->recordJson());
  }
  text->push_back(']');
  std::lock_guard lock(list_mu_);
  if (list_generation_ == generation) list_cache_ = text;
  return text;
}

std::optional<std::string> Engine::getJson(const std::string& id) {
  auto flow = findFresh(id);
  if (!flow) return std::nullopt;
  return flow->recordJson();
}

namespace {

void sortByIndex(std::vector<Problem>& problems) {
  std::stable_sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    return a.index.value_or(0) < b.index.value_or(0);
  });
}

// Why an If-Match precondition fails for the stored `record`, or nothing when it holds.
std::optional<Error> mismatch(const std::optional<std::vector<std::string>>& if_match,
                              const std::string& record, const std::string& id) {
  if (!if_match) return std::nullopt;
  const std::string current = contentTag(record);
  if (ifMatchAccepts(*if_match, current)) return std::nullopt;
  return Error{ErrorKind::kPrecondition,
               "flow '" + id + "' has changed: its entity tag is " + current +
                   ", not the one in If-Match; nothing was changed",
               {}};
}

}  // namespace

std::vector<Problem> Engine::batchProblems(const std::vector<FlowSpec>& specs) {
  std::vector<Problem> problems;
  std::set<std::string> seen;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!seen.insert(specs[i].id).second) {
      problems.push_back({i, specs[i].id, "/flow_id",
                          "flow_id '" + specs[i].id + "' appears more than once in the request"});
    }
  }
  auto type_problems = checkAgainstTypes(specs);
  problems.insert(problems.end(), type_problems.begin(), type_problems.end());
  return problems;
}

void Engine::existingProblems(const std::vector<FlowSpec>& specs, std::vector<Problem>& problems) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (flows_.count(specs[i].id) != 0) {
      problems.push_back(
          {i, specs[i].id, "/flow_id", "flow_id '" + specs[i].id + "' already exists"});
    }
  }
  sortByIndex(problems);
}

std::vector<Problem> Engine::validate(const std::vector<FlowSpec>& specs) {
  std::vector<Problem> problems = batchProblems(specs);
  std::lock_guard lock(catalog_mu_);
  existingProblems(specs, problems);
  graphProblems(specs, true, problems);
  sortByIndex(problems);
  return problems;
}

Result<std::vector<std::string>> Engine::create(std::vector<FlowSpec> specs, AuditPtr audit) {
  std::vector<Problem> problems = batchProblems(specs);
  std::vector<std::string> ids;
  {
    std::lock_guard lock(catalog_mu_);
    if (shut_down_) return Error{ErrorKind::kUnavailable, "the engine is shutting down", {}};
    existingProblems(specs, problems);
    graphProblems(specs, true, problems);
    sortByIndex(problems);
    if (!problems.empty()) {
      std::string msg = problems.size() == 1 ? problems[0].message
                                             : std::to_string(problems.size()) +
                                                   " problems in the request; nothing was added";
      return Error{ErrorKind::kInvalid, msg, std::move(problems)};
    }
    std::vector<StoredFlow> rows;
    rows.reserve(specs.size());
    for (const auto& s : specs) rows.push_back({s.id, s.record_json, Desired::kStopped});
    for (const auto& s : specs) scheduleFlow(s.id, s, Desired::kStopped);
    // Until the flows are published, a failure (the store's, or a throw) takes their schedules
    // back.
    struct Unschedule {
      Engine* engine;
      const std::vector<StoredFlow>* rows;
      bool armed = true;
      ~Unschedule() {
        if (!armed || !engine->scheduler_) return;
        for (const auto& r : *rows) engine->scheduler_->remove(r.id);
      }
    } unschedule{this, &rows};
    // The runtimes are built while the store inserts (and syncs) the rows: a POST of 10,000
    // flows keeps both cores busy. They are numbered and published once the rows are durable.
    auto build = [this](std::vector<FlowSpec>& from) {
      std::vector<std::shared_ptr<FlowRuntime>> made;
      made.reserve(from.size());
      for (auto& s : from) {
        auto type = registry_.find(s.type);
        made.push_back(FlowRuntime::create(&services_, std::move(s), type, Desired::kStopped, 0));
      }
      return made;
    };
    std::vector<std::shared_ptr<FlowRuntime>> made;
    std::future<std::vector<std::shared_ptr<FlowRuntime>>> building;
    if (specs.size() >= kParallelBuild) {
      building = std::async(std::launch::async, build, std::ref(specs));
    } else {
      made = build(specs);
    }
    auto stored = store_->insertFlows(rows, audit.get());
    if (building.valid()) made = building.get();
    if (!stored.ok()) return stored.error();
    unschedule.armed = false;
    std::vector<std::string> with_edges;
    for (const auto& flow : made) {
      if (!flow->after().empty()) with_edges.push_back(flow->id());
    }
    markEdgesMade(with_edges);
    for (size_t i = 0; i < made.size(); ++i) {
      auto& flow = made[i];
      flow->setIncarnation(stored.value()[i]);
      ids.push_back(flow->id());
      if (cluster_) {
        flow->setLocal(false);  // runs where the leader assigns it
        flow->writeBegins();
        flow->writeEnds(nextWriteMark());
      }
      flows_.emplace(flow->id(), flow);
      order_.push_back(flow);
      publishConfig(flow->id(), "created");
    }
  }
  invalidateList();
  spdlog::info("created {} flows", ids.size());
  return ids;
}

void Engine::update(FlowSpec spec, std::function<void(Result<std::string>)> done, AuditPtr audit,
                    std::optional<std::vector<std::string>> if_match) {
  auto flow = findFresh(spec.id);
  if (!flow) {
    // With If-Match, no tag can match a flow that does not exist (RFC 9110 13.1.1): 412.
    done(Error{if_match ? ErrorKind::kPrecondition : ErrorKind::kNotFound,
               "flow '" + spec.id + "' does not exist",
               {}});
    return;
  }
  auto problems = checkAgainstTypes({spec});
  uint64_t pending = 0;
  {
    // Against the catalog with the edges of the updates still being applied; this update's
    // edges count for the checks of others from now until it is applied or fails.
    std::lock_guard lock(catalog_mu_);
    graphProblems({spec}, false, problems);
    if (problems.empty()) {
      pending_after_[spec.id] = {pending = ++pending_seq_, spec.runtime.after};
      if (!spec.runtime.after.empty() && flow->after() != spec.runtime.after) {
        markEdgesMade({spec.id});
      }
    }
  }
  if (!problems.empty()) {
    for (auto& p : problems) p.index.reset();
    std::string msg = problems.size() == 1
                          ? problems[0].message
                          : std::to_string(problems.size()) + " problems in the configuration";
    done(Error{ErrorKind::kInvalid, msg, std::move(problems)});
    return;
  }
  auto type = registry_.find(spec.type);
  std::string record = spec.record_json;
  flow->writeBegins();
  FlowSpec scheduled = spec;
  flow->update(
      std::move(spec), type,
      [this, done, record, scheduled = std::move(scheduled), id = flow->id(), pending,
       weak = std::weak_ptr<FlowRuntime>(flow)](const Result<Done>& r) {
        auto f = weak.lock();
        if (f) f->writeEnds(nextWriteMark());
        {
          std::lock_guard lock(catalog_mu_);
          auto p = pending_after_.find(id);
          if (p != pending_after_.end() && p->second.first == pending) pending_after_.erase(p);
        }
        if (r.ok()) {
          std::lock_guard lock(catalog_mu_);
          // Unless it was deleted (or deleted and created again) meanwhile.
          if (auto it = flows_.find(id); f && it != flows_.end() && it->second == f) {
            scheduleFlow(id, scheduled, f->desired());
          }
          publishConfig(id, "updated");
          done(record);
        } else {
          done(r.error());
        }
      },
      std::move(audit), std::move(if_match));
}

void Engine::remove(const std::string& id, std::function<void(Result<Outcome>)> done,
                    AuditPtr audit, std::optional<std::vector<std::string>> if_match, bool force) {
  std::shared_ptr<FlowRuntime> flow;
  std::optional<Error> refused;
  if (cluster_) findFresh(id);  // created on another node a moment ago
  {
    std::lock_guard lock(catalog_mu_);
    auto it = flows_.find(id);
    if (it == flows_.end()) {
      refused = Error{if_match ? ErrorKind::kPrecondition : ErrorKind::kNotFound,
                      "flow '" + id + "' does not exist",
                      {}};
    } else if (auto why = mismatch(if_match, it->second->recordJson(), id)) {
      refused = std::move(*why);
    } else if (auto deps = dependentsLocked(id); !force && !deps.empty()) {
      refused = dependentsError(id, deps);
    } else if (auto stored = store_->deleteFlow(id, audit.get()); !stored.ok()) {
      refused = stored.error();
    } else {
      flow = it->second;
      if (cluster_) {
        deleted_[id] = nextWriteMark();  // a re-read older than this keeps it gone
        std::lock_guard placement(placement_mu_);
        local_.erase(id);  // stopped below; its claim goes with its row
      }
      flows_.erase(it);
      order_.erase(std::find(order_.begin(), order_.end(), flow));
      pending_after_.erase(id);
      flow->dropOutput();  // what it writes while it stops goes nowhere
      flow_logs_.remove(id);
      {
        std::lock_guard dag(dag_mu_);
        triggered_.erase(id);
      }
      scheduler_->remove(id);
      {
        std::lock_guard queued(queued_mu_);
        queued_runs_.erase(id);
      }
      invalidateList();  // before any callback: a GET after the answer never sees the flow
      // Still under the catalog lock: a command accepted before this one is queued before the
      // removal's stop, and none can be accepted after it.
      Store* store = store_.get();
      const Incarnation incarnation = flow->incarnation();
      flow->remove([this, done, store, incarnation, id](const Outcome& o) {
        // After the stop: the step in flight has written its last checkpoint, and the binding
        // refuses later writes. State of an incarnation left behind (a crash before this line)
        // is dropped when the store opens.
        auto r = store->deleteState(incarnation);
        if (!r.ok()) spdlog::error("flow {}: {}", id, r.error().message);

        publishConfig(id, "deleted");  // after the flow's last transitions
        done(o);
      });
    }
  }
  if (refused) {
    done(std::move(*refused));  // outside the lock
    return;
  }
  spdlog::info("flow {} deleted", id);
}

std::optional<FlowStatus> Engine::status(const std::string& id) {
  auto flow = findFresh(id);
  if (!flow) return std::nullopt;
  return statusOf(*flow);
}

std::vector<FlowStatus> Engine::statusAll() const {
  std::vector<std::shared_ptr<FlowRuntime>> order;
  {
    std::lock_guard lock(catalog_mu_);
    order = order_;
  }
  std::vector<FlowStatus> out;
  out.reserve(order.size());
  for (const auto& f : order) out.push_back(statusOf(*f));
  return out;
}

Engine::FlowCounts Engine::countFlows() const {
  FlowCounts counts;
  if (cluster_) {  // a flow another node runs is in the state its owner published
    for (const auto& s : statusAll()) {
      ++counts.actual[static_cast<size_t>(s.state)];
      ++counts.desired[static_cast<size_t>(s.desired)];
      ++counts.total;
    }
    return counts;
  }
  std::lock_guard lock(catalog_mu_);
  counts.total = order_.size();
  for (const auto& f : order_) {
    ++counts.actual[static_cast<size_t>(f->state())];
    ++counts.desired[static_cast<size_t>(f->desired())];
  }
  return counts;
}

std::vector<FlowStatus> Engine::statusOfIds(const std::vector<std::string>& ids) const {
  std::vector<std::shared_ptr<FlowRuntime>> found;
  for (const auto& id : std::set<std::string>(ids.begin(), ids.end())) {
    if (auto f = find(id)) found.push_back(std::move(f));
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a->incarnation() < b->incarnation(); });
  std::vector<FlowStatus> out;
  out.reserve(found.size());
  for (const auto& f : found) out.push_back(statusOf(*f));
  return out;
}

bool Engine::shutdown() {
  scheduler_->stop();  // no scheduled start from here on
  if (coordinator_) {
    // First the control loop: nothing is claimed or started from here on. The object stays
    // (the membership may still fence this node while the flows stop).
    feed_.removeListener(feed_listener_);
    coordinator_->stop();
  }
  std::vector<std::shared_ptr<FlowRuntime>> order;
  {
    std::lock_guard lock(catalog_mu_);
    if (shut_down_) return true;
    shut_down_ = true;
    order = order_;
  }
  struct Latch {
    std::mutex mu;
    std::condition_variable cv;
    size_t remaining;
  };
  auto latch = std::make_shared<Latch>();
  latch->remaining = order.size();
  // Each flow answers within its own stop timeout plus the hard bound; wait for the longest.
  uint32_t bound_ms = kHardStopBoundMs;
  for (const auto& f : order) {
    bound_ms = std::max(bound_ms, f->stopBudgetMs());
    f->shutdownStop([latch](const Outcome&) {
      std::lock_guard lock(latch->mu);
      if (--latch->remaining == 0) latch->cv.notify_all();
    });
  }
  bound_ms += 1000;
  bool clean;
  {
    std::unique_lock lock(latch->mu);
    clean = latch->cv.wait_for(lock, std::chrono::milliseconds(bound_ms),
                               [&] { return latch->remaining == 0; });
  }
  runs_.stop();  // the last runs' records are stored
  timer_.shutdown();
  clean = pool_.shutdown(std::chrono::milliseconds(1000)) && clean;
  for (const auto& f : order) f->dropQueuedOps();
  feed_.close();  // after the flows' last transitions: subscribers read them, then end
  spdlog::info("engine stopped{}", clean ? "" : " (some plugin code did not return in time)");
  return clean;
}

}  // namespace sluice
