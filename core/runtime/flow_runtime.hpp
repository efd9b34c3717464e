// One flow: its configuration, its state machine and its plugin instance.
//
// Every operation that calls plugin code runs on the flow's strand: one at a time, in the order
// submitted, on a worker of the engine's pool (never on the caller's thread). Each command has a
// deadline enforced by the timer thread, so a caller is always answered even when plugin code
// never returns. Reading the status never waits on plugin code.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/isolation/instance.hpp"
#include "core/model/errors.hpp"
#include "core/model/flow_spec.hpp"
#include "core/model/states.hpp"
#include "core/plugins/plugin_registry.hpp"
#include "core/runtime/executor.hpp"
#include "core/store/store.hpp"

namespace sluice {

/// Bound on a hard stop: how long the engine waits for plugin code after raising cancellation.
inline constexpr uint32_t kHardStopBoundMs = 2'000;

using SystemTime = std::chrono::system_clock::time_point;

/// A snapshot of a flow for GET /flows/status.
struct FlowStatus {
  std::string id;
  std::string type;
  State state = State::kStopped;
  Desired desired = Desired::kStopped;
  SystemTime since;
  std::string error;  // last error, empty when none
  std::vector<std::pair<std::string, int64_t>> counters;
  std::vector<std::pair<std::string, double>> gauges;
  std::string operation;                      // command in progress, empty when none
  std::optional<SystemTime> deadline;         // its deadline
  bool restarts = false;                      // runtime.restart.policy is on-failure
  uint32_t restart_count = 0;                 // restarts since the last clean run
  std::optional<SystemTime> next_restart_at;  // a restart is pending
};

/// Where a command left a flow.
struct Outcome {
  State state = State::kStopped;
  std::string error;
};

/// What a flow needs from the engine. Outlives every FlowRuntime.
struct EngineServices {
  ThreadPool* pool;
  Timer* timer;
  Store* store;
  std::function<void()> records_changed;
  std::string files_root;       // absolute; handed to plugins through the host table
  std::string host_executable;  // the sluice binary, run with --flow-host for process isolation  //
                                // a stored configuration changed (cache invalidation)
};

class FlowRuntime : public std::enable_shared_from_this<FlowRuntime> {
 public:
  using Done = std::function<void(const Outcome&)>;
  using UpdateDone = std::function<void(const Result<sluice::Done>&)>;

  /// `type` may be null when the flow's type is not loaded: the flow then stays failed.
  FlowRuntime(EngineServices* services, FlowSpec spec, std::shared_ptr<const FlowType> type,
              Desired desired);
  ~FlowRuntime();
  FlowRuntime(const FlowRuntime&) = delete;
  FlowRuntime& operator=(const FlowRuntime&) = delete;

  const std::string& id() const { return id_; }
  FlowStatus status() const;
  std::string recordJson() const;
  Desired desired() const;
  /// Longest a stop of this flow may take: stop timeout plus the hard-stop bound.
  uint32_t stopBudgetMs() const;

  /// Why `c` is not allowed now, or nothing when it is (callers hold the engine's catalog lock).
  std::optional<std::string> refusal(Command c) const;
  /// The desired state after command `c`.
  Desired desiredAfter(Command c) const;
  /// Records that `c` was accepted (its desired state is already stored).
  void accept(Command c);

  /// Applies a command; `done` is called exactly once, on an engine thread, when the flow
  /// reached its target, a hook failed, or the deadline passed.
  void command(Command c, StopMode mode, Done done);
  /// Stops the flow (soft, bounded) without touching its desired state: engine shutdown.
  void shutdownStop(Done done);
  /// Replaces the configuration (PUT). A running or paused flow restarts with it; when the new
  /// configuration fails to start the previous one is restored and nothing is stored.
  void update(FlowSpec spec, std::shared_ptr<const FlowType> type, UpdateDone done);
  /// Stops (soft, bounded, then hard) and releases the instance of a deleted flow.
  void remove(Done done);
  /// Called by a process instance's host when it dies while no hook runs.
  void onInstanceDeath(const std::shared_ptr<Instance>& instance, const std::string& how);
  /// Drops operations still queued once the engine's pool has stopped (they hold references to
  /// the flow and would keep it alive forever).
  void dropQueuedOps();

 private:
  struct Pending;
  struct HostBinding;
  struct Runner;

  void post(std::function<void()> op);
  void drain();
  std::shared_ptr<Pending> makePending(std::string operation, uint32_t timeout_ms, Done done);
  void armStopDeadlines(const std::shared_ptr<Pending>& p, StopMode mode, uint32_t stop_timeout_ms);
  void onDeadline(const std::shared_ptr<Pending>& p, const std::string& why);
  void finish(const std::shared_ptr<Pending>& p, const Outcome& outcome);
  void release(const std::shared_ptr<Pending>& p);  // cancels timers, clears the operation

