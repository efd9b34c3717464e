// The runs of a flow (core/model/run_record.hpp): a run begins when the flow enters `starting`
// and ends when it reaches `stopped`, `failed` or `completed`. The count and the last run are
// kept with the flow in the store, so that they survive restarts.
#include <spdlog/spdlog.h>

#include "core/runtime/flow_runtime.hpp"

namespace sluice {

void FlowRuntime::setRuns(uint64_t runs, RunRecord last) {
  std::lock_guard lock(mu_);
  runs_ = runs;
  last_run_ = std::move(last);
}

std::optional<FlowRuntime::RunWrite> FlowRuntime::noteRunLocked(State s, const std::string& error) {
  const auto now = std::chrono::system_clock::now();
  if (s == State::kStarting && !run_active_) {
    run_active_ = true;
    ++runs_;
    last_run_ = RunRecord{};
    last_run_.started = now;
    end_as_.reset();
  } else if (run_active_ &&
             (s == State::kStopped || s == State::kFailed || s == State::kCompleted)) {
    run_active_ = false;
    last_run_.ended = now;
    switch (s) {
      case State::kCompleted:
        last_run_.result = RunResult::kSucceeded;
        break;
      case State::kFailed:
        last_run_.result = RunResult::kFailed;
        last_run_.error = error;
        break;
      default:
        last_run_.result = end_as_.value_or(RunResult::kCancelled);
        break;
    }
    end_as_.reset();
  } else {
    return std::nullopt;
  }
  statusTouched();
  return RunWrite{runs_, storedRunRecord(last_run_), ++run_writes_};
}

void FlowRuntime::storeRun(const std::optional<RunWrite>& write) {
  if (!write || services_->store == nullptr) return;
  std::lock_guard lock(run_store_mu_);
  if (write->seq < run_stored_) return;  // a later record is stored already
  run_stored_ = write->seq;
  auto stored = services_->store->setRunRecord(id_, incarnation_, write->runs, write->last_run);
  if (!stored.ok()) {
    spdlog::warn("flow {}: cannot store its run (#{}): {}", id_, write->runs,
                 stored.error().message);
  }
}

void FlowRuntime::completeInstance() {
  spdlog::info("flow {}: the run finished its work", id_);
  releaseInstance(StopMode::kSoft);
  bool stop_desired = false;
  {
    std::lock_guard lock(mu_);
    // A command accepted meanwhile (a start, a stop) decides the desired state itself.
    if (pending_commands_ == 0 && accepted_ != Desired::kStopped) {
      accepted_ = Desired::kStopped;
      desired_ = Desired::kStopped;
      stop_desired = true;
    }
  }
  setState(State::kCompleted);
  if (stop_desired && services_->store != nullptr) {
    auto stored = services_->store->setDesired({{id_, Desired::kStopped}}, nullptr);
    if (!stored.ok()) {
      spdlog::warn("flow {}: completed, but its desired state could not be stored: {}", id_,
                   stored.error().message);
    }
  }
}

}  // namespace sluice
