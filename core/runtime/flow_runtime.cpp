// Acceptance and submission of commands, and the state machine of start, pause, resume and stop
// (deadlines and the kill policy: flow_deadlines.cpp). See flow_runtime.hpp for the other units
// of FlowRuntime.
#include "core/runtime/flow_runtime.hpp"

#include <spdlog/spdlog.h>

#include "core/model/json.hpp"
#include "core/model/semver.hpp"

namespace sluice {

FlowRuntime::FlowRuntime(Made, EngineServices* services, FlowSpec spec,
                         std::shared_ptr<const FlowType> type, Desired desired,
                         Incarnation incarnation)
    : services_(services),
      id_(spec.id),
      incarnation_(incarnation),
      spec_(std::make_shared<const FlowSpec>(std::move(spec))),
      type_(std::move(type)),
      desired_(desired),
      accepted_(desired),
      since_(std::chrono::system_clock::now()),
      strand_(services->pool) {
  if (!type_) {
    state_ = State::kFailed;
    error_ = "flow type '" + spec_->type + "' is not loaded";
  }
}

std::shared_ptr<FlowRuntime> FlowRuntime::create(EngineServices* services, FlowSpec spec,
                                                 std::shared_ptr<const FlowType> type,
                                                 Desired desired, Incarnation incarnation) {
  auto flow = std::make_shared<FlowRuntime>(Made{}, services, std::move(spec), std::move(type),
                                            desired, incarnation);
  flow->strand_.bind(std::shared_ptr<Strand>(flow, &flow->strand_));
  return flow;
}

HostBinding& FlowRuntime::host() {
  if (!host_) {
    auto host = std::make_shared<HostBinding>(id_, incarnation_, services_->files_root,
                                              services_->store, &signals_, services_->logs);
    std::shared_ptr<FlowMetrics> metrics(host, &host->metrics());
    std::lock_guard lock(mu_);
    if (output_dropped_) host->dropOutput();
    host_ = std::move(host);
    metrics_ = std::move(metrics);
  }
  return *host_;
}

void FlowRuntime::dropOutput() {
  std::lock_guard lock(mu_);
  output_dropped_ = true;
  if (host_) host_->dropOutput();
}

FlowRuntime::~FlowRuntime() {
  if (host_) host_->detach();  // plugin threads that outlive the flow see it cancelled
  // Every op holds a reference, so no op is in flight here. An instance left means the engine
  // shut down without stopping this flow; release it.
  if (instance_) {
    std::string ignored;
    signals_.raiseStop();
    if (!runner_ || stopRunner(StopMode::kHard, &ignored)) destroyInstance();
  }
}

// ---- reads ------------------------------------------------------------------------------------

void FlowRuntime::retype(std::shared_ptr<const FlowType> fresh) {
  std::lock_guard lock(mu_);
  // The old type is released after the lock (fresh holds it): unloading runs plugin code.
  if (state_ == State::kStopped || state_ == State::kFailed || state_ == State::kCompleted) {
    std::swap(type_, fresh);
  }
}

std::shared_ptr<const FlowType> FlowRuntime::currentType() const {
  std::lock_guard lock(mu_);
  return type_;
}

void FlowRuntime::setStoredVersion(std::string version) {
  std::lock_guard lock(mu_);
  stored_version_ = std::move(version);
}

FlowSpec FlowRuntime::spec() const {
  std::lock_guard lock(mu_);
  return *spec_;
}

std::shared_ptr<const FlowSpec> FlowRuntime::sharedSpec() const {
  std::lock_guard lock(mu_);
  return spec_;
}

std::string FlowRuntime::recordJson() const {
  std::lock_guard lock(mu_);
  return spec_->record_json;
}

Desired FlowRuntime::desired() const { return desired_.load(); }

uint32_t FlowRuntime::stopBudgetMs() const {
  std::lock_guard lock(mu_);
  return spec_->runtime.stop_timeout_ms + kHardStopBoundMs;
}

State FlowRuntime::state() const { return state_.load(); }

bool FlowRuntime::removed() const {
  std::lock_guard lock(mu_);
  return removed_;
}

void FlowRuntime::setState(State s, std::string error) {
  std::unique_lock lock(mu_);
  // One clock read (under the lock: `since` follows the order of transitions) for the run's
  // record and the state's `since`.
  const SystemTime now = std::chrono::system_clock::now();
  const auto run_write = noteRunLocked(s, error, now);
  const bool newly_failed = s == State::kFailed && state_ != State::kFailed;
  if (state_ != s || error_ != error) {
    if (s == State::kFailed) {
      spdlog::error("flow {}: {} -> {}: {}", id_, toString(state_), toString(s), error);
    } else {
      spdlog::info("flow {}: {} -> {}", id_, toString(state_), toString(s));
    }
    since_ = now;
  }
  const bool transition = state_ != s;
  const bool publish = transition || (s == State::kFailed && error_ != error);
  if (!publish && error_ != error) statusTouched();
  state_ = s;
  error_ = std::move(error);
  if (s == State::kRunning) restart_.onRunning(RestartBackoff::Clock::now());
  if (newly_failed) scheduleRestartLocked();
  if (publish) publishStateLocked(transition);
  lock.unlock();
  storeRun(run_write);
}

void FlowRuntime::setStateKeepError(State s) {
  std::unique_lock lock(mu_);
  const SystemTime now = std::chrono::system_clock::now();
  const auto run_write = noteRunLocked(s, error_, now);
  const bool newly_failed = s == State::kFailed && state_ != State::kFailed;
  if (state_ != s) {
    spdlog::info("flow {}: {} -> {}", id_, toString(state_), toString(s));
    since_ = now;
  }
  const bool publish = state_ != s;
  state_ = s;
  if (newly_failed) scheduleRestartLocked();
  if (publish) publishStateLocked(true);
  lock.unlock();
  storeRun(run_write);
}

// ---- acceptance (engine's catalog lock held) --------------------------------------------------

std::optional<std::string> FlowRuntime::refusal(Command c, std::optional<State> actual) const {
  std::lock_guard lock(mu_);
  if (removed_) return "flow '" + id_ + "' does not exist";
  // A failure counts only once every accepted command has run: a start queued behind it will
  // clear it.
  const bool failed =
      actual ? *actual == State::kFailed : state_ == State::kFailed && pending_commands_ == 0;
  const bool completed = state_ == State::kCompleted && pending_commands_ == 0;
  if (spec_->runtime.schedule) {
    // Pause suspends a schedule whether or not a run goes on; resume resumes a paused one.
    if (c == Command::kPause) return std::nullopt;
    if (c == Command::kResume &&
        (accepted_ == Desired::kRunning || accepted_ == Desired::kPaused)) {
      return std::nullopt;
    }
  }
  const std::string_view now = failed ? "failed" : completed ? "completed" : toString(accepted_);
  switch (c) {
    case Command::kStart:
      if (!type_) return "flow type '" + spec_->type + "' is not loaded";
      return std::nullopt;
    case Command::kStop:
      return std::nullopt;
    case Command::kPause:
      if (!failed && (accepted_ == Desired::kRunning || accepted_ == Desired::kPaused)) {
        return std::nullopt;
      }
      return "cannot pause flow '" + id_ + "': it is " + std::string(now) +
             " (only a running flow can be paused)";
    case Command::kResume:
      if (!failed && (accepted_ == Desired::kRunning || accepted_ == Desired::kPaused)) {
        return std::nullopt;
      }
      return "cannot resume flow '" + id_ + "': it is " + std::string(now) +
             " (only a paused flow can be resumed)";
  }
  return std::nullopt;
}

Desired FlowRuntime::desiredAfter(Command c) {
  switch (c) {
    case Command::kStart:
    case Command::kResume:
      return Desired::kRunning;
    case Command::kStop:
      return Desired::kStopped;
    case Command::kPause:
      return Desired::kPaused;
  }
  return Desired::kStopped;
}

void FlowRuntime::acceptCommand(Command c, StopMode mode, Done done) {
  std::lock_guard submit(submit_mu_);
  {
    std::lock_guard lock(mu_);
    const bool idle =
        accepted_ == Desired::kStopped || state_ == State::kFailed || state_ == State::kCompleted;
    if (c == Command::kPause && spec_->runtime.schedule && accepted_ != Desired::kPaused) {
      idle_paused_ = idle;
    }
    const bool idle_resume = c == Command::kResume && idle_paused_ && accepted_ == Desired::kPaused;
    if (c != Command::kStop) {
      ++command_seq_;
      ++queued_commands_;
    }
    if (c != Command::kPause) idle_paused_ = false;
    accepted_ = idle_resume ? Desired::kStopped : desiredAfter(c);
    desired_ = accepted_;
    statusTouched();
    if (c == Command::kStop || c == Command::kStart) {
      // An operator's stop cancels a pending restart; an operator's start begins a fresh count.
      restart_.reset();
      next_restart_at_.reset();
    }
  }
  submitCommand(c, mode, std::move(done));
}

// ---- submission -------------------------------------------------------------------------------

std::shared_ptr<Pending> FlowRuntime::makePending(std::string operation, uint32_t timeout_ms,
                                                  Done done) {
  auto p = std::make_shared<Pending>(std::move(operation), timeout_ms, std::move(done));
  std::lock_guard lock(mu_);
  ++pending_commands_;
  return p;
}

void FlowRuntime::submitCommand(Command c, StopMode mode, Done done) {
  uint32_t start_timeout_ms, stop_timeout_ms;  // not the whole RuntimeOptions: no copies
  {
    std::lock_guard lock(mu_);
    start_timeout_ms = spec_->runtime.start_timeout_ms;
    stop_timeout_ms = spec_->runtime.stop_timeout_ms;
  }
  std::string op(toString(c));
  if (c == Command::kStop) op += mode == StopMode::kHard ? " (hard)" : " (soft)";
  std::shared_ptr<Pending> p;
  if (c == Command::kStop) {
    const uint32_t budget =
        mode == StopMode::kHard ? kHardStopBoundMs : stop_timeout_ms + kHardStopBoundMs;
    p = makePending(op, budget, std::move(done));
    // A hard stop raises cancellation at once: the step or hook in flight sees it.
    if (mode == StopMode::kHard) {
      signals_.raiseCancel();
      signals_.raiseStop();
    }
    armStopDeadlines(p, mode, stop_timeout_ms);
  } else {
    p = makePending(op, start_timeout_ms, std::move(done));
    armStartDeadline(p, toString(c), std::chrono::milliseconds(start_timeout_ms));
  }
  strand_.post([self = shared_from_this(), c, mode, p] { self->runCommand(c, mode, p); });
}

void FlowRuntime::shutdownStop(Done done) {
  RuntimeOptions rt;
  {
    std::lock_guard lock(mu_);
    rt = spec_->runtime;
  }
  auto p = makePending("stop (shutdown)", rt.stop_timeout_ms + kHardStopBoundMs, std::move(done));
  armStopDeadlines(p, StopMode::kSoft, rt.stop_timeout_ms);
  strand_.post([self = shared_from_this(), p] { self->runStop(StopMode::kSoft, p); });
}

void FlowRuntime::remove(Done done) {
  std::lock_guard submit(submit_mu_);
  {
    std::lock_guard lock(mu_);
    removed_ = true;
    restart_.reset();
    next_restart_at_.reset();
  }
  // The binding as it is when the stop ends: a start queued before this may make it meanwhile.
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  shutdownStop([weak, done = std::move(done)](const Outcome& o) {
    // Stopped (or given up on): no plugin code of this flow may write state from now on (a
    // flow already destroyed detached its binding then).
    if (auto self = weak.lock()) {
      std::shared_ptr<HostBinding> binding;
      {
        std::lock_guard lock(self->mu_);
        binding = self->host_;
      }
      if (binding) binding->detach();
    }
    done(o);
  });
}

void FlowRuntime::dropQueuedOps() { strand_.dropQueued(); }

// ---- the state machine (strand) ---------------------------------------------------------------

void FlowRuntime::runCommand(Command c, StopMode mode, const std::shared_ptr<Pending>& p) {
  if (c != Command::kStop) {
    std::lock_guard lock(mu_);
    --queued_commands_;
  }
  if (c == Command::kStop) {
    runStop(mode, p);
    return;
  }
  if (p->timedOut()) {
    // Answered by its deadline while queued behind plugin code that did not return; the flow
    // was marked failed then. A failed flow holds no instance.
    releaseInstance();
    setStateKeepError(State::kFailed);
    return;
  }
  p->begin();
  beginOperation(p);
  auto conclude = [&](Outcome o) {
    if (!p->claim(false)) {
      // The deadline answered first and marked the flow failed; keep it that way, but release
      // what the late hook created.
      if (instance_ && o.state != State::kFailed) {
        releaseInstance();
        setStateKeepError(State::kFailed);
      }
      return;
    }
    finish(p, std::move(o));
  };
  if (removed()) {
    // Accepted before the flow was deleted: a deleted flow does no more work.
    conclude({state(), "flow '" + id_ + "' was deleted"});
    return;
  }
  const State s = state();
  std::string error;
  auto current_error = [&] {
    std::lock_guard lock(mu_);
    return error_;
  };
  switch (c) {
    case Command::kStart:
      runStart(conclude);
      return;
    case Command::kPause: {
      if (s == State::kPaused) return conclude({State::kPaused, ""});
      if (!instance_ && s != State::kStarting && scheduled()) {
        // A scheduled flow with no run going on: pausing it suspends its schedule (the engine
        // does that); there is nothing to pause here.
        return conclude({s, ""});
      }
      if (s != State::kRunning || !instance_) {
        std::string err = current_error();
        if (err.empty()) err = "cannot pause: the flow is " + std::string(toString(s));
        return conclude({s, err});
      }
      setStateKeepError(State::kPausing);
      ++step_generation_;  // no new steps; the step in flight has returned (same strand)
      signals_.pause_requested = true;
      if (!callHook(
              "pause", [&](sluice_error* e) { return instance_->pause(e); }, &error)) {
        failInstance(error);
        return conclude({State::kFailed, error});
      }
      setState(State::kPaused);
      return conclude({State::kPaused, ""});
    }
    case Command::kResume: {
      if (s == State::kRunning) return conclude({State::kRunning, ""});
      if (!instance_ && s != State::kPaused && scheduled()) {
        return conclude({s, ""});  // its schedule resumes; no run to resume
      }
      if (!local() || !services_->mayRun()) {
        return conclude({s, "not resumed: flow '" + id_ + "' is not this node's to run now"});
      }
      if (s != State::kPaused || !instance_) {
        std::string err = current_error();
        if (err.empty()) err = "cannot resume: the flow is " + std::string(toString(s));
        return conclude({s, err});
      }
      return conclude(resumeInstance(&error) ? Outcome{State::kRunning, ""}
                                             : Outcome{State::kFailed, error});
    }
    case Command::kStop:
      break;
  }
}

void FlowRuntime::runStart(const std::function<void(Outcome)>& conclude) {
  const State s = state();
  std::string error;
  if (!local() || !services_->mayRun()) {
    // Cluster: the flow moved away, or this node's lease may have lapsed (it fenced itself,
    // or is about to), after the start was queued.
    return conclude({s, "not started: flow '" + id_ + "' is not this node's to run now"});
  }
  if (s == State::kRunning && instance_) return conclude({State::kRunning, ""});
  if (s == State::kPaused && instance_) {
    return conclude(resumeInstance(&error) ? Outcome{State::kRunning, ""}
                                           : Outcome{State::kFailed, error});
  }
  // stopped or failed
  releaseInstance();
  std::shared_ptr<const FlowSpec> spec;  // shared, not copied: a start copies no strings
  std::shared_ptr<const FlowType> type;
  {
    std::lock_guard lock(mu_);
    spec = spec_;
    type = type_;
  }
  setState(State::kStarting);  // from here a reload's retype leaves type_ alone
  if (services_->resolve_type) {
    // A start by command runs the newest version the flow's type allows now (a reload may have
    // added one); an automatic one, the version stored with the flow while it is loaded.
    std::string keep;
    if (keep_stored_version_.exchange(false)) {
      std::lock_guard lock(mu_);
      keep = stored_version_;
    }
    type = nullptr;
    std::string ignored;
    const auto pin = parseTypePin(spec->type, &ignored);
    const auto stored = parseSemVer(keep);
    if (pin && stored && pin->matches(*stored)) {
      type = services_->resolve_type(pin->name + "@" + keep);
    }
    if (!type) type = services_->resolve_type(spec->type);
    std::shared_ptr<const FlowType> old = type;
    std::lock_guard lock(mu_);
    std::swap(type_, old);  // the old one is released after the lock
  }
  if (!type) {
    error = "flow type '" + spec->type + "' is not loaded";
    setState(State::kFailed, error);
    return conclude({State::kFailed, error});
  }
  if (!createAndStart(spec, type, &error)) {
    setState(State::kFailed, error);
    return conclude({State::kFailed, error});
  }
  setState(State::kRunning);
  scheduleStep(0);
  startRunner();
  conclude({State::kRunning, ""});
}

void FlowRuntime::runStop(StopMode mode, const std::shared_ptr<Pending>& p) {
  beginOperation(p);
  ++step_generation_;  // no new steps
  std::string error;
  bool ok = true;
  if (instance_) {
    setStateKeepError(State::kStopping);
    // Escalated (or hard from the start): cancellation is raised.
    const StopMode effective = signals_.cancel ? StopMode::kHard : mode;
    ok = stopAndDestroy(effective, &error);
  }
  signals_.pause_requested = false;
  if (!p->claim(false)) {
    // The deadline answered (failed); the code has returned now and the instance is released.
    if (ok) {
      std::lock_guard lock(mu_);
      error_ += " (it returned later; the instance was released)";
    }
    return;
  }
  if (ok) {
    setState(State::kStopped);  // clears a failure
    finish(p, {State::kStopped, ""});
  } else {
    setState(State::kFailed, error);
    finish(p, {State::kFailed, error});
  }
}

}  // namespace sluice