  void runCommand(Command c, StopMode mode, const std::shared_ptr<Pending>& p);
  void runStop(StopMode mode, const std::shared_ptr<Pending>& p);
  void runUpdate(FlowSpec spec, std::shared_ptr<const FlowType> type,
                 const std::shared_ptr<Pending>& p, UpdateDone done);
  void runStep(uint64_t generation);
  void startRunner();
  void runEnded(const std::shared_ptr<Runner>& runner);
  /// Asks the dedicated thread to return and waits (bounded); false when it did not return, in
  /// which case the instance now belongs to the thread, which destroys it when it returns.
  bool stopRunner(StopMode mode, std::string* error);

  // Instance management; strand only.
  bool createAndStart(const FlowSpec& spec, const std::shared_ptr<const FlowType>& type,
                      std::string* error);
  bool stopAndDestroy(StopMode mode, std::string* error);
  void destroyInstance();
  /// Stops (hard) and destroys the instance, if any: a failed flow holds nothing.
  void releaseInstance();
  /// Releases the instance and marks the flow failed with `error`.
  void failInstance(const std::string& error);
  /// Resumes a paused instance and schedules its steps; on failure the flow is failed.
  bool resumeInstance(std::string* error);
  bool callHook(const char* hook, const std::function<int32_t(sluice_error*)>& fn,
                std::string* error);
  void scheduleStep(uint32_t delay_ms);
  void setState(State s, std::string error = {});
  void scheduleRestartLocked();  // mu_ held: the flow just failed
  void restartNow(uint64_t generation);
  void setStateKeepError(State s);
  State state() const;

  // Host functions.
  static void hostLog(void* ctx, int32_t level, const char* msg, size_t len);
  static void hostCounterAdd(void* ctx, const char* name, size_t len, int64_t delta);
  static void hostGaugeSet(void* ctx, const char* name, size_t len, double value);
  static int32_t hostIsCancelled(void* ctx);
  static int32_t hostIsPaused(void* ctx);
  static int32_t hostIsStopRequested(void* ctx);
  static int64_t hostNowMs(void* ctx);
  static int32_t hostStateGet(void* ctx, const char* key, size_t len, sluice_value_sink sink,
                              void* sink_ctx);
  static int32_t hostStatePut(void* ctx, const char* key, size_t len, const char* value,
                              size_t value_len);
  static int32_t hostStateDelete(void* ctx, const char* key, size_t len);

  EngineServices* services_;  // borrowed, outlives this
  const std::string id_;

  mutable std::mutex mu_;
  FlowSpec spec_;                         // guarded by mu_
  std::shared_ptr<const FlowType> type_;  // guarded by mu_; null when not loaded
  State state_ = State::kStopped;         // guarded by mu_
  Desired desired_;                       // guarded by mu_
  Desired accepted_;                      // guarded by mu_: target of the last accepted command
  SystemTime since_;                      // guarded by mu_
  std::string error_;                     // guarded by mu_
  std::string operation_;                 // guarded by mu_
  std::optional<SystemTime> deadline_;    // guarded by mu_
  int pending_commands_ = 0;              // guarded by mu_
  bool removed_ = false;                  // guarded by mu_
  uint32_t restart_count_ = 0;            // guarded by mu_
  uint64_t restart_generation_ = 0;       // guarded by mu_: voids a pending restart when bumped
  std::optional<SystemTime> next_restart_at_;       // guarded by mu_
  std::optional<Clock::time_point> running_since_;  // guarded by mu_: last time it reached running

  mutable std::mutex metrics_mu_;
  std::map<std::string, int64_t> counters_;  // guarded by metrics_mu_
  std::map<std::string, double> gauges_;     // guarded by metrics_mu_

  std::mutex strand_mu_;
  std::deque<std::function<void()>> ops_;  // guarded by strand_mu_
  bool strand_active_ = false;             // guarded by strand_mu_

  // Owned by the strand (touched only by the op in flight).
  std::shared_ptr<Instance> instance_;
  std::shared_ptr<const FlowType> instance_type_;  // type the instance was created from
  FlowSpec instance_spec_;                         // spec the instance was created from
  std::shared_ptr<HostBinding> host_;  // shared with plugin threads that may outlive the flow
  std::shared_ptr<Runner> runner_;     // dedicated thread of the instance, when it has one

  std::mutex kill_mu_;
  std::shared_ptr<Instance> killable_;  // guarded by kill_mu_: the instance, for deadlines to kill

  std::atomic<const char*> current_hook_{nullptr};  // the hook running on the strand, if any
  std::atomic<bool> cancel_{false};
  std::atomic<bool> pause_requested_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<uint64_t> step_generation_{0};
};

std::string formatTime(SystemTime t);

}  // namespace sluice
