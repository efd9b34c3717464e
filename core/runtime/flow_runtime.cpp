#include "core/runtime/flow_runtime.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <condition_variable>
#include <ctime>
#include <random>
#include <thread>

namespace sluice {

std::string formatTime(SystemTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 40> buf{};
  size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::array<char, 8> frac{};
  std::snprintf(frac.data(), frac.size(), ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(buf.data(), n) + frac.data();
}

// A command waiting for its outcome: completed exactly once, by the op or by the deadline.
struct FlowRuntime::Pending {
  std::mutex mu;
  bool claimed = false;          // guarded by mu
  bool timed_out = false;        // guarded by mu
  std::vector<uint64_t> timers;  // guarded by mu
  Done done;
  std::string operation;
  SystemTime deadline;

  /// First caller wins; the others learn the command was already answered.
  bool claim(bool by_deadline) {
    std::lock_guard lock(mu);
    if (claimed) return false;
    claimed = true;
    timed_out = by_deadline;
    return true;
  }
  bool timedOut() {
    std::lock_guard lock(mu);
    return timed_out;
  }
};

// The context behind an instance's host table. Shared by the flow and any thread of the plugin
// that may outlive it (an orphaned dedicated thread): once the flow is gone, `flow` is null and
// the host functions answer "cancelled" and do nothing else.
struct FlowRuntime::HostBinding {
  sluice_host table{};
  std::mutex mu;
  FlowRuntime* flow = nullptr;  // guarded by mu; null once the flow is destroyed
  std::string id;
  std::string files_root;
};

// The thread of a dedicated-thread instance. Shared by the flow and the thread itself.
struct FlowRuntime::Runner {
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu: run returned
  bool orphaned =
      false;          // guarded by mu: the flow gave up waiting; the thread destroys the instance
  bool ok = true;     // guarded by mu
  std::string error;  // guarded by mu
};

FlowRuntime::FlowRuntime(EngineServices* services, FlowSpec spec,
                         std::shared_ptr<const FlowType> type, Desired desired)
    : services_(services),
      id_(spec.id),
      spec_(std::move(spec)),
      type_(std::move(type)),
      desired_(desired),
      accepted_(desired),
      since_(std::chrono::system_clock::now()),
      host_(std::make_shared<HostBinding>()) {
  if (!type_) {
    state_ = State::kFailed;
    error_ = "flow type '" + spec_.type + "' is not loaded";
  }
  host_->flow = this;
  host_->id = id_;
  sluice_host& h = host_->table;
  h.struct_size = sizeof(sluice_host);
  h.abi_major = SLUICE_ABI_MAJOR;
  h.abi_minor = SLUICE_ABI_MINOR;
  h.ctx = host_.get();
  h.flow_id = id_.c_str();
  h.flow_id_len = id_.size();
  h.log = &hostLog;
  h.counter_add = &hostCounterAdd;
  h.gauge_set = &hostGaugeSet;
  h.is_cancelled = &hostIsCancelled;
  h.is_paused = &hostIsPaused;
  h.now_ms = &hostNowMs;
  h.state_get = &hostStateGet;
  h.state_put = &hostStatePut;
  h.state_delete = &hostStateDelete;
  h.is_stop_requested = &hostIsStopRequested;
  host_->files_root = services_->files_root;
  h.files_root = host_->files_root.c_str();
  h.files_root_len = host_->files_root.size();
}

FlowRuntime::~FlowRuntime() {
  {
    std::lock_guard lock(host_->mu);
    host_->flow = nullptr;  // plugin threads that outlive the flow see it cancelled
  }
  // Every op holds a reference, so no op is in flight here. An instance left means the engine
  // shut down without stopping this flow; release it.
  if (instance_) {
    std::string ignored;
    stop_requested_ = true;
    if (!runner_ || stopRunner(StopMode::kHard, &ignored)) destroyInstance();
  }
}

// ---- status ---------------------------------------------------------------------------------

FlowStatus FlowRuntime::status() const {
  FlowStatus s;
  {
    std::lock_guard lock(mu_);
    s.id = id_;
    s.type = spec_.type;
    s.state = state_;
    s.desired = desired_;
    s.since = since_;
    s.error = error_;
    s.operation = operation_;
    s.deadline = deadline_;
    s.restarts = spec_.runtime.restart.on_failure;
    s.restart_count = restart_count_;
    s.next_restart_at = next_restart_at_;
  }
  std::lock_guard lock(metrics_mu_);
  s.counters.assign(counters_.begin(), counters_.end());
  s.gauges.assign(gauges_.begin(), gauges_.end());
  return s;
}

std::string FlowRuntime::recordJson() const {
  std::lock_guard lock(mu_);
  return spec_.record_json;
}

Desired FlowRuntime::desired() const {
  std::lock_guard lock(mu_);
  return desired_;
}

uint32_t FlowRuntime::stopBudgetMs() const {
  std::lock_guard lock(mu_);
  return spec_.runtime.stop_timeout_ms + kHardStopBoundMs;
}

State FlowRuntime::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void FlowRuntime::setState(State s, std::string error) {
  std::lock_guard lock(mu_);
  const bool newly_failed = s == State::kFailed && state_ != State::kFailed;
  if (state_ != s || error_ != error) {
    if (s == State::kFailed) {
      spdlog::error("flow {}: {} -> {}: {}", id_, toString(state_), toString(s), error);
    } else {
      spdlog::info("flow {}: {} -> {}", id_, toString(state_), toString(s));
    }
    since_ = std::chrono::system_clock::now();
  }
  state_ = s;
  error_ = std::move(error);
  if (s == State::kRunning && !running_since_) running_since_ = Clock::now();
  if (newly_failed) scheduleRestartLocked();
}

void FlowRuntime::setStateKeepError(State s) {
  std::lock_guard lock(mu_);
  const bool newly_failed = s == State::kFailed && state_ != State::kFailed;
  if (state_ != s) {
    spdlog::info("flow {}: {} -> {}", id_, toString(state_), toString(s));
    since_ = std::chrono::system_clock::now();
  }
  state_ = s;
  if (newly_failed) scheduleRestartLocked();
}

void FlowRuntime::scheduleRestartLocked() {
  const RestartPolicy& rp = spec_.runtime.restart;
  const auto now = Clock::now();
  // Running cleanly for the reset window forgives earlier failures.
  if (running_since_ && now - *running_since_ >= std::chrono::milliseconds(rp.reset_after_ms)) {
    restart_count_ = 0;
  }
  running_since_.reset();
  if (!rp.on_failure || desired_ == Desired::kStopped || removed_ || !type_) return;
  if (restart_count_ >= rp.max_restarts) {
    error_ += "; no restart: runtime.restart.max_restarts (" + std::to_string(rp.max_restarts) +
              ") reached";
    spdlog::error("flow {}: giving up after {} restarts", id_, restart_count_);
    return;
  }
  // Exponential backoff with +-20% jitter, capped.
  double delay = rp.backoff_ms;
  for (uint32_t i = 0; i < restart_count_ && delay < rp.max_backoff_ms; ++i) delay *= 2;
  static thread_local std::mt19937 rng(std::random_device{}());
  delay *= std::uniform_real_distribution<double>(0.8, 1.2)(rng);
  delay = std::min<double>(delay, rp.max_backoff_ms);
  const auto wait = std::chrono::milliseconds(static_cast<int64_t>(delay));
  ++restart_count_;
  next_restart_at_ = std::chrono::system_clock::now() + wait;
  const uint64_t generation = ++restart_generation_;
  spdlog::info("flow {}: restart {} of {} in {} ms", id_, restart_count_, rp.max_restarts,
               wait.count());
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  services_->timer->at(now + wait, [weak, generation] {
    if (auto self = weak.lock()) self->restartNow(generation);
  });
}

void FlowRuntime::restartNow(uint64_t generation) {
  Desired desired;
  {
    std::lock_guard lock(mu_);
    if (generation != restart_generation_ || state_ != State::kFailed ||
        desired_ == Desired::kStopped || removed_) {
      return;
    }
    next_restart_at_.reset();
    desired = desired_;
  }
  spdlog::info("flow {}: restarting", id_);
  command(Command::kStart, StopMode::kSoft, [](const Outcome&) {});
  if (desired == Desired::kPaused) command(Command::kPause, StopMode::kSoft, [](const Outcome&) {});
}

// ---- command acceptance (engine's catalog lock held) ------------------------------------------

std::optional<std::string> FlowRuntime::refusal(Command c) const {
  std::lock_guard lock(mu_);
  // A failure counts only once every accepted command has run: a start queued behind it will
  // clear it.
  const bool failed = state_ == State::kFailed && pending_commands_ == 0;
  const std::string_view now = failed ? "failed" : toString(accepted_);
  switch (c) {
    case Command::kStart:
      if (!type_) return "flow type '" + spec_.type + "' is not loaded";
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

Desired FlowRuntime::desiredAfter(Command c) const {
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

void FlowRuntime::accept(Command c) {
  std::lock_guard lock(mu_);
  accepted_ = desiredAfter(c);
  desired_ = accepted_;
  if (c == Command::kStop || c == Command::kStart) {
    // An operator's stop cancels a pending restart; an operator's start begins a fresh count.
    ++restart_generation_;
    next_restart_at_.reset();
    restart_count_ = 0;
  }
}

// ---- strand -----------------------------------------------------------------------------------

void FlowRuntime::post(std::function<void()> op) {
  bool start = false;
  {
    std::lock_guard lock(strand_mu_);
    ops_.push_back(std::move(op));
    if (!strand_active_) {
      strand_active_ = true;
      start = true;
    }
  }
  if (start) services_->pool->post([self = shared_from_this()] { self->drain(); });
}

void FlowRuntime::dropQueuedOps() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(strand_mu_);
    dropped.swap(ops_);
    strand_active_ = false;
  }
  // `dropped` is destroyed here, outside the lock: the closures may hold the last references.
}

void FlowRuntime::drain() {
  std::function<void()> op;
  {
    std::lock_guard lock(strand_mu_);
    op = std::move(ops_.front());
    ops_.pop_front();
  }
  op();
  {
    std::lock_guard lock(strand_mu_);
    if (ops_.empty()) {
      strand_active_ = false;
      return;
    }
  }
  // One op per turn keeps the pool fair between flows.
  services_->pool->post([self = shared_from_this()] { self->drain(); });
}

// ---- deadlines --------------------------------------------------------------------------------

std::shared_ptr<FlowRuntime::Pending> FlowRuntime::makePending(std::string operation,
                                                               uint32_t timeout_ms, Done done) {
  auto p = std::make_shared<Pending>();
  p->done = std::move(done);
  p->operation = std::move(operation);
  p->deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms);
  {
    std::lock_guard lock(mu_);
    ++pending_commands_;
  }
  return p;
}

void FlowRuntime::onDeadline(const std::shared_ptr<Pending>& p, const std::string& reason) {
  if (!p->claim(true)) return;
  std::string why = reason;
  if (const char* hook = current_hook_.load()) why += std::string(" (in the ") + hook + " hook)";
  std::shared_ptr<Instance> instance;
  {
    std::lock_guard lock(kill_mu_);
    instance = killable_;
  }
  // Process isolation: code that does not return is ended with its host, freeing the worker.
  if (instance && instance->kill()) {
    why += "; its host process was killed (SIGKILL)";
  } else if (current_hook_.load() != nullptr && services_->pool->replaceStuckWorker()) {
    // Thread isolation: the worker running that code is lost until it returns; another one
    // takes its place so that other flows go on.
    spdlog::warn("flow {}: a worker is stuck in plugin code; added a replacement worker", id_);
  }
  {
    std::lock_guard lock(mu_);
    --pending_commands_;
    operation_.clear();
    deadline_.reset();
  }
  setState(State::kFailed, why);
  Outcome o{State::kFailed, why};
  p->done(o);
}

void FlowRuntime::finish(const std::shared_ptr<Pending>& p, const Outcome& outcome) {
  release(p);
  p->done(outcome);
}

void FlowRuntime::release(const std::shared_ptr<Pending>& p) {
  std::vector<uint64_t> timers;
  {
    std::lock_guard lock(p->mu);
    timers = p->timers;
  }
  for (uint64_t t : timers) services_->timer->cancel(t);
  {
    std::lock_guard lock(mu_);
    --pending_commands_;
    operation_.clear();
    deadline_.reset();
  }
}

void FlowRuntime::armStopDeadlines(const std::shared_ptr<Pending>& p, StopMode mode,
                                   uint32_t stop_timeout_ms) {
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  auto now = Clock::now();
  auto hard_deadline = [weak, p](uint32_t total_ms) {
    if (auto self = weak.lock()) {
      self->onDeadline(p, "stop did not finish within " + std::to_string(total_ms) +
                              " ms: plugin code is still running after the hard stop");
    }
  };
  std::lock_guard lock(p->mu);
  if (mode == StopMode::kHard) {
    p->timers.push_back(services_->timer->at(now + std::chrono::milliseconds(kHardStopBoundMs),
                                             [hard_deadline] { hard_deadline(kHardStopBoundMs); }));
    return;
  }
  // Soft stop past its timeout escalates: cancellation is raised (the hook or step in flight
  // sees it, and a stop hook not yet called is called in hard mode), then the hard bound runs.
  const uint32_t total = stop_timeout_ms + kHardStopBoundMs;
  Timer* timer = services_->timer;
  std::string id = id_;
  p->timers.push_back(
      timer->at(now + std::chrono::milliseconds(stop_timeout_ms), [weak, p, stop_timeout_ms, id] {
        if (auto self = weak.lock()) {
          {
            std::lock_guard plock(p->mu);
            if (p->claimed) return;
          }
          spdlog::warn(
              "flow {}: soft stop passed its stop timeout ({} ms); escalating to hard stop", id,
              stop_timeout_ms);
          self->cancel_ = true;
        }
      }));
  p->timers.push_back(timer->at(now + std::chrono::milliseconds(total),
                                [hard_deadline, total] { hard_deadline(total); }));
}

// ---- commands ---------------------------------------------------------------------------------

void FlowRuntime::command(Command c, StopMode mode, Done done) {
  RuntimeOptions rt;
  {
    std::lock_guard lock(mu_);
    rt = spec_.runtime;
  }
  std::string op(toString(c));
  if (c == Command::kStop) op += mode == StopMode::kHard ? " (hard)" : " (soft)";
  std::shared_ptr<Pending> p;
  if (c == Command::kStop) {
    uint32_t budget =
        mode == StopMode::kHard ? kHardStopBoundMs : rt.stop_timeout_ms + kHardStopBoundMs;
    p = makePending(op, budget, std::move(done));
    // A hard stop raises cancellation at once: the step or hook in flight sees it.
    if (mode == StopMode::kHard) {
      cancel_ = true;
      stop_requested_ = true;
    }
    armStopDeadlines(p, mode, rt.stop_timeout_ms);
  } else {
    p = makePending(op, rt.start_timeout_ms, std::move(done));
    std::weak_ptr<FlowRuntime> weak = weak_from_this();
    const uint32_t timeout = rt.start_timeout_ms;
    std::string verb(toString(c));
    uint64_t t = services_->timer->at(
        Clock::now() + std::chrono::milliseconds(timeout), [weak, p, timeout, verb] {
          if (auto self = weak.lock()) {
            self->onDeadline(p, verb + " did not finish within " + std::to_string(timeout) +
                                    " ms (runtime.start_timeout_ms): plugin code is still running");
          }
        });
    std::lock_guard lock(p->mu);
    p->timers.push_back(t);
  }
  post([self = shared_from_this(), c, mode, p] { self->runCommand(c, mode, p); });
}

void FlowRuntime::shutdownStop(Done done) {
  RuntimeOptions rt;
  {
    std::lock_guard lock(mu_);
    rt = spec_.runtime;
  }
  auto p = makePending("stop (shutdown)", rt.stop_timeout_ms + kHardStopBoundMs, std::move(done));
  armStopDeadlines(p, StopMode::kSoft, rt.stop_timeout_ms);
  post([self = shared_from_this(), p] { self->runStop(StopMode::kSoft, p); });
}

void FlowRuntime::remove(Done done) {
  {
    std::lock_guard lock(mu_);
    removed_ = true;
  }
  shutdownStop(std::move(done));
}

void FlowRuntime::runCommand(Command c, StopMode mode, const std::shared_ptr<Pending>& p) {
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
  {
    std::lock_guard lock(mu_);
    operation_ = p->operation;
    deadline_ = p->deadline;
  }
  const State s = state();
  std::string error;
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

  switch (c) {
    case Command::kStart: {
      if (s == State::kRunning && instance_) {
        conclude({State::kRunning, ""});
        return;
      }
      if (s == State::kPaused && instance_) {
        conclude(resumeInstance(&error) ? Outcome{State::kRunning, ""}
                                        : Outcome{State::kFailed, error});
        return;
      }
      // stopped or failed
      releaseInstance();
      FlowSpec spec;
      std::shared_ptr<const FlowType> type;
      {
        std::lock_guard lock(mu_);
        spec = spec_;
        type = type_;
      }
      if (!type) {
        error = "flow type '" + spec.type + "' is not loaded";
        setState(State::kFailed, error);
        conclude({State::kFailed, error});
        return;
      }
      setState(State::kStarting);
      if (!createAndStart(spec, type, &error)) {
        setState(State::kFailed, error);
        conclude({State::kFailed, error});
        return;
      }
      setState(State::kRunning);
      scheduleStep(0);
      startRunner();
      conclude({State::kRunning, ""});
      return;
    }
    case Command::kPause: {
      if (s == State::kPaused) {
        conclude({State::kPaused, ""});
        return;
      }
      if (s != State::kRunning || !instance_) {
        std::string err;
        {
          std::lock_guard lock(mu_);
          err = error_;
        }
        if (err.empty()) err = "cannot pause: the flow is " + std::string(toString(s));
        conclude({s, err});
        return;
      }
      setStateKeepError(State::kPausing);
      ++step_generation_;  // no new steps; the step in flight has returned (same strand)
      pause_requested_ = true;
      if (!callHook(
              "pause", [&](sluice_error* e) { return instance_->pause(e); }, &error)) {
        failInstance(error);
        conclude({State::kFailed, error});
        return;
      }
      setState(State::kPaused);
      conclude({State::kPaused, ""});
      return;
    }
    case Command::kResume: {
      if (s == State::kRunning) {
        conclude({State::kRunning, ""});
        return;
      }
      if (s != State::kPaused || !instance_) {
        std::string err;
        {
          std::lock_guard lock(mu_);
          err = error_;
        }
        if (err.empty()) err = "cannot resume: the flow is " + std::string(toString(s));
        conclude({s, err});
        return;
      }
      conclude(resumeInstance(&error) ? Outcome{State::kRunning, ""}
                                      : Outcome{State::kFailed, error});
      return;
    }
    case Command::kStop:
      break;
  }
}

void FlowRuntime::runStop(StopMode mode, const std::shared_ptr<Pending>& p) {
  {
    std::lock_guard lock(mu_);
    operation_ = p->operation;
    deadline_ = p->deadline;
  }
  ++step_generation_;  // no new steps
  std::string error;
  bool ok = true;
  if (instance_) {
    setStateKeepError(State::kStopping);
    // Escalated (or hard from the start): cancellation is raised.
    const StopMode effective = cancel_ ? StopMode::kHard : mode;
    ok = stopAndDestroy(effective, &error);
  }
  pause_requested_ = false;
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

// ---- update -----------------------------------------------------------------------------------

void FlowRuntime::update(FlowSpec spec, std::shared_ptr<const FlowType> type, UpdateDone done) {
  RuntimeOptions rt;
  {
    std::lock_guard lock(mu_);
    rt = spec_.runtime;
  }
  // Worst case: stop the old instance, start the new one, fail, start the old one again.
  const uint32_t budget = rt.stop_timeout_ms + kHardStopBoundMs + rt.start_timeout_ms +
                          spec.runtime.start_timeout_ms + kHardStopBoundMs;
  // Answered once: by runUpdate, or by the deadline (the only caller of the pending's callback).
  auto answered = std::make_shared<std::atomic<bool>>(false);
  Done on_deadline = [done, answered, id = id_](const Outcome& o) {
    if (answered->exchange(true)) return;
    done(Error{ErrorKind::kUnavailable, "update of flow '" + id + "': " + o.error, {}});
  };
  auto p = makePending("update", budget, on_deadline);
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  uint64_t t =
      services_->timer->at(Clock::now() + std::chrono::milliseconds(budget), [weak, p, budget] {
        if (auto self = weak.lock()) {
          self->onDeadline(p, "update did not finish within " + std::to_string(budget) +
                                  " ms: plugin code is still running");
        }
      });
  {
    std::lock_guard lock(p->mu);
    p->timers.push_back(t);
  }
  UpdateDone finish_update = [done, answered](const Result<sluice::Done>& r) {
    if (answered->exchange(true)) return;
    done(r);
  };
  post([self = shared_from_this(), spec = std::move(spec), type = std::move(type), p,
        finish_update]() mutable {
    self->runUpdate(std::move(spec), std::move(type), p, finish_update);
  });
}

void FlowRuntime::runUpdate(FlowSpec spec, std::shared_ptr<const FlowType> type,
                            const std::shared_ptr<Pending>& p, UpdateDone done) {
  bool removed;
  {
    std::lock_guard lock(mu_);
    removed = removed_;
    operation_ = p->operation;
    deadline_ = p->deadline;
  }
  auto store_and_swap = [&]() -> Result<sluice::Done> {
    auto r = services_->store->updateFlow(id_, spec.record_json);
    if (!r.ok()) return r;
    {
      std::lock_guard lock(mu_);
      spec_ = spec;
      type_ = type;
    }
    services_->records_changed();
    return sluice::Done{};
  };
  if (removed) {
    if (p->claim(false)) release(p);
    done(Error{ErrorKind::kNotFound, "flow '" + id_ + "' does not exist", {}});
    return;
  }
  if (!instance_) {
    // Stopped or failed: nothing runs, only the configuration changes.
    auto r = store_and_swap();
    if (p->claim(false)) release(p);
    done(r);
    return;
  }
  // In place only when nothing about where the instance runs changes.
  const bool same_home = spec.runtime.isolation == instance_spec_.runtime.isolation &&
                         spec.runtime.memory_limit_mb == instance_spec_.runtime.memory_limit_mb;
  if (instance_type_ == type && same_home && instance_->canReconfigure()) {
    // The type applies the new config in place: no restart.
    std::string error;
    bool ok = callHook(
        "reconfigure", [&](sluice_error* e) { return instance_->reconfigure(spec.config_json, e); },
        &error);
    if (ok && !p->timedOut()) {
      auto r = store_and_swap();
      if (r.ok()) instance_spec_ = spec;
      if (p->claim(false)) release(p);
      done(r);
      return;
    }
    if (ok) error = "reconfigure returned after the update's deadline";
    if (p->claim(false)) release(p);
    done(Error{ErrorKind::kInvalid,
               "the new configuration of flow '" + id_ + "' was refused: " + error +
                   "; the previous configuration stays in effect and nothing was stored",
               {}});
    return;
  }
  const State before = state();
  const bool was_paused = before == State::kPaused;
  FlowSpec old_spec = instance_spec_;
  std::shared_ptr<const FlowType> old_type = instance_type_;

  ++step_generation_;
  setStateKeepError(State::kStopping);
  std::string stop_error;
  stopAndDestroy(cancel_ ? StopMode::kHard : StopMode::kSoft, &stop_error);

  auto bring_up = [&](const FlowSpec& s, const std::shared_ptr<const FlowType>& t,
                      std::string* err) -> bool {
    cancel_ = false;
    pause_requested_ = false;
    setState(State::kStarting);
    if (!createAndStart(s, t, err)) return false;
    if (was_paused) {
      pause_requested_ = true;
      if (!callHook(
              "pause", [&](sluice_error* e) { return instance_->pause(e); }, err)) {
        releaseInstance();
        return false;
      }
      setState(State::kPaused);
    } else {
      setState(State::kRunning);
      scheduleStep(0);
    }
    startRunner();
    return true;
  };

  std::string error;
  if (bring_up(spec, type, &error) && !p->timedOut()) {
    auto r = store_and_swap();
    if (r.ok()) {
      if (p->claim(false)) release(p);
      done(r);
      return;
    }
    error = r.error().message;
    ++step_generation_;
    std::string ignored;
    stopAndDestroy(StopMode::kSoft, &ignored);
  }
  // Roll back to the configuration that was running.
  std::string restore_error;
  if (bring_up(old_spec, old_type, &restore_error)) {
    spdlog::warn("flow {}: update failed ({}); previous configuration restored", id_, error);
  } else {
    setState(State::kFailed, "restoring the previous configuration failed: " + restore_error);
  }
  if (p->claim(false)) release(p);
  done(Error{ErrorKind::kInvalid,
             "the new configuration of flow '" + id_ + "' failed to start: " + error +
                 "; the previous configuration was restored and nothing was stored",
             {}});
}

// ---- steps ------------------------------------------------------------------------------------

void FlowRuntime::scheduleStep(uint32_t delay_ms) {
  if (!instance_type_ || !instance_type_->has_step()) return;
  const uint64_t generation = step_generation_.load();
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  auto fire = [weak, generation] {
    if (auto self = weak.lock()) {
      self->post([self, generation] { self->runStep(generation); });
    }
  };
  if (delay_ms == 0) {
    fire();
  } else {
    services_->timer->at(Clock::now() + std::chrono::milliseconds(delay_ms), fire);
  }
}

void FlowRuntime::runStep(uint64_t generation) {
  if (generation != step_generation_.load() || !instance_) return;
  if (state() != State::kRunning) return;
  uint32_t next = instance_type_->def->step_interval_ms;
  std::string error;
  if (!callHook(
          "step", [&](sluice_error* e) { return instance_->step(&next, e); }, &error)) {
    if (generation != step_generation_.load()) {
      // A stop or pause is waiting behind this step; it reports on its own.
      spdlog::warn("flow {}: {}", id_, error);
      return;
    }
    ++step_generation_;
    failInstance(error);
    return;
  }
  if (generation == step_generation_.load()) scheduleStep(next);
}

// ---- instance ---------------------------------------------------------------------------------

bool FlowRuntime::callHook(const char* hook, const std::function<int32_t(sluice_error*)>& fn,
                           std::string* error) {
  std::array<char, 1024> buf{};
  sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
  int32_t rc;
  struct Running {  // names the hook in flight for deadline messages
    std::atomic<const char*>& slot;
    Running(std::atomic<const char*>& s, const char* h) : slot(s) { slot = h; }
    ~Running() { slot = nullptr; }
  } running(current_hook_, hook);
  try {
    rc = fn(&e);
  } catch (const std::exception& ex) {
    *error = std::string(hook) + " hook threw an exception: " + ex.what();
    return false;
  } catch (...) {
    *error = std::string(hook) + " hook threw an exception";
    return false;
  }
  if (rc != SLUICE_OK) {
    buf.back() = '\0';
    *error = std::string(hook) + " hook failed: " + (buf[0] != '\0' ? buf.data() : "no message");
    return false;
  }
  return true;
}

bool FlowRuntime::createAndStart(const FlowSpec& spec, const std::shared_ptr<const FlowType>& type,
                                 std::string* error) {
  cancel_ = false;
  pause_requested_ = false;
  stop_requested_ = false;
  std::shared_ptr<Instance> instance;
  if (spec.runtime.isolation == Isolation::kProcess) {
    std::weak_ptr<FlowRuntime> weak = weak_from_this();
    ProcessOptions options;
    options.host_executable = services_->host_executable;
    options.memory_limit_mb = spec.runtime.memory_limit_mb;
    auto death = std::make_shared<std::weak_ptr<Instance>>();
    instance = createProcessInstance(
        type, &host_->table, spec.config_json, options,
        [weak, death](const std::string& how) {
          auto self = weak.lock();
          auto inst = death->lock();
          if (self && inst) self->onInstanceDeath(inst, how);
        },
        error);
    *death = instance;
  } else {
    instance = createInProcessInstance(type, &host_->table, spec.config_json, error);
  }
  if (!instance) return false;
  instance_ = instance;
  instance_type_ = type;
  instance_spec_ = spec;
  {
    std::lock_guard lock(kill_mu_);
    killable_ = instance;
  }
  if (!callHook(
          "start", [&](sluice_error* e) { return instance_->start(e); }, error)) {
    destroyInstance();
    return false;
  }
  return true;
}

bool FlowRuntime::stopAndDestroy(StopMode mode, std::string* error) {
  if (!instance_) return true;
  stop_requested_ = true;
  if (runner_ && !stopRunner(mode, error)) return false;
  const int32_t m = mode == StopMode::kHard ? SLUICE_STOP_HARD : SLUICE_STOP_SOFT;
  bool ok = callHook(
      "stop", [&](sluice_error* e) { return instance_->stop(m, e); }, error);
  destroyInstance();
  return ok;
}

void FlowRuntime::releaseInstance() {
  if (!instance_) return;
  std::string ignored;  // the flow is failing already: its own error is the one that counts
  stopAndDestroy(StopMode::kHard, &ignored);
}

void FlowRuntime::failInstance(const std::string& error) {
  releaseInstance();
  setState(State::kFailed, error);
}

bool FlowRuntime::resumeInstance(std::string* error) {
  setStateKeepError(State::kResuming);
  if (!callHook(
          "resume", [&](sluice_error* e) { return instance_->resume(e); }, error)) {
    failInstance(*error);
    return false;
  }
  pause_requested_ = false;
  setState(State::kRunning);
  scheduleStep(0);
  return true;
}

void FlowRuntime::destroyInstance() {
  {
    std::lock_guard lock(kill_mu_);
    killable_.reset();
  }
  ++step_generation_;  // steps scheduled for this instance are void
  // The Instance's destructor calls the destroy hook (or ends the host process). Keep
  // instance_type_: it co-owns the library the instance came from.
  instance_.reset();
}

void FlowRuntime::onInstanceDeath(const std::shared_ptr<Instance>& instance,
                                  const std::string& how) {
  std::weak_ptr<Instance> weak = instance;
  post([self = shared_from_this(), weak, how] {
    if (!self->instance_ || self->instance_ != weak.lock()) return;  // already released
    ++self->step_generation_;
    self->stop_requested_ = true;
    self->failInstance(how);
  });
}

// ---- dedicated threads ------------------------------------------------------------------------

void FlowRuntime::startRunner() {
  if (!instance_ || !instance_type_->dedicated_thread() || runner_) return;
  auto runner = std::make_shared<Runner>();
  runner_ = runner;
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  // The thread co-owns the instance and the host binding: if the flow gives up waiting for it,
  // the instance is destroyed when run returns, and its host table stays valid until then.
  runner->thread = std::thread([runner, instance = instance_, weak, binding = host_]() mutable {
    std::array<char, 1024> buf{};
    sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
    int32_t rc = SLUICE_ERROR;
    std::string error;
    try {
      rc = instance->run(&e);
      buf.back() = '\0';
      if (rc != SLUICE_OK) {
        error = std::string("run hook failed: ") + (buf[0] != '\0' ? buf.data() : "no message");
      }
    } catch (...) {
      rc = SLUICE_ERROR;
      error = "run hook threw an exception";
    }
    bool orphaned;
    {
      std::lock_guard lock(runner->mu);
      runner->done = true;
      runner->ok = rc == SLUICE_OK;
      runner->error = error;
      orphaned = runner->orphaned;
    }
    runner->cv.notify_all();
    if (orphaned) {
      spdlog::warn("flow {}: run hook returned late; releasing its instance", binding->id);
      instance.reset();  // the last reference: destroys the instance on this thread
      return;
    }
    instance.reset();
    if (auto self = weak.lock()) {
      self->post([self, runner] { self->runEnded(runner); });
    }
  });
}

bool FlowRuntime::stopRunner(StopMode mode, std::string* error) {
  auto runner = runner_;
  const uint32_t soft_ms = instance_spec_.runtime.stop_timeout_ms;
  auto done = [&] { return runner->done; };
  std::unique_lock lock(runner->mu);
  if (mode == StopMode::kSoft &&
      !runner->cv.wait_for(lock, std::chrono::milliseconds(soft_ms), done)) {
    spdlog::warn("flow {}: run hook did not return within the stop timeout ({} ms); cancelling",
                 id_, soft_ms);
  }
  cancel_ = cancel_ || !runner->done;
  if (!runner->cv.wait_for(lock, std::chrono::milliseconds(kHardStopBoundMs), done)) {
    lock.unlock();
    std::shared_ptr<Instance> instance = instance_;
    if (instance && instance->kill()) {
      // Process isolation: the host was killed, so run returns at once.
      lock.lock();
      runner->cv.wait_for(lock, std::chrono::milliseconds(kHardStopBoundMs), done);
      lock.unlock();
    }
    lock.lock();
    if (!runner->done) {
      runner->orphaned = true;
      lock.unlock();
      runner->thread.detach();
      runner_.reset();
      {
        std::lock_guard kl(kill_mu_);
        killable_.reset();
      }
      instance_.reset();  // the thread holds the last reference now
      ++step_generation_;
      *error = "run hook did not return within " + std::to_string(kHardStopBoundMs) +
               " ms after cancellation; its thread is left to finish and release the instance";
      return false;
    }
  }
  lock.unlock();
  if (runner->thread.get_id() == std::this_thread::get_id()) {
    runner->thread.detach();  // the flow's last owner was its own thread, now returning
  } else {
    runner->thread.join();
  }
  runner_.reset();
  return true;
}

void FlowRuntime::runEnded(const std::shared_ptr<Runner>& runner) {
  if (runner_ != runner || stop_requested_) return;  // a stop is handling it
  bool ok;
  std::string error;
  {
    std::lock_guard lock(runner->mu);
    ok = runner->ok;
    error = runner->error;
  }
  runner->thread.join();
  runner_.reset();
  std::string ignored;
  if (ok) {
    spdlog::info("flow {}: run hook returned: the flow's work is done", id_);
    stopAndDestroy(StopMode::kSoft, &ignored);
    setState(State::kStopped);
  } else {
    stopAndDestroy(StopMode::kHard, &ignored);
    setState(State::kFailed, error);
  }
}

// ---- host functions ---------------------------------------------------------------------------

void FlowRuntime::hostLog(void* ctx, int32_t level, const char* msg, size_t len) {
  auto* b = static_cast<HostBinding*>(ctx);
  spdlog::level::level_enum l = spdlog::level::info;
  switch (level) {
    case SLUICE_LOG_TRACE:
      l = spdlog::level::trace;
      break;
    case SLUICE_LOG_DEBUG:
      l = spdlog::level::debug;
      break;
    case SLUICE_LOG_INFO:
      l = spdlog::level::info;
      break;
    case SLUICE_LOG_WARN:
      l = spdlog::level::warn;
      break;
    default:
      l = spdlog::level::err;
      break;
  }
  spdlog::log(l, "flow {}: {}", b->id, std::string_view(msg, len));
}

void FlowRuntime::hostCounterAdd(void* ctx, const char* name, size_t len, int64_t delta) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  if (b->flow == nullptr) return;
  std::lock_guard lock(b->flow->metrics_mu_);
  b->flow->counters_[std::string(name, len)] += delta;
}

void FlowRuntime::hostGaugeSet(void* ctx, const char* name, size_t len, double value) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  if (b->flow == nullptr) return;
  std::lock_guard lock(b->flow->metrics_mu_);
  b->flow->gauges_[std::string(name, len)] = value;
}

int32_t FlowRuntime::hostIsCancelled(void* ctx) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  return b->flow == nullptr || b->flow->cancel_.load() ? 1 : 0;
}

