// The engine: the catalog of flows, their store, the plugins and the threads that run them.
// Thread-safe; no method waits on plugin code except through a bounded wait, and long operations
// answer through callbacks called on an engine thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/cluster/coordinator.hpp"
#include "core/events/change_feed.hpp"
#include "core/logs/flow_logs.hpp"
#include "core/model/errors.hpp"
#include "core/model/flow_spec.hpp"
#include "core/model/states.hpp"
#include "core/plugins/plugin_registry.hpp"
#include "core/runtime/executor.hpp"
#include "core/runtime/flow_runtime.hpp"
#include "core/runtime/timer.hpp"
#include "core/schedule/scheduler.hpp"
#include "core/store/cluster_store.hpp"
#include "core/store/store.hpp"

namespace sluice {

/// Flow types compiled into the embedding program (docs/embedding.md), registered as a plugin
/// of that name and version. The types are usually sluice::sdk::flowType<MyFlow>().
struct BuiltinPlugin {
  std::string name;
  std::string version = "1.0.0";
  std::vector<const sluice_flow_type*> types;
};

struct EngineOptions {
  std::filesystem::path data_dir = "sluice-data";
  std::string store_url;  // empty = SQLite in data_dir (core/store/store_factory)
  std::vector<std::filesystem::path> plugin_dirs;
  std::filesystem::path files_root;       // empty = <data_dir>/files; created when missing
  std::filesystem::path host_executable;  // sluice binary for process isolation; empty = this one
  size_t workers = 8;                     // engine worker threads running plugin code
  /// How much nicer than the engine's own threads its workers run: 0 = the same (see
  /// docs/configuration.md, `--worker-nice`).
  int worker_nice = 0;
  uint32_t validate_timeout_ms = 5000;  // bound on the validate hooks of one request
  /// Scan every new or changed plugin file in a child process (host_executable --scan-plugin)
  /// before loading it; verdicts are cached in <data_dir>/plugin-cache.
  bool scan_plugins = true;
  uint32_t scan_timeout_ms = 10'000;           // a scan past this is a hung plugin: refused
  std::vector<BuiltinPlugin> builtin_plugins;  // registered before the plugin directories load
  /// The time schedules go by (runtime.schedule); null = the system clock. Tests inject one
  /// (sluice --schedule-clock FILE); the scheduler reads it at least every schedule_poll.
  std::function<std::chrono::system_clock::time_point()> schedule_clock = nullptr;
  std::chrono::milliseconds schedule_poll{1000};
  /// A flow's log (<data_dir>/logs/<id>.log, its work's output) rotates past this size.
  uint64_t flow_log_bytes = 1 << 20;
};

struct CommandRequest {
  Command command = Command::kStart;
  StopMode mode = StopMode::kSoft;
  std::optional<std::vector<std::string>> flow_ids;  // nullopt = every flow
};

/// What an upgrade did to one flow.
struct UpgradeDetail {
  std::string flow_id;
  State state = State::kStopped;
  std::string from;  // version it ran (or would have started on); empty when none was loaded
  std::string to;    // version it runs now (or will start on)
  bool upgraded = false;
  std::string error;  // the new version failed to start (rolled back), or no version matches
};

struct CommandDetail {
  std::string flow_id;
  State state = State::kStopped;
  std::string error;
  bool pending = false;  // in a cluster: the owner had not carried it out within the timeout
};

class Engine final : private cluster::Participant {
 public:
  /// Opens the store options.store_url names (SQLite in options.data_dir by default), loads the
  /// plugins, restores every flow to its desired state (asynchronously).
  static Result<std::unique_ptr<Engine>> open(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// JSON array of every configuration in creation order; rebuilt only after a change.
  std::shared_ptr<const std::string> listJson();
  /// The stored configuration of `id`, compact JSON text.
  std::optional<std::string> getJson(const std::string& id);

  /// Adds flows atomically: every problem is reported (with its index) and nothing is added, or
  /// all are stored (stopped) and their ids returned.
  ///
  /// Every change below takes an optional audit record that is stored in the change's own
  /// transaction (see Store).
  Result<std::vector<std::string>> create(std::vector<FlowSpec> specs, AuditPtr audit = nullptr);
  /// Checks specs as create() would without storing anything.
  std::vector<Problem> validate(const std::vector<FlowSpec>& specs);
  /// Replaces a configuration; `done` gets the stored record.
  /// `if_match`: the entity tags (contentTag of the stored record) the change may replace;
  /// otherwise it fails with kPrecondition and nothing changes.
  void update(FlowSpec spec, std::function<void(Result<std::string>)> done,
              AuditPtr audit = nullptr, std::optional<std::vector<std::string>> if_match = {});
  /// Deletes a flow (stopping it first); `done` gets where the flow's instance ended.
  /// Refused (kInvalid) while other flows list it in runtime.after, unless `force`.
  void remove(const std::string& id, std::function<void(Result<Outcome>)> done,
              AuditPtr audit = nullptr, std::optional<std::vector<std::string>> if_match = {},
              bool force = false);
  /// Validates a command atomically, stores the desired states, applies it to every addressed
  /// flow in parallel; `done` gets one detail per flow in the order addressed. A command for
  /// every flow records their ids in the audit entry.
  void command(const CommandRequest& request,
               std::function<void(Result<std::vector<CommandDetail>>)> done,
               AuditPtr audit = nullptr);

  std::optional<FlowStatus> status(const std::string& id);
  /// The last `tail` lines of the log of `id` (its work's output), oldest first; kNotFound when
  /// no such flow exists.
  Result<std::vector<LogLine>> logs(const std::string& id, size_t tail);
  std::vector<FlowStatus> statusAll() const;
  /// How many flows are in each actual state and each desired state: two atomic reads a flow
  /// and no status built, so a scrape at 1,000,000 flows stays cheap.
  struct FlowCounts {
    std::array<uint64_t, kStateCount> actual{};
    std::array<uint64_t, 3> desired{};  // by Desired
    size_t total = 0;
  };
  FlowCounts countFlows() const;
  /// The statuses of the flows named that exist here, in creation order (no cluster sync).
  std::vector<FlowStatus> statusOfIds(const std::vector<std::string>& ids) const;

  /// One page of flows in creation order: those after `after` that match the filters.
  struct PageQuery {
    size_t limit = SIZE_MAX;
    std::optional<std::string> after;  // a flow id; kInvalid when no such flow exists
    std::optional<State> status;       // actual state
    std::optional<std::string> type;   // flow type name
  };
  template <typename T>
  struct Page {
    std::vector<T> items;
    bool more = false;  // flows after the last item match too
  };
  /// (flow id, configuration JSON) pairs.
  Result<Page<std::pair<std::string, std::string>>> recordsPage(const PageQuery& q) const;
  Result<Page<FlowStatus>> statusPage(const PageQuery& q) const;

  /// Every state transition and committed change, in order (core/events/change_feed.hpp).
  ChangeFeed& feed() { return feed_; }
  const ChangeFeed& feed() const { return feed_; }
  /// Restarts made by the restart policy since the engine started.
  uint64_t restarts() const { return restarts_.load(std::memory_order_relaxed); }
  /// How late the flows' steps began after their due time (seconds).
  const metrics::Histogram& stepLateness() const { return step_lateness_; }
  /// Changes of what GET /flows/status shows that publish no event (see EngineServices); with
  /// feed().last() it tells a cached status document that it is out of date.
  uint64_t statusChanges() const { return status_changes_.load(); }
  /// Ready to serve: the store takes writes, the plugins are scanned, the startup restore is
  /// done and the engine is not shutting down. `reason` says what is missing.
  struct Readiness {
    bool ready = false;
    std::string reason;
  };
  Readiness readiness();
  /// Flows restored at startup whose start (or pause) has not finished yet.
  size_t restoring() const { return restoring_.load(std::memory_order_acquire); }
  const PluginRegistry& plugins() const { return registry_; }
  /// Rescans the plugin directories (POST /plugins/reload, SIGHUP): new versions load beside the
  /// old ones; running flows keep the code they started with. Publishes a plugin event per
  /// loaded, removed or refused file.
  ReloadReport reloadPlugins();
  /// reloadPlugins on an engine worker; `done` is called there.
  void reloadPluginsAsync(std::function<void(const ReloadReport&)> done);
  /// The flows whose current code (or, when not running, resolved type) is each flow type.
  std::map<const FlowType*, std::vector<std::string>> flowsByType() const;
  /// Moves flows to the newest version their `type` allows (ids: nullopt = every flow). A
  /// running or paused flow restarts softly on it; when the new version fails to start, the
  /// old one is started again (rolled back) and the detail says why. A stopped flow will start
  /// on it. Unknown ids: kNotFound and nothing changes.
  void upgrade(const std::optional<std::vector<std::string>>& ids,
               std::function<void(Result<std::vector<UpgradeDetail>>)> done);
  /// The store, for what the edge keeps next to the flows (tokens, the audit log).
  Store& store() { return *store_; }
  /// Live engine workers, replacements for stuck plugin code included.
  size_t workerCount() const { return pool_.size(); }
  /// Tasks waiting for an engine worker, and workers running one.
  size_t workQueued() const { return pool_.queued(); }
  size_t workersBusy() const { return pool_.busy(); }

  /// Stops every flow (soft, bounded by its stop timeout) without changing desired states, and
  /// stops the engine's threads. Returns false when plugin code did not return in time.
  bool shutdown();

  // ---- engine_cluster.cpp: several nodes on one shared store (docs/cluster.md)
  /// Whether the store is shared: then a flow runs only on the node that owns and claimed it,
  /// and nothing starts before joinCluster.
  bool clustered() const { return cluster_ != nullptr; }
  /// Starts the cluster's control loop as node `node_id` (no-op on one node). `leading` says
  /// whether this node holds the leadership now.
  void joinCluster(const std::string& node_id, std::chrono::milliseconds ttl,
                   std::function<bool()> leading);
  /// The membership could not renew the lease for TTL/2: every flow stops here at once (hard),
  /// without waiting on the catalog or the store.
  void fence(const std::string& why);
  /// The lease was renewed again: claim and run what this node owns.
  void unfence();
  /// A renewal sent at `sent` succeeded: steps may run until sent + TTL/2 (after which the
  /// fence comes); called before unfence.
  void leaseRenewed(std::chrono::steady_clock::time_point valid_until);
  /// How many flows the catalog holds.
  size_t flowCount() const;
  /// Flows per owner node, from the ownership rows.
  std::map<std::string, size_t> flowsPerNode() const;

 private:
  // From this many flows on, a POST builds the runtimes on a second thread while the store
  // inserts the rows, and a restore builds them on every core.
  static constexpr size_t kParallelBuild = 1000;

  Engine(const EngineOptions& options, std::unique_ptr<Store> store);
  void restore(std::vector<StoredFlow> flows);  // engine_restore.cpp
  void publishPlugins();
  /// The `plugin` events: a plugin loaded, a file refused (or removed).
  void publishLoaded(const LoadedPlugin& plugin);
  void publishRefused(const std::string& file, const std::string& reason);
  void publishConfig(const std::string& id, std::string_view op);
  /// The flows of a page query (shared by recordsPage and statusPage).
  Result<std::vector<std::shared_ptr<FlowRuntime>>> pageFlows(const PageQuery& q, bool* more) const;
  std::shared_ptr<FlowRuntime> find(const std::string& id) const;
  std::vector<Problem> checkAgainstTypes(const std::vector<FlowSpec>& specs);
  /// Duplicates inside the batch and type/config problems (no lock needed).
  std::vector<Problem> batchProblems(const std::vector<FlowSpec>& specs);
  /// Ids that exist already; appends and sorts by index. Caller holds catalog_mu_.
  void existingProblems(const std::vector<FlowSpec>& specs, std::vector<Problem>& problems);
  void invalidateList();
  /// What GET /flows/status shows of `flow`: in a cluster, the owner's published status for a
  /// flow that runs elsewhere, with the owner node and its epoch.
  FlowStatus statusOf(const FlowRuntime& flow) const;

  // Dependencies, runtime.after (engine_dag.cpp).
  /// catalog_mu_ held: upstreams that do not exist, and cycles, of `specs` put in the catalog
  /// (`creating`: problems carry the index of the spec).
  void graphProblems(const std::vector<FlowSpec>& specs, bool creating,
                     std::vector<Problem>& problems) const;
  /// catalog_mu_ held: the flows that list `id` in runtime.after, in creation order.
  /// Upstream runs that ended before these flows' edges were made do not count for them:
  /// their marks are now. Before they are published, or once an update changed their edges.
  void markEdgesMade(const std::vector<std::string>& ids);
  std::vector<std::string> dependentsLocked(const std::string& id) const;
  /// catalog_mu_ held: runtime.after of `flow`, as an update being applied will make it.
  std::vector<AfterSpec> afterLocked(const FlowRuntime& flow) const;
  /// Why `id` may not be deleted: `deps` run after it.
  static Error dependentsError(const std::string& id, const std::vector<std::string>& deps);
  /// The edges of runtime.after of `flow` not met yet (catalog_mu_ not held).
  std::vector<FlowStatus::AfterWait> unmetAfter(const FlowRuntime& flow,
                                                const std::vector<AfterSpec>& edges) const;
  /// A run of `upstream` ended: starts the flows whose every edge is now met.
  void startDependents(const std::string& upstream);

  // ---- engine_schedule.cpp (docs/orchestration.md)
  /// Gives the scheduler the flow's schedule (or takes it away): from now, or at the restore
  /// from the flow's last run when it catches up. A flow whose desired state is paused has its
  /// schedule suspended.
  void scheduleFlow(const std::string& id, const FlowSpec& spec, Desired desired,
                    const RunRecord* restored_last_run = nullptr);
  /// Schedules fired: starts the idle flows (with one command), and for each flow whose run
  /// still goes on skips, queues or replaces it.
  void onScheduleFires(const std::vector<schedule::Scheduler::Firing>& firings);
  /// One firing: true when the flow is idle and is to start; otherwise applies the overlap
  /// rule (or nothing, for a paused flow).
  bool fireOne(const std::string& id, SystemTime due);
  /// Starts fired flows with one command; when it is refused (`first`), once more without the
  /// flows the refusal names. A firing whose start is refused is stored on its own.
  void startFired(const std::vector<schedule::Scheduler::Firing>& firings, bool first);
  /// A run ended: a run the schedule queued starts now.
  void onRunEnded(const std::string& id);
  /// A run finished its work: desired state stopped, stored first (docs/api.md, completed).
  void onCompleted(const std::shared_ptr<FlowRuntime>& flow, uint64_t command_seq);
  /// Starts flows through the command path, in one command (one by one when it is refused: a
  /// flow deleted meanwhile does not keep the others from starting).
  void startScheduled(const std::vector<std::string>& ids, const char* why);
  void startScheduled(const std::string& id, const char* why) {
    startScheduled(std::vector<std::string>{id}, why);
  }
  /// A runtime for a stored flow (its configuration parsed again; kept verbatim when invalid).
  std::shared_ptr<FlowRuntime> makeRuntime(const StoredFlow& f);
  /// Cluster: the flow, after a round of the control loop when it is not known here yet (it
  /// may have been created on another node a moment ago).
  std::shared_ptr<FlowRuntime> findFresh(const std::string& id);
  /// Cluster: a command's flow that runs on another node, answered once its owner's status
  /// shows the target, or with the current state and pending past the command's timeout.
  struct RemoteWait {
    std::shared_ptr<FlowRuntime> flow;
    Desired target;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(const Outcome&, bool pending)> done;
  };
  /// The state, error and since of statusOf, without the metrics (polled often).
  struct Brief {
    State state;
    std::string error;
    SystemTime since;
  };
  Brief briefStatus(const FlowRuntime& flow) const;
  /// Checks every wait of one command on the timer thread until each is answered.
  void awaitRemote(std::shared_ptr<std::vector<RemoteWait>> waits, SystemTime since);

  // cluster::Participant (called on the coordinator's thread)
  uint64_t catalogMark() override { return write_marks_.load(std::memory_order_acquire); }
  void syncCatalog(std::vector<StoredFlow> stored, uint64_t mark) override;
  uint64_t nextWriteMark() { return write_marks_.fetch_add(1, std::memory_order_acq_rel) + 1; }
  void setOwners(const std::vector<OwnerRow>& owners) override;
  void placeClaims(const std::vector<Claim>& claims, const std::string& why) override;
  /// Stops a flow that runs here (hard); its claim is released once it stopped.
  void evictLocal(const std::shared_ptr<FlowRuntime>& flow, uint64_t epoch, const std::string& why);
  std::vector<Claim> takeReleases() override;
  bool awaitsClaims() override;
  std::vector<SharedStatus> localStatus(bool all) override;
  void applyRemoteStatus(const std::vector<SharedStatus>& rows) override;

  EngineOptions options_;
  ChangeFeed feed_;  // before everything that publishes to it
  std::atomic<uint64_t> restarts_{0};
  metrics::Histogram step_lateness_{metrics::Histogram::defaultLatencyBounds()};
  std::atomic<uint64_t> status_changes_{0};
  std::atomic<int64_t> run_until_ns_{INT64_MAX};  // cluster: see EngineServices::run_until_ns
  std::atomic<size_t> restoring_{0};
  std::unique_ptr<Store> store_;
  PluginRegistry registry_;
  ThreadPool pool_;
  Timer timer_;
  RunRecorder runs_;    // after store_: stopped (everything written) before the store closes
  FlowLogs flow_logs_;  // outlives the flows, which write to it until they are destroyed
  EngineServices services_;

  mutable std::mutex catalog_mu_;  // serializes catalog changes; held while storing them
  std::map<std::string, std::shared_ptr<FlowRuntime>> flows_;  // guarded by catalog_mu_
  std::vector<std::shared_ptr<FlowRuntime>> order_;            // guarded by catalog_mu_
  bool shut_down_ = false;                                     // guarded by catalog_mu_

  std::mutex probe_mu_;  // the store probe of readiness(): one at a time, on a worker
  std::chrono::steady_clock::time_point probed_at_{};  // guarded by probe_mu_
  std::string probe_error_;                            // guarded by probe_mu_
  bool probing_ = false;                               // guarded by probe_mu_

  // Cluster (null / empty on one node).
  ClusterStore* cluster_ = nullptr;
  std::string node_id_;
  std::unique_ptr<cluster::Coordinator> coordinator_;
  uint64_t feed_listener_ = 0;
  mutable std::mutex placement_mu_;
  struct LocalRun {
    std::shared_ptr<FlowRuntime> flow;
    uint64_t epoch = 0;
  };
  std::unordered_map<std::string, LocalRun> local_;       // guarded: the flows claimed here
  bool fenced_ = false;                                   // guarded by placement_mu_
  std::unordered_map<std::string, OwnerRow> owners_;      // guarded by placement_mu_
  std::unordered_map<std::string, SharedStatus> remote_;  // guarded: other nodes' status
  std::atomic<uint64_t> write_marks_{0};               // numbers the writes made through this node
  std::unordered_map<std::string, uint64_t> deleted_;  // guarded by catalog_mu_: id, write mark
  // guarded by placement_mu_: flows stopped here (or whose stop gave up while their plugin
  // code still ran) with the epoch they ran at; their claims are released once no code runs
  std::vector<std::pair<std::shared_ptr<FlowRuntime>, uint64_t>> releases_;
  struct Published {
    State state;
    std::string error;
    SystemTime since;
    std::string metrics;
  };
  std::unordered_map<std::string, Published> published_;  // coordinator thread only

  std::mutex dag_trigger_mu_;  // one dependency check-and-start at a time
  /// Bumped after every catalog change (invalidateList, restore): the reverse index of
  /// runtime.after below is rebuilt from it, not scanned at every run end.
  std::atomic<uint64_t> graph_generation_{0};
  // guarded by catalog_mu_: upstream id -> the flows that list it, as of dependents_generation_
  std::unordered_map<std::string, std::vector<std::string>> dependents_;
  uint64_t dependents_generation_ = UINT64_MAX;  // guarded by catalog_mu_; MAX: never built
  /// The generation whose index was found empty (no flow lists another in runtime.after), MAX
  /// when none: until the catalog changes, a run's end has no dependents to look for, and a
  /// stop of 100,000 flows posts no 100,000 look-ups that each take the catalog lock.
  std::atomic<uint64_t> no_dependents_at_{UINT64_MAX};
  // guarded by catalog_mu_: runtime.after of updates accepted and not applied yet (sequence)
  std::map<std::string, std::pair<uint64_t, std::vector<AfterSpec>>> pending_after_;
  uint64_t pending_seq_ = 0;  // guarded by catalog_mu_
  mutable std::mutex dag_mu_;
  // guarded by dag_mu_: from when upstream runs count for a flow (beyond its own last start):
  // its last start by `after`, or when its edges were made
  std::map<std::string, SystemTime> triggered_;

  // Schedules: declared last, destroyed first (its thread calls into the catalog).
  std::mutex queued_mu_;
  std::set<std::string> queued_runs_;  // guarded by queued_mu_: runs a schedule queued

  std::mutex list_mu_;
  std::shared_ptr<const std::string> list_cache_;  // guarded by list_mu_; null = stale
  uint64_t list_generation_ = 0;  // guarded by list_mu_: bumped by every change of the list

  std::unique_ptr<schedule::Scheduler> scheduler_;
};

}  // namespace sluice
