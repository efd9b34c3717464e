// The runs of a flow (core/model/run_record.hpp): a run begins when the flow enters `starting`
// and ends when it reaches `stopped`, `failed` or `completed`. The count and the last run are
// kept with the flow in the store, so that they survive restarts. Also what a schedule changes
// in the commands: pausing a scheduled flow with no run going on suspends its schedule only.
#include <spdlog/spdlog.h>

#include "core/runtime/flow_runtime.hpp"

namespace sluice {

void FlowRuntime::setRuns(uint64_t runs, RunRecord last) {
  std::lock_guard lock(mu_);
  runs_ = runs;
  const bool ended = last.ended.has_value();
  const bool any = runs > 0 || last.started || ended || last.due || !last.error.empty();
  last_run_ = any ? std::make_unique<RunRecord>(std::move(last)) : nullptr;
  if (ended) last_ended_ = std::make_unique<RunRecord>(*last_run_);
}

RunRecord& FlowRuntime::lastRunLocked() {
  if (!last_run_) last_run_ = std::make_unique<RunRecord>();
  return *last_run_;
}

RunRecord FlowRuntime::lastRun() const {
  std::lock_guard lock(mu_);
  return last_run_ ? *last_run_ : RunRecord{};
}

RunRecord FlowRuntime::lastEndedRun() const {
  std::lock_guard lock(mu_);
  return last_ended_ ? *last_ended_ : RunRecord{};
}

std::vector<AfterSpec> FlowRuntime::after() const {
  std::lock_guard lock(mu_);
  return spec_->runtime.after;
}

std::optional<FlowRuntime::RunWrite> FlowRuntime::noteRunLocked(State s, const std::string& error,
                                                                SystemTime now) {
  if (s == State::kStarting && !run_active_) {
    run_active_ = true;
    ++runs_;
    RunRecord& last = lastRunLocked();
    const auto due = last.due;  // the last firing is kept from run to run
    last = RunRecord{};
    last.started = now;
    last.due = due;
    end_as_.reset();
  } else if (run_active_ &&
             (s == State::kStopped || s == State::kFailed || s == State::kCompleted)) {
    run_active_ = false;
    RunRecord& last = lastRunLocked();
    last.ended = now;
    switch (s) {
      case State::kCompleted:
        last.result = RunResult::kSucceeded;
        break;
      case State::kFailed:
        last.result = RunResult::kFailed;
        last.error = error;
        break;
      default:
        last.result = end_as_.value_or(RunResult::kCancelled);
        break;
    }
    end_as_.reset();
    if (last_ended_) {
      *last_ended_ = last;
    } else {
      last_ended_ = std::make_unique<RunRecord>(last);
    }
  } else {
    return std::nullopt;
  }
  statusTouched();
  return RunWrite{runs_, storedRunRecord(*last_run_), ++run_writes_, !run_active_};
}

void FlowRuntime::storeRun(const std::optional<RunWrite>& write) {
  if (!write) return;
  // Once the run's end is stored, the engine hears of it (a dependent flow's start counts it).
  std::function<void()> then;
  if (write->ended && services_->run_ended) {
    then = [services = services_, id = id_] { services->run_ended(id); };
  }
  if (services_->runs == nullptr) {
    if (then) then();
    return;
  }
  bool taken = false;
  {
    std::lock_guard lock(run_store_mu_);  // queued in the order of the writes
    if (write->seq >= run_queued_) {      // else a later record is queued already
      run_queued_ = write->seq;
      taken = services_->runs->record({id_, incarnation_, write->runs, write->last_run}, then);
    }
  }
  if (!taken && then) then();  // outside the lock (EngineServices::run_ended)
}

Desired FlowRuntime::desiredAfterFor(Command c) const {
  std::lock_guard lock(mu_);
  if (c == Command::kResume && idle_paused_ && accepted_ == Desired::kPaused) {
    return Desired::kStopped;
  }
  return desiredAfter(c);
}

bool FlowRuntime::scheduled() const {
  std::lock_guard lock(mu_);
  return spec_->runtime.schedule.has_value();
}

void FlowRuntime::restoreIdlePaused() {
  std::lock_guard lock(mu_);
  idle_paused_ = true;
  accepted_ = Desired::kPaused;
  desired_ = Desired::kPaused;
}

void FlowRuntime::noteFiring(SystemTime due, bool store) {
  std::optional<RunWrite> write;
  {
    std::lock_guard lock(mu_);
    if (removed_) return;
    lastRunLocked().due = due;
    if (!store) return;
    write = RunWrite{runs_, storedRunRecord(*last_run_), ++run_writes_, false};
  }
  storeRun(write);
}

bool FlowRuntime::idlePaused() const {
  std::lock_guard lock(mu_);
  return idle_paused_ && accepted_ == Desired::kPaused;
}

uint64_t FlowRuntime::commandSeq() const {
  std::lock_guard lock(mu_);
  return command_seq_;
}

bool FlowRuntime::maySettle(uint64_t command_seq) const {
  std::lock_guard lock(mu_);
  return !removed_ && command_seq_ == command_seq && queued_commands_ == 0 &&
         accepted_ != Desired::kStopped;
}

bool FlowRuntime::settleCompleted(uint64_t command_seq) {
  std::lock_guard lock(mu_);
  if (removed_ || command_seq_ != command_seq || queued_commands_ != 0 ||
      accepted_ == Desired::kStopped) {
    return false;
  }
  accepted_ = Desired::kStopped;
  desired_ = Desired::kStopped;
  statusTouched();
  return true;
}

void FlowRuntime::completeInstance() {
  spdlog::info("flow {}: the run finished its work", id_);
  releaseInstance(StopMode::kSoft);
  // The desired state first: whoever sees `completed` sees it stopped too (a pause is then
  // refused as for any idle flow).
  const uint64_t seq = commandSeq();
  if (services_->completed) {
    // The engine: under its catalog lock, so that no command is accepted in between.
    services_->completed(shared_from_this(), seq);
  } else if (settleCompleted(seq) && services_->store != nullptr) {
    auto stored = services_->store->setDesired({{id_, Desired::kStopped, incarnation_}}, nullptr);
    if (!stored.ok()) {
      spdlog::warn("flow {}: completed, but its desired state could not be stored: {}", id_,
                   stored.error().message);
    }
  }
  setState(State::kCompleted);
}

}  // namespace sluice