int32_t FlowRuntime::hostIsPaused(void* ctx) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  return b->flow != nullptr && b->flow->pause_requested_.load() ? 1 : 0;
}

int32_t FlowRuntime::hostIsStopRequested(void* ctx) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  return b->flow == nullptr || b->flow->stop_requested_.load() ? 1 : 0;
}

int64_t FlowRuntime::hostNowMs(void*) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int32_t FlowRuntime::hostStateGet(void* ctx, const char* key, size_t len, sluice_value_sink sink,
                                  void* sink_ctx) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  if (b->flow == nullptr) return SLUICE_ERROR;
  auto r = b->flow->services_->store->stateGet(b->id, std::string(key, len));
  if (!r.ok() || !r.value().has_value()) return SLUICE_ERROR;
  sink(sink_ctx, r.value()->data(), r.value()->size());
  return SLUICE_OK;
}

int32_t FlowRuntime::hostStatePut(void* ctx, const char* key, size_t len, const char* value,
                                  size_t value_len) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  if (b->flow == nullptr) return SLUICE_ERROR;
  auto r = b->flow->services_->store->statePut(b->id, std::string(key, len),
                                               std::string(value, value_len));
  return r.ok() ? SLUICE_OK : SLUICE_ERROR;
}

int32_t FlowRuntime::hostStateDelete(void* ctx, const char* key, size_t len) {
  auto* b = static_cast<HostBinding*>(ctx);
  std::lock_guard binding(b->mu);
  if (b->flow == nullptr) return SLUICE_ERROR;
  auto r = b->flow->services_->store->stateDelete(b->id, std::string(key, len));
  return r.ok() ? SLUICE_OK : SLUICE_ERROR;
}

}  // namespace sluice
