// A command's deadlines and the kill policy: what a start, pause, resume or stop that runs past
// its time answers, and how plugin code that does not return is cancelled, then killed.
#include <spdlog/spdlog.h>

#include "core/runtime/flow_runtime.hpp"

namespace sluice {

// ---- deadlines --------------------------------------------------------------------------------

std::string FlowRuntime::killStuckCode() {
  std::shared_ptr<Instance> instance;
  {
    std::lock_guard lock(kill_mu_);
    instance = killable_;
  }
  // Process isolation: code that does not return is ended with its host, freeing the worker.
  if (instance && instance->kill()) return "; its host process was killed (SIGKILL)";
  // Thread isolation: the worker running that code is lost until it returns; another one takes
  // its place so that other flows go on, and retires when the stuck call returns.
  if (hook_state_.load() == 1 && services_->pool->replaceStuckWorker()) {
    int running = 1;
    if (hook_state_.compare_exchange_strong(running, 2)) {
      spdlog::warn("flow {}: a worker is stuck in plugin code; added a replacement worker", id_);
    } else {
      services_->pool->retireOne();  // the hook returned meanwhile
    }
  }
  return "";
}

void FlowRuntime::onDeadline(const std::shared_ptr<Pending>& p, const std::string& reason) {
  if (!p->claim(true)) return;
  std::string why = reason;
  if (const char* hook = current_hook_.load()) why += std::string(" (in the ") + hook + " hook)";
  why += killStuckCode();
  {
    std::lock_guard lock(mu_);
    --pending_commands_;
    operation_.clear();
    deadline_.reset();
    statusTouched();
  }
  setState(State::kFailed, why);
  p->answer(Outcome{State::kFailed, why});
}

void FlowRuntime::finish(const std::shared_ptr<Pending>& p, const Outcome& outcome) {
  release(p);
  p->answer(outcome);
}

void FlowRuntime::release(const std::shared_ptr<Pending>& p) {
  p->cancelTimers(services_->timer);
  std::lock_guard lock(mu_);
  --pending_commands_;
  operation_.clear();
  deadline_.reset();
  statusTouched();
}

void FlowRuntime::beginOperation(const std::shared_ptr<Pending>& p) {
  std::lock_guard lock(mu_);
  operation_ = p->operation();
  deadline_ = p->deadline();
  statusTouched();
}

// The deadline of a start, pause or resume measures the flow's own hook, from the moment the
// operation begins on the strand: a command that waits for a worker behind other flows' work
// (a thousand starts at once) waits on. One queued behind this flow's own plugin code that
// does not return is answered when its time is up, as is a hook that runs past it.
void FlowRuntime::armStartDeadline(const std::shared_ptr<Pending>& p, std::string_view verb,
                                   std::chrono::milliseconds after) {
  // `verb` is a command's name (static text): the closure stays within Task's inline bytes.
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  p->arm(services_->timer, after, [weak, p, verb] {
    auto self = weak.lock();
    if (!self || p->claimed()) return;
    const std::chrono::milliseconds timeout(p->timeoutMs());
    if (const auto begun = p->begunAt()) {
      const auto due = *begun + timeout;
      if (const auto now = Clock::now(); now < due) {
        self->armStartDeadline(p, verb, std::chrono::ceil<std::chrono::milliseconds>(due - now));
        return;
      }
    } else if (!self->codeRunning()) {
      self->armStartDeadline(p, verb, timeout);  // still waiting for a worker
      return;
    }
    self->onDeadline(p, std::string(verb) + " did not finish within " +
                            std::to_string(timeout.count()) +
                            " ms (runtime.start_timeout_ms): plugin code is still running");
  });
}

void FlowRuntime::armStopDeadlines(const std::shared_ptr<Pending>& p, StopMode mode,
                                   uint32_t stop_timeout_ms) {
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  auto hard_deadline = [weak, p](uint32_t total_ms) {
    if (auto self = weak.lock()) {
      self->onDeadline(p, "stop did not finish within " + std::to_string(total_ms) +
                              " ms: plugin code is still running after the hard stop");
    }
  };
  using std::chrono::milliseconds;
  if (mode == StopMode::kHard) {
    p->arm(services_->timer, milliseconds(kHardStopBoundMs),
           [hard_deadline] { hard_deadline(kHardStopBoundMs); });
    return;
  }
  // Soft stop past its timeout escalates: cancellation is raised (the hook or step in flight
  // sees it, and a stop hook not yet called is called in hard mode), then the hard bound runs.
  const uint32_t total = stop_timeout_ms + kHardStopBoundMs;
  p->arm(services_->timer, milliseconds(stop_timeout_ms), [weak, p, stop_timeout_ms] {
    auto self = weak.lock();
    if (!self || p->claimed()) return;
    spdlog::warn("flow {}: soft stop passed its stop timeout ({} ms); escalating to hard stop",
                 self->id_, stop_timeout_ms);
    self->signals_.raiseCancel();
  });
  p->arm(services_->timer, milliseconds(total), [hard_deadline, total] { hard_deadline(total); });
}

}  // namespace sluice
