// The life of a FlowRuntime's plugin instance, on the flow's strand: guarded hook calls,
// create + start, stop + destroy, steps, the dedicated thread, and a host process's death.
#include <spdlog/spdlog.h>

#include <array>

#include "core/runtime/flow_runtime.hpp"
#include "core/runtime/step_due.hpp"

namespace sluice {

bool FlowRuntime::callHook(const char* hook, HookFn fn, std::string* error) {
  std::array<char, 1024> buf;  // not zeroed (a call per step): empty, and cut at its end
  buf.front() = buf.back() = '\0';
  sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
  int32_t rc;
  struct Running {  // names the hook in flight for deadline messages
    FlowRuntime* flow;
    Running(FlowRuntime* f, const char* h) : flow(f) {
      flow->current_hook_ = h;
      flow->hook_state_ = 1;
    }
    ~Running() {
      flow->current_hook_ = nullptr;
      // A replacement stood in for this worker while the hook was stuck: it is not needed once
      // the hook returned, so this worker leaves the pool after the current op.
      if (flow->hook_state_.exchange(0) == 2) flow->services_->pool->retireAfterTask();
    }
  } running(this, hook);
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

bool FlowRuntime::createAndStart(const std::shared_ptr<const FlowSpec>& spec_ptr,
                                 const std::shared_ptr<const FlowType>& type, std::string* error) {
  if (!spec_ptr) {
    *error = "no configuration to start";
    return false;
  }
  const FlowSpec& spec = *spec_ptr;
  signals_.reset();
  std::shared_ptr<Instance> instance;
  const uint64_t seq = ++instance_seq_;
  if (spec.runtime.isolation == Isolation::kProcess) {
    ProcessOptions options;
    options.host_executable = services_->host_executable;
    options.memory_limit_mb = spec.runtime.memory_limit_mb;
    std::weak_ptr<FlowRuntime> weak = weak_from_this();
    // Runs on the host's reader thread: it only queues the failure on the strand. It owns no
    // instance, so it can never be the one to destroy it (and so join its own thread).
    instance = makeProcessInstance(
        type, host().table(), spec.config_json, options,
        [weak, seq](const std::string& how) {
          if (auto self = weak.lock()) self->onInstanceDeath(seq, how);
        },
        error);
    if (!instance) return false;
  } else {
    instance = makeInProcessInstance(type, host().table(), spec.config_json);
  }
  instance_ = instance;
  instance_type_ = type;
  instance_spec_ = spec_ptr;
  bool version_changed = false;
  const std::string version = type->version.str();
  {
    // Status shows the version the instance runs (an upgrade's rollback included).
    std::shared_ptr<const FlowType> old = type;
    std::lock_guard lock(mu_);
    std::swap(type_, old);
    version_changed = stored_version_ != version;
    stored_version_ = version;
  }
  if (version_changed && services_->runs != nullptr) {
    // Stored with the flow (with the runs, in groups): what an automatic start (restore,
    // failover, restart) runs again.
    services_->runs->record({id_, incarnation_, 0, "", version, false});
  }
  {
    // Killable from before create: a create that never returns is ended like any other hook.
    std::lock_guard lock(kill_mu_);
    killable_ = instance;
  }
  if (!callHook(
          "create", [&](sluice_error* e) { return instance_->create(e); }, error)) {
    destroyInstance();
    return false;
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
  signals_.raiseStop();
  if (runner_ && !stopRunner(mode, error)) return false;
  const int32_t m = mode == StopMode::kHard ? SLUICE_STOP_HARD : SLUICE_STOP_SOFT;
  bool ok = callHook(
      "stop", [&](sluice_error* e) { return instance_->stop(m, e); }, error);
  std::string destroy_error;
  if (!destroyInstance(&destroy_error) && ok) {
    *error = destroy_error;
    ok = false;
  }
  return ok;
}

bool FlowRuntime::destroyInstance(std::string* error) {
  bool ok = true;
  if (instance_) {
    std::string why;
    ok = callHook(
        "destroy", [&](sluice_error* e) { return instance_->destroy(e); }, &why);
    if (!ok && error != nullptr) *error = why;
  }
  {
    std::lock_guard lock(kill_mu_);
    killable_.reset();
  }
  ++step_generation_;               // steps scheduled for this instance are void
  if (host_) host_->flushOutput();  // the run's last partial line of output, if any
  // The instance (and whatever still holds it: a runner, a late hook) co-owns its type and so
  // its library; the flow itself lets go, so that a retired version can be unloaded.
  instance_.reset();
  instance_type_.reset();
  instance_spec_.reset();  // a stopped flow holds its configuration once
  if (services_->resolve_type) {
    // What it would start on now: not a version retired while it ran (that one can go).
    std::string type_ref;
    {
      std::lock_guard lock(mu_);
      type_ref = spec_->type;
    }
    std::shared_ptr<const FlowType> fresh = services_->resolve_type(type_ref);
    std::lock_guard lock(mu_);
    std::swap(type_, fresh);  // the old one is released after the lock
  }
  return ok;
}

void FlowRuntime::releaseInstance(StopMode mode) {
  if (!instance_) return;
  // No command's deadline may cover this release (a step failed, a host died, run returned):
  // it gets a watchdog of its own, which kills or replaces what does not return.
  auto watch = std::make_shared<std::atomic<bool>>(true);
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  const uint64_t timer = services_->timer->at(
      Clock::now() + std::chrono::milliseconds(2 * kHardStopBoundMs), [weak, watch] {
        auto self = weak.lock();
        if (!self || !watch->load()) return;
        const char* hook = self->current_hook_.load();
        spdlog::error(
            "flow {}: releasing the instance did not finish within {} ms (in the {} "
            "hook){}",
            self->id_, 2 * kHardStopBoundMs, hook != nullptr ? hook : "?", self->killStuckCode());
      });
  std::string ignored;  // the flow is failing (or done) already: that is what counts
  stopAndDestroy(mode, &ignored);
  *watch = false;
  services_->timer->cancel(timer);
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
  signals_.pause_requested = false;
  setState(State::kRunning);
  scheduleStep(0);
  return true;
}

void FlowRuntime::onInstanceDeath(uint64_t seq, const std::string& how) {
  strand_.post([self = shared_from_this(), seq, how] {
    if (!self->instance_ || self->instance_seq_ != seq) return;  // already released
    ++self->step_generation_;
    self->signals_.raiseStop();
    self->failInstance(how);
  });
}

// ---- steps ------------------------------------------------------------------------------------

void FlowRuntime::scheduleStep(uint32_t delay_ms, bool from_due) {
  if (!instance_type_ || !instance_type_->has_step()) return;
  const uint64_t generation = step_generation_.load();
  const auto now = Clock::now();
  // From the previous due time (no drift), or from now (a start, a resume, a step that asked to
  // run again at once).
  step_due_ = from_due && delay_ms != 0
                  ? nextStepDue(step_due_, std::chrono::milliseconds(delay_ms), now)
                  : now + std::chrono::milliseconds(delay_ms);
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  auto fire = [weak, generation] {
    if (auto self = weak.lock()) {
      FlowRuntime* flow = self.get();  // the reference moves into the op: no second count
      flow->strand_.post([self = std::move(self), generation] { self->runStep(generation); });
    }
  };
  if (step_due_ <= now) {
    fire();
  } else {
    services_->timer->post(step_due_, std::move(fire));
  }
}

void FlowRuntime::runStep(uint64_t generation) {
  if (generation != step_generation_.load() || !instance_) return;
  if (state() != State::kRunning) return;
  if (services_->step_lateness != nullptr) {
    const std::chrono::duration<double> late = Clock::now() - step_due_;
    services_->step_lateness->observe(late.count());
  }
  if (!services_->mayRun() || !local()) {
    // Cluster: this node's lease may have lapsed (it was frozen, or cut off) and its fence or
    // eviction is on the way: no step runs, here or ever, past that moment.
    scheduleStep(kLeaseRecheckMs);
    return;
  }
  uint32_t next = instance_type_->def->step_interval_ms;
  std::string error;
  int32_t rc = SLUICE_OK;
  if (!callHook(
          "step",
          [&](sluice_error* e) {
            rc = instance_->step(&next, e);
            return rc == SLUICE_DONE && instance_type_->mayFinish() ? SLUICE_OK : rc;
          },
          &error)) {
    if (generation != step_generation_.load()) {
      // A stop or pause is waiting behind this step; it reports on its own.
      spdlog::warn("flow {}: {}", id_, error);
      return;
    }
    ++step_generation_;
    failInstance(error);
    return;
  }
  if (rc == SLUICE_DONE) {
    ++step_generation_;
    completeInstance();
    return;
  }
  if (generation == step_generation_.load()) scheduleStep(next, true);
}

// ---- dedicated threads ------------------------------------------------------------------------

void FlowRuntime::startRunner() {
  if (!instance_ || !instance_type_->dedicated_thread() || runner_) return;
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  runner_ = Runner::start(instance_, id_, [weak](const std::shared_ptr<Runner>& runner) {
    if (auto self = weak.lock()) {
      self->strand_.post([self, runner] { self->runEnded(runner); });
    }
  });
}

bool FlowRuntime::stopRunner(StopMode mode, std::string* error) {
  auto runner = runner_;
  // (a runner exists only with an instance, which has its spec; the default is never used)
  const uint32_t soft_ms =
      (instance_spec_ ? instance_spec_->runtime : RuntimeOptions{}).stop_timeout_ms;
  if (mode == StopMode::kSoft && !runner->waitDone(std::chrono::milliseconds(soft_ms))) {
    spdlog::warn("flow {}: run hook did not return within the stop timeout ({} ms); cancelling",
                 id_, soft_ms);
  }
  if (!runner->done()) signals_.raiseCancel();
  if (!runner->waitDone(std::chrono::milliseconds(kHardStopBoundMs))) {
    // Process isolation: the host is killed, so run returns at once.
    if (instance_ && instance_->kill()) {
      runner->waitDone(std::chrono::milliseconds(kHardStopBoundMs));
    }
    if (runner->orphan()) {
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
  runner->join();
  runner_.reset();
  return true;
}

void FlowRuntime::runEnded(const std::shared_ptr<Runner>& runner) {
  if (runner_ != runner || signals_.stop_requested) return;  // a stop is handling it
  // SLUICE_DONE means done only from a plugin of ABI 1.3 or later: an older one's 3 is an error.
  const bool finished = runner->finished() && instance_type_->mayFinish();
  const bool ok = runner->ok() && (finished || !runner->finished());
  const std::string error =
      runner->finished() && !finished
          ? "run hook failed: returned status 3, which means done only for a plugin of ABI 1.3 "
            "or later"
          : runner->error();
  runner->join();
  runner_.reset();
  std::string ignored;
  if (finished) {
    completeInstance();
  } else if (ok) {
    spdlog::info("flow {}: run hook returned: the flow's work is done", id_);
    stopAndDestroy(StopMode::kSoft, &ignored);
    {
      std::lock_guard lock(mu_);
      end_as_ = RunResult::kSucceeded;  // it ended by itself, without an error
    }
    setState(State::kStopped);
  } else {
    stopAndDestroy(StopMode::kHard, &ignored);
    setState(State::kFailed, error);
  }
}

}  // namespace sluice
