// One flow: its configuration, its state machine and its plugin instance.
//
// Every operation that calls plugin code runs on the flow's strand: one at a time, in the order
// submitted, on a worker of the engine's pool (never on the caller's thread). Each command has a
// deadline enforced by the timer thread, so a caller is always answered even when plugin code
// never returns. Reading the status never waits on plugin code.
//
// The code is split by job (docs/architecture.md, "Runtime units"):
//   flow_runtime.cpp   acceptance and submission of commands, deadlines and the kill policy,
//                      the state machine of start/pause/resume/stop
//   flow_update.cpp    update (PUT) with rollback
//   flow_instance.cpp  the instance's life: hook calls, create/start, stop/destroy, steps, the
//                      dedicated thread, host deaths
//   flow_restart.cpp   the restart policy's scheduling
//   flow_runs.cpp      the runs: when one begins and ends, how it ended, a finished run;
//                      pause and resume of a scheduled flow with no run going on
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/events/change_feed.hpp"
#include "core/isolation/instance.hpp"
#include "core/metrics/histogram.hpp"
#include "core/model/errors.hpp"
#include "core/model/flow_spec.hpp"
#include "core/model/run_record.hpp"
#include "core/model/states.hpp"
#include "core/plugins/plugin_registry.hpp"
#include "core/runtime/executor.hpp"
#include "core/runtime/flow_signals.hpp"
#include "core/runtime/flow_status.hpp"
#include "core/runtime/host_binding.hpp"
#include "core/runtime/pending.hpp"
#include "core/runtime/restart_backoff.hpp"
#include "core/runtime/run_recorder.hpp"
#include "core/runtime/runner.hpp"
#include "core/runtime/small_mutex.hpp"
#include "core/runtime/strand.hpp"
#include "core/runtime/timer.hpp"
#include "core/store/store.hpp"

namespace sluice {

/// Bound on a hard stop: how long the engine waits for plugin code after raising cancellation.
inline constexpr uint32_t kHardStopBoundMs = 2'000;
/// How soon a step held back by a lapsed cluster lease looks again.
inline constexpr uint32_t kLeaseRecheckMs = 20;

class FlowRuntime;

/// What a flow needs from the engine. Outlives every FlowRuntime.
struct EngineServices {
  ThreadPool* pool;
  Timer* timer;
  Store* store;
  std::function<void()> records_changed;  // a stored configuration changed (list cache)
  std::string files_root;                 // absolute; handed to plugins through the host table
  std::string host_executable;  // the sluice binary, run with --flow-host for process isolation
  ChangeFeed* feed = nullptr;   // state transitions are published here (none when null)
  std::atomic<uint64_t>* restarts = nullptr;  // counts restarts by the restart policy
  /// Bumped whenever something GET /flows/status shows changes without a feed event (the
  /// operation in progress, its deadline, the desired state, a pending restart).
  std::atomic<uint64_t>* status_changes = nullptr;
  /// Cluster: steps run only until this steady-clock instant (ns since its epoch), which every
  /// lease renewal moves to its send time + TTL/2; the maximum on one node.
  std::atomic<int64_t>* run_until_ns = nullptr;
  /// The newest loaded flow type a configuration's `type` allows (null when none): a start
  /// resolves it again, so that a flow picks up a newer version when it (re)starts.
  std::function<std::shared_ptr<const FlowType>(const std::string&)> resolve_type = nullptr;
  /// A run of the flow ended (stopped, failed or completed): called on an engine thread, never
  /// under the flow's lock (the engine starts a run a schedule queued: docs/orchestration.md).
  std::function<void(const std::string& flow_id)> run_ended = nullptr;
  /// A run finished its work (SLUICE_DONE): the engine stores the flow's desired state
  /// `stopped` and then settles it in memory (settleCompleted), unless a command was accepted
  /// since `command_seq`. Null: the flow does both itself.
  std::function<void(const std::shared_ptr<FlowRuntime>& flow, uint64_t command_seq)> completed =
      nullptr;
  FlowLogs* logs = nullptr;  // the flows' output (host function `output`); null: not kept
  /// Stores the flows' run records in groups (null: they are not stored).
  RunRecorder* runs = nullptr;
  /// How late steps begin after their due time, in seconds (null: not measured).
  metrics::Histogram* step_lateness = nullptr;
  bool mayRun() const {
    return run_until_ns == nullptr || std::chrono::steady_clock::now().time_since_epoch().count() <
                                          run_until_ns->load(std::memory_order_acquire);
  }
};

class FlowRuntime : public std::enable_shared_from_this<FlowRuntime> {
  struct Made {  // only create() can name it: every flow's strand is bound
    explicit Made() = default;
  };

