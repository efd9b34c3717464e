// Engine: schedules (runtime.schedule, docs/orchestration.md). The scheduler's thread calls
// onScheduleFires with the firings that came due at once; the engine starts the idle flows
// through the same command path as PATCH /flows/commands (one command: one stored transaction
// of desired states, then each flow's strand), or applies the overlap rule when the previous
// run still goes on. Only the node that runs a flow fires its schedule.
#include <spdlog/spdlog.h>

#include <set>

#include "core/engine/engine.hpp"

namespace sluice {
namespace {

std::string_view overlapName(Overlap o) {
  switch (o) {
    case Overlap::kSkip:
      return "skip";
    case Overlap::kQueue:
      return "queue";
    case Overlap::kReplace:
      return "replace";
  }
  return "skip";
}

}  // namespace

void Engine::scheduleFlow(const std::string& id, const FlowSpec& spec, Desired desired,
                          const RunRecord* restored_last_run) {
  if (!scheduler_) return;
  if (!spec.runtime.schedule) {
    scheduler_->remove(id);
    return;
  }
  const ScheduleSpec& s = *spec.runtime.schedule;
  std::optional<SystemTime> after;
  // Only a flow restored stopped: one restored running restarts, and that is its run.
  if (restored_last_run != nullptr && s.catch_up && restored_last_run->due &&
      desired == Desired::kStopped) {
    // A firing missed while the engine was down (after the last firing, stored with the
    // flow) is due at once: it runs once, then the schedule goes on from now.
    after = *restored_last_run->due;
  }
  scheduler_->set(id, s, after, desired == Desired::kPaused);
  status_changes_.fetch_add(1);
}

void Engine::onScheduleFires(const std::vector<schedule::Scheduler::Firing>& firings) {
  status_changes_.fetch_add(1);  // their next_run_at moved on
  std::vector<schedule::Scheduler::Firing> idle;
  for (const auto& [id, due] : firings) {
    try {
      if (fireOne(id, due)) idle.emplace_back(id, due);
    } catch (const std::exception& e) {
      spdlog::error("flow {}: its schedule's firing failed: {}", id, e.what());
    }
  }
  if (!idle.empty()) startFired(idle, true);
}

bool Engine::fireOne(const std::string& id, SystemTime due) {
  auto flow = find(id);
  if (!flow || !flow->local()) return false;  // deleted meanwhile, or another node runs it
  const auto schedule = flow->spec().runtime.schedule;
  if (!schedule) return false;
  const State state = flow->status().state;
  const bool paused = flow->desired() == Desired::kPaused;
  // Kept for catch_up: a firing that starts a run is stored with that run's record (or on its
  // own when the start is refused: startFired), any other one now.
  flow->noteFiring(due, paused || isActive(state));
  if (paused) return false;  // paused since the firing was taken
  spdlog::debug("flow {}: schedule '{}' fired (due {})", id, schedule->cron, formatTime(due));
  if (!isActive(state)) return true;
  switch (schedule->overlap) {
    case Overlap::kSkip:
      spdlog::warn("flow {}: scheduled run skipped: the previous run is still {} (overlap {})", id,
                   toString(state), overlapName(schedule->overlap));
      break;
    case Overlap::kQueue: {
      std::lock_guard lock(queued_mu_);
      const bool queued = queued_runs_.insert(id).second;
      spdlog::info("flow {}: the previous run is still {}: {} (overlap queue)", id, toString(state),
                   queued ? "a run is queued for when it ends" : "a run is queued already");
      break;
    }
    case Overlap::kReplace: {
      spdlog::info("flow {}: the previous run is still {}: stopping it (overlap replace)", id,
                   toString(state));
      CommandRequest stop;
      stop.command = Command::kStop;
      stop.flow_ids = std::vector<std::string>{id};
      command(stop, [this, id](const Result<std::vector<CommandDetail>>& r) {
        if (!r.ok()) {
          spdlog::error("flow {}: the replaced run could not be stopped: {}", id,
                        r.error().message);
          return;
        }
        startScheduled(id, "scheduled run (replacing the previous one)");
      });
      break;
    }
  }
  return false;
}

void Engine::startFired(const std::vector<schedule::Scheduler::Firing>& firings, bool first) {
  std::vector<std::string> ids;
  for (const auto& f : firings) ids.push_back(f.first);
  if (ids.size() <= 10) {
    for (const auto& id : ids) spdlog::info("flow {}: its schedule fired: starting it", id);
  } else {
    spdlog::info("schedules fired: starting {} flows", ids.size());
  }
  CommandRequest start;
  start.command = Command::kStart;
  start.flow_ids = ids;
  command(start, [this, firings, first](const Result<std::vector<CommandDetail>>& r) {
    // A start that does not happen keeps its firing for catch_up on its own.
    auto keep = [this](const std::string& id, SystemTime due) {
      if (auto flow = find(id)) flow->noteFiring(due, true);
    };
    if (r.ok()) {
      for (const auto& d : r.value()) {
        if (d.error.empty()) continue;
        spdlog::warn("flow {}: scheduled run failed: {}", d.flow_id, d.error);
      }
      return;
    }
    // Refused as a whole: the flows the refusal names are left out, the others start in a
    // second command (once).
    std::set<std::string> refused;
    for (const auto& p : r.error().details) refused.insert(p.flow_id);
    std::vector<schedule::Scheduler::Firing> rest;
    for (const auto& [id, due] : firings) {
      if (refused.count(id) != 0 || !first || r.error().kind != ErrorKind::kInvalid) {
        spdlog::warn("flow {}: scheduled run not started: {}", id, r.error().message);
        keep(id, due);
      } else {
        rest.emplace_back(id, due);
      }
    }
    if (!rest.empty()) startFired(rest, false);
  });
}

void Engine::onRunEnded(const std::string& id) {
  // Not on the flow's strand (this is called from inside its op): on a worker. Not at all while
  // the index of the current catalog is known to be empty.
  if (no_dependents_at_.load(std::memory_order_acquire) !=
      graph_generation_.load(std::memory_order_acquire)) {
    pool_.post([this, id] { startDependents(id); });
  }
  {
    std::lock_guard lock(queued_mu_);
    if (queued_runs_.erase(id) == 0) return;
  }
  // Not on the flow's strand (this is called from inside its op): from the timer thread.
  timer_.at(std::chrono::steady_clock::now(),
            [this, id] { startScheduled(id, "queued scheduled run"); });
}

void Engine::onCompleted(const std::shared_ptr<FlowRuntime>& flow, uint64_t command_seq) {
  // Under the catalog lock, as commands are accepted: none slips in between the check, the
  // store write and the change in memory.
  std::lock_guard lock(catalog_mu_);
  auto it = flows_.find(flow->id());
  if (it == flows_.end() || it->second != flow) return;  // deleted (and maybe created again)
  if (!flow->maySettle(command_seq)) return;
  flow->writeBegins();
  auto stored = store_->setDesired({{flow->id(), Desired::kStopped}}, nullptr);
  flow->writeEnds(nextWriteMark());
  if (!stored.ok()) {
    spdlog::warn("flow {}: completed, but its desired state stopped could not be stored: {}",
                 flow->id(), stored.error().message);
    return;
  }
  flow->settleCompleted(command_seq);
  if (flow->scheduled()) scheduler_->suspend(flow->id(), false);  // desired stopped: it fires
}

void Engine::startScheduled(const std::vector<std::string>& ids, const char* why) {
  CommandRequest start;
  start.command = Command::kStart;
  start.flow_ids = ids;
  command(start, [this, ids, why](const Result<std::vector<CommandDetail>>& r) {
    if (!r.ok() && ids.size() > 1) {
      // Refused as a whole (a flow deleted meanwhile, say): each one on its own.
      for (const auto& id : ids) startScheduled(id, why);
      return;
    }
    if (!r.ok()) {
      spdlog::warn("flow {}: {} not started: {}", ids[0], why, r.error().message);
      return;
    }
    for (const auto& d : r.value()) {
      if (!d.error.empty()) spdlog::warn("flow {}: {} failed: {}", d.flow_id, why, d.error);
    }
  });
}

}  // namespace sluice
