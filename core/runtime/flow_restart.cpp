// The restart policy (runtime.restart) of a FlowRuntime: a flow that fails while it should run
// is started again after a backoff, through the same submission path as an operator's command.
#include <spdlog/spdlog.h>

#include "core/runtime/flow_runtime.hpp"

namespace sluice {

void FlowRuntime::scheduleRestartLocked() {
  const RestartPolicy& rp = spec_->runtime.restart;
  const auto now = RestartBackoff::Clock::now();
  if (desired_ == Desired::kStopped || removed_ || !type_ || !local()) {
    restart_.onFailure(RestartPolicy{}, now, 1.0);  // no restart, but the failure ends a run
    return;
  }
  auto wait = restart_.onFailure(rp, now, RestartBackoff::randomJitter());
  if (!wait) {
    if (rp.on_failure) {
      error_ += "; no restart: runtime.restart.max_restarts (" + std::to_string(rp.max_restarts) +
                ") reached";
      spdlog::error("flow {}: giving up after {} restarts", id_, restart_.count());
    }
    return;
  }
  next_restart_at_ = std::chrono::system_clock::now() + *wait;
  statusTouched();
  const uint64_t generation = restart_.generation();
  spdlog::info("flow {}: restart {} of {} in {} ms", id_, restart_.count(), rp.max_restarts,
               wait->count());
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  services_->timer->at(now + *wait, [weak, generation] {
    if (auto self = weak.lock()) self->restartNow(generation);
  });
}

void FlowRuntime::restartNow(uint64_t generation) {
  // Under the submission lock: an operator's command or a DELETE accepted meanwhile either
  // voided this restart (generation, removed) or is queued after it.
  std::lock_guard submit(submit_mu_);
  Desired desired;
  {
    std::lock_guard lock(mu_);
    if (generation != restart_.generation() || state_ != State::kFailed ||
        desired_ == Desired::kStopped || removed_ || !local()) {
      return;
    }
    next_restart_at_.reset();
    statusTouched();
    desired = desired_;
  }
  spdlog::info("flow {}: restarting", id_);
  if (services_->restarts) services_->restarts->fetch_add(1, std::memory_order_relaxed);
  keepStoredVersionOnNextStart();  // a restart after a failure runs the same code again
  submitCommand(Command::kStart, StopMode::kSoft, [](const Outcome&) {});
  if (desired == Desired::kPaused) {
    submitCommand(Command::kPause, StopMode::kSoft, [](const Outcome&) {});
  }
}

}  // namespace sluice