 public:
  using Done = Pending::Done;
  using UpdateDone = std::function<void(const Result<sluice::Done>&)>;

  /// `type` may be null when the flow's type is not loaded: the flow then stays failed. The way
  /// to make one (it binds the flow's strand to the flow's ownership).
  static std::shared_ptr<FlowRuntime> create(EngineServices* services, FlowSpec spec,
                                             std::shared_ptr<const FlowType> type, Desired desired,
                                             Incarnation incarnation);
  /// Use create().
  FlowRuntime(Made, EngineServices* services, FlowSpec spec, std::shared_ptr<const FlowType> type,
              Desired desired, Incarnation incarnation);
  ~FlowRuntime();
  FlowRuntime(const FlowRuntime&) = delete;
  FlowRuntime& operator=(const FlowRuntime&) = delete;

  const std::string& id() const { return id_; }
  Incarnation incarnation() const { return incarnation_; }
  /// For a flow made before the store numbered it (Engine::create builds the runtimes while
  /// the store inserts): only before the flow is published to other threads.
  void setIncarnation(Incarnation incarnation) { incarnation_ = incarnation; }
  FlowStatus status() const;
  std::string recordJson() const;
  Desired desired() const;
  /// The actual state (one atomic read).
  State state() const;
  /// Longest a stop of this flow may take: stop timeout plus the hard-stop bound.
  uint32_t stopBudgetMs() const;
  /// The deadline of command `c` on this flow (runtime.start_timeout_ms, or the stop budget).
  uint32_t commandBudgetMs(Command c, StopMode mode) const;

  /// Why `c` is not allowed now, or nothing when it is (callers hold the engine's catalog lock).
  /// `actual`: the state to judge by instead of this runtime's (a cluster flow that runs on
  /// another node: the state its owner published).
  std::optional<std::string> refusal(Command c, std::optional<State> actual = std::nullopt) const;
  /// The desired state after command `c`.
  static Desired desiredAfter(Command c);
  /// The desired state after command `c` for this flow: as desiredAfter, except that resuming
  /// a scheduled flow paused while no run went on leaves it stopped (its schedule resumes).
  Desired desiredAfterFor(Command c) const;
  /// Whether the flow has a schedule (runtime.schedule).
  bool scheduled() const;
  /// A scheduled flow restored with desired state paused: its schedule is suspended and no run
  /// is started or paused (docs/orchestration.md).
  void restoreIdlePaused();
  /// Its schedule fired, due at `due`: kept with the last run (a schedule with catch_up counts
  /// the firings missed after it, at the next restore). `store` false: the run this firing
  /// starts stores it with its own record (one durable write fewer per firing).
  void noteFiring(SystemTime due, bool store = true);
  /// Whether a scheduled flow is paused with no run going on (its schedule only suspended).
  bool idlePaused() const;
  /// Counts the start, pause and resume commands accepted (a completion yields to them).
  uint64_t commandSeq() const;
  /// After a completion: desired state stopped, unless a start, pause or resume was accepted
  /// since `command_seq` (or waits to run) or the flow was deleted. True when it changed it.
  bool settleCompleted(uint64_t command_seq);
  /// Whether a completion may still set desired stopped (see settleCompleted).
  bool maySettle(uint64_t command_seq) const;
  /// Records that `c` was accepted (its desired state is already stored) and queues it on the
  /// strand in the same step, so that commands run in the order they were accepted. `done` is
  /// called exactly once, on an engine thread, when the flow reached its target, a hook failed,
  /// or the deadline passed. Callers hold the engine's catalog lock.
  void acceptCommand(Command c, StopMode mode, Done done);
  /// Stops the flow (soft, bounded) without touching its desired state: engine shutdown.
  void shutdownStop(Done done);
  /// Replaces the configuration (PUT). A running or paused flow restarts with it; when the new
  /// configuration fails to start the previous one is restored and nothing is stored.
  /// `if_match`, when given, lists the entity tags (contentTag of the stored record) the update
  /// may replace; checked in order with other updates, it fails with kPrecondition otherwise.
  /// `persist` false: the configuration is stored already (a cluster node applying a change
  /// made through another node), so nothing is written.
  void update(FlowSpec spec, std::shared_ptr<const FlowType> type, UpdateDone done,
              AuditPtr audit = nullptr, std::optional<std::vector<std::string>> if_match = {},
              bool persist = true);
  /// Marks the flow deleted: from now on it refuses every command, update and restart. Then
  /// stops (soft, bounded, then hard) and releases the instance; when that is done the host
  /// functions are detached (late plugin code writes no state) and `done` is called. Callers
  /// hold the engine's catalog lock.
  void remove(Done done);
  /// Drops operations still queued once the engine's pool has stopped (they hold references to
  /// the flow and would keep it alive forever).
  void dropQueuedOps();

