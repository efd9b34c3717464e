// Where a flow of a cluster runs: this node runs it only while it holds the flow's claim
// (core/cluster/coordinator.hpp). Flows of other nodes keep their configuration and desired
// state here, for status and validation, and never start.
#include <spdlog/spdlog.h>

#include "core/runtime/flow_runtime.hpp"

namespace sluice {

void FlowRuntime::evict(const std::string& why, Done done) {
  std::lock_guard submit(submit_mu_);
  local_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(mu_);
    restart_.reset();  // a restart already scheduled finds the flow not local and does nothing
    next_restart_at_.reset();
    statusTouched();
  }
  spdlog::info("flow {}: stopping here: {}", id_, why);
  auto p = makePending("stop (" + why + ")", kHardStopBoundMs, std::move(done));
  signals_.raiseCancel();  // the step or hook in flight sees it at once, as for a hard stop
  signals_.raiseStop();
  armStopDeadlines(p, StopMode::kHard, 0);
  strand_.post([self = shared_from_this(), p] { self->runStop(StopMode::kHard, p); });
}

uint32_t FlowRuntime::commandBudgetMs(Command c, StopMode mode) const {
  std::lock_guard lock(mu_);
  if (c != Command::kStop) return spec_->runtime.start_timeout_ms;
  return mode == StopMode::kHard ? kHardStopBoundMs
                                 : spec_->runtime.stop_timeout_ms + kHardStopBoundMs;
}

Desired FlowRuntime::accepted() const {
  std::lock_guard lock(mu_);
  return accepted_;
}

void FlowRuntime::adoptRemote(Desired desired) {
  std::lock_guard lock(mu_);
  if (desired_ == desired && accepted_ == desired) return;
  desired_ = desired;
  accepted_ = desired;
  statusTouched();
}

void FlowRuntime::adoptSpec(FlowSpec spec, std::shared_ptr<const FlowType> type) {
  std::lock_guard lock(mu_);
  spec_ = std::make_shared<const FlowSpec>(std::move(spec));
  type_ = std::move(type);
  statusTouched();
}

}  // namespace sluice