  // ---- flow_placement.cpp: where a flow of a cluster runs (docs/cluster.md)
  /// Whether this node may run the flow: always on one node; in a cluster only while this node
  /// holds the flow's claim. A flow that is not local never starts or restarts here.
  bool local() const { return local_.load(std::memory_order_acquire); }
  /// This node claimed the flow (or gave it up without running it).
  void setLocal(bool local) { local_.store(local, std::memory_order_release); }
  /// Makes the flow not local and stops it hard (bounded) without touching its desired state:
  /// the flow moved to another node, or this node fenced itself. `done` as for commands.
  void evict(const std::string& why, Done done);
  /// The target of the last accepted command (what the flow is driven to here).
  Desired accepted() const;
  /// A flow that runs on another node: takes the desired state and configuration stored by
  /// any node, for status and validation; nothing runs.
  void adoptRemote(Desired desired);
  void adoptSpec(FlowSpec spec, std::shared_ptr<const FlowType> type);
  /// After a plugin reload: a flow with no instance takes `fresh` as its type (what it would
  /// start on), so that it no longer holds a retired version. A flow with an instance keeps the
  /// code it started with until it restarts or is upgraded.
  void retype(std::shared_ptr<const FlowType> fresh);
  /// The type of the code the flow runs (or would start on); null when none is loaded.
  std::shared_ptr<const FlowType> currentType() const;
  /// The configuration as it stands.
  FlowSpec spec() const;
  /// The configuration as it stands, without a copy (it is immutable; a PUT replaces it).
  std::shared_ptr<const FlowSpec> sharedSpec() const;
  /// The flow type version stored with the flow (the one it last started on).
  void setStoredVersion(std::string version);
  /// The runs stored with the flow (flow_runs.cpp): how many began, and the last one.
  void setRuns(uint64_t runs, RunRecord last);
  /// The last run (the one in progress, if any).
  RunRecord lastRun() const;
  /// From now on the output of the flow's work is dropped (the flow is being deleted).
  void dropOutput();
  /// The last run that ended (runtime.after looks at it while the next one runs).
  RunRecord lastEndedRun() const;
  /// runtime.after of the configuration as it stands.
  std::vector<AfterSpec> after() const;
  /// The next start runs the stored version again, while it is loaded and the pin allows it:
  /// automatic starts (the engine's restore, a failover, the restart policy) never change a
  /// flow's code; a start by command runs the newest version the pin allows.
  void keepStoredVersionOnNextStart() { keep_stored_version_.store(true); }
  /// Writes of this flow made through this node: one begins (in flight until it ends, with the
  /// engine's write mark). A cluster's re-read of the store that began before a write ended
  /// leaves the flow alone (it would undo the write).
  void writeBegins() { writes_in_flight_.fetch_add(1, std::memory_order_acq_rel); }
  void writeEnds(uint64_t mark) {
    last_write_.store(mark, std::memory_order_release);
    writes_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  }
  /// Whether plugin code of this flow still runs on the strand (a hook past its deadline).
  bool codeRunning() const { return hook_state_.load(std::memory_order_acquire) != 0; }
  /// Whether a re-read that began at `mark` may be older than this flow's writes.
  bool writtenSince(uint64_t mark) const {
    return writes_in_flight_.load(std::memory_order_acquire) > 0 ||
           last_write_.load(std::memory_order_acquire) > mark;
  }

 private:
  // ---- flow_runtime.cpp
  void submitCommand(Command c, StopMode mode, Done done);  // submit_mu_ held
  std::shared_ptr<Pending> makePending(std::string operation, uint32_t timeout_ms, Done done);
  void armStopDeadlines(const std::shared_ptr<Pending>& p, StopMode mode, uint32_t stop_timeout_ms);
  void armStartDeadline(const std::shared_ptr<Pending>& p, std::string_view verb,
                        std::chrono::milliseconds after);
  void onDeadline(const std::shared_ptr<Pending>& p, const std::string& why);
  /// Ends plugin code that does not return: kills a process instance, or adds a pool worker in
  /// place of the one it pins. Returns what was done, for the error message.
  std::string killStuckCode();
  void finish(const std::shared_ptr<Pending>& p, const Outcome& outcome);
  void release(const std::shared_ptr<Pending>& p);  // cancels timers, clears the operation
  void beginOperation(const std::shared_ptr<Pending>& p);
  void runCommand(Command c, StopMode mode, const std::shared_ptr<Pending>& p);
  void runStart(const std::function<void(Outcome)>& conclude);
  void runStop(StopMode mode, const std::shared_ptr<Pending>& p);
  void setState(State s, std::string error = {});
  void setStateKeepError(State s);
  bool removed() const;

  // ---- flow_update.cpp
  void runUpdate(FlowSpec spec, std::shared_ptr<const FlowType> type,
                 const std::shared_ptr<Pending>& p, UpdateDone done, AuditPtr audit,
                 const std::optional<std::vector<std::string>>& if_match, bool persist);

  // ---- flow_runs.cpp
  /// A run's record to store: the count, the stored text, and its order among this flow's
  /// writes (a later write never loses to an earlier one).
  struct RunWrite {
    uint64_t runs = 0;
    std::string last_run;
    uint64_t seq = 0;
    bool ended = false;  // the run ended (else it began)
  };
  /// mu_ held: the flow enters state `s` (with `error`): a run begins (starting) or ends
  /// (stopped, failed, completed). Returns what to store, after the lock.
  std::optional<RunWrite> noteRunLocked(State s, const std::string& error, SystemTime now);
  /// mu_ held: the last run's record, made empty the first time.
  RunRecord& lastRunLocked();
  /// Stores `write` and, when a run ended, tells the engine (EngineServices::run_ended).
  void storeRun(const std::optional<RunWrite>& write);
  /// Strand: step or run returned SLUICE_DONE. Stops (soft) and destroys the instance, marks
  /// the flow completed and, unless a command was accepted meanwhile, its desired state
  /// stopped (stored), so that an engine restart does not run a finished job again.
  void completeInstance();

  // ---- flow_restart.cpp
  void scheduleRestartLocked();  // mu_ held: the flow just failed
  /// mu_ held: the actual state changed (`transition`, counted for the metrics) or, while
  /// failed, the error did.
  void publishStateLocked(bool transition);
  void statusTouched() {  // a field of status() changed (see EngineServices::status_changes)
    if (services_->status_changes) services_->status_changes->fetch_add(1);
  }
  void restartNow(uint64_t generation);

  // ---- flow_instance.cpp (strand only)
  /// A borrowed `int32_t(sluice_error*)` callable: a hook call (one per step) allocates nothing.
  class HookFn {
   public:
    template <class F>
    requires(!std::is_same_v<std::decay_t<F>, HookFn>)
        HookFn(F&& f)  // NOLINT(google-explicit-constructor): lambdas convert at the call site
        : obj_(const_cast<void*>(static_cast<const void*>(&f))),
          call_([](void* o, sluice_error* e) -> int32_t {
            return (*static_cast<std::remove_reference_t<F>*>(o))(e);
          }) {}
    int32_t operator()(sluice_error* e) const { return call_(obj_, e); }

   private:
    void* obj_;
    int32_t (*call_)(void*, sluice_error*);
  };
  bool callHook(const char* hook, HookFn fn, std::string* error);
  bool createAndStart(const std::shared_ptr<const FlowSpec>& spec,
                      const std::shared_ptr<const FlowType>& type, std::string* error);
  bool stopAndDestroy(StopMode mode, std::string* error);
  /// Runs the destroy hook and drops the instance; false (and why) when destroy failed.
  bool destroyInstance(std::string* error = nullptr);
  /// Stops (hard, or `mode`) and destroys the instance, if any, under a watchdog of its own: a
  /// failed or finished flow holds nothing.
  void releaseInstance(StopMode mode = StopMode::kHard);
  /// Releases the instance and marks the flow failed with `error`.
  void failInstance(const std::string& error);
  /// Resumes a paused instance and schedules its steps; on failure the flow is failed.
  bool resumeInstance(std::string* error);
  /// Strand: the next step in `delay_ms`, counted from the previous step's due time when
  /// `from_due` (core/runtime/step_due.hpp), else from now.
  void scheduleStep(uint32_t delay_ms, bool from_due = false);
  void runStep(uint64_t generation);
  void startRunner();
  void runEnded(const std::shared_ptr<Runner>& runner);
  /// Asks the dedicated thread to return and waits (bounded); false when it did not return, in
  /// which case the instance now belongs to the thread, which destroys it when it returns.
  bool stopRunner(StopMode mode, std::string* error);
  /// A process instance's host died while no hook ran (called from its reader thread).
  void onInstanceDeath(uint64_t instance_seq, const std::string& how);
  /// Strand: the binding the instances get, made at the first start.
  HostBinding& host();

  EngineServices* services_;  // borrowed, outlives this
  const std::string id_;
  Incarnation incarnation_;  // set once, before the flow is published

  // Serializes acceptance + queueing: commands (engine), restarts (timer) and the removal.
  SmallMutex submit_mu_;

  mutable SmallMutex mu_;
  // guarded by mu_ (the pointer; the spec is immutable): shared with instance_spec_ while the
  // instance runs the stored configuration, so a running flow holds one copy, not two
  std::shared_ptr<const FlowSpec> spec_;
  std::string stored_version_;  // guarded by mu_: see setStoredVersion
  std::atomic<bool> keep_stored_version_{false};
  std::shared_ptr<const FlowType> type_;  // guarded by mu_; null when not loaded
  // written under mu_; read without it by state() (once per step)
  std::atomic<State> state_{State::kStopped};
  std::atomic<Desired> desired_;        // written under mu_; read without it by desired()
  Desired accepted_;                    // guarded by mu_: target of the last accepted command
  SystemTime since_;                    // guarded by mu_
  std::string error_;                   // guarded by mu_
  std::string operation_;               // guarded by mu_
  std::optional<SystemTime> deadline_;  // guarded by mu_
  int pending_commands_ = 0;            // guarded by mu_
  bool removed_ = false;                // guarded by mu_
  RestartBackoff restart_;              // guarded by mu_
  std::optional<SystemTime> next_restart_at_;  // guarded by mu_
  bool idle_paused_ = false;  // guarded by mu_: a scheduled flow paused while no run went on
  uint64_t command_seq_ = 0;  // guarded by mu_: see commandSeq
  int queued_commands_ = 0;   // guarded by mu_: start/pause/resume accepted, not run yet
  uint64_t runs_ = 0;         // guarded by mu_: runs begun
  // Made at the first run or firing: a flow that never ran (most of a million) holds two null
  // pointers, not two records (176 bytes).
  std::unique_ptr<RunRecord> last_run_;    // guarded by mu_; null: never ran nor fired
  std::unique_ptr<RunRecord> last_ended_;  // guarded by mu_: the last run with an end, if any
  bool run_active_ = false;                // guarded by mu_: a run began and did not end
  std::optional<RunResult> end_as_;        // guarded by mu_: how a run that stops now ends
  uint64_t run_writes_ = 0;                // guarded by mu_: numbers RunWrites
  SmallMutex run_store_mu_;                // orders the RunWrites queued for the store
  uint64_t run_queued_ = 0;                // guarded by run_store_mu_: the last RunWrite queued

  FlowSignals signals_;
  // Made with the host binding (the plugin reports them through it), under mu_; then kept.
  std::shared_ptr<FlowMetrics> metrics_;  // the host binding's (aliased)
  // Made at the first start, on the strand, under mu_ (a flow never started has none: 500 bytes
  // less each); read off the strand only under mu_; shared with plugin threads that may
  // outlive the flow.
  std::shared_ptr<HostBinding> host_;
  bool output_dropped_ = false;  // guarded by mu_: see dropOutput
  Strand strand_;                // bound by create(): its turns hold this flow

  // Owned by the strand (touched only by the op in flight).
  std::shared_ptr<Instance> instance_;
  std::shared_ptr<const FlowType> instance_type_;  // type the instance was created from
  std::shared_ptr<const FlowSpec> instance_spec_;  // spec the instance was created from
  uint64_t instance_seq_ = 0;                      // numbers instances, for death reports
  std::shared_ptr<Runner> runner_;  // dedicated thread of the instance, when it has one

  SmallMutex kill_mu_;
  std::shared_ptr<Instance> killable_;  // guarded by kill_mu_: the instance, for deadlines to kill

  std::atomic<const char*> current_hook_{nullptr};  // the hook running on the strand, if any
  // 0 no hook runs, 1 a hook runs, 2 it runs and a replacement worker stands in for its worker
  // (the worker retires when the hook returns).
  std::atomic<int> hook_state_{0};
  std::atomic<uint64_t> step_generation_{0};
  Clock::time_point step_due_{};  // strand only: when the next (or current) step is due
  std::atomic<bool> local_{true};
  std::atomic<int> writes_in_flight_{0};
  std::atomic<uint64_t> last_write_{0};
};

}  // namespace sluice
