// Commands (start, stop, pause, resume) on one flow, a list or every flow: accepted under the
// catalog lock with their desired states stored in one transaction, queued on each flow's
// strand in that order, and answered once every flow answered and their runs are stored.
#include <algorithm>
#include <atomic>
#include <optional>
#include <set>

#include "core/engine/engine.hpp"

namespace sluice {

void Engine::command(const CommandRequest& request,
                     std::function<void(Result<std::vector<CommandDetail>>)> done, AuditPtr audit) {
  struct Batch {
    std::atomic<size_t> remaining = 0;  // each detail has one writer; the last one answers
    std::vector<CommandDetail> details;
    std::function<void(Result<std::vector<CommandDetail>>)> done;
  };
  auto batch = std::make_shared<Batch>();
  std::vector<std::shared_ptr<FlowRuntime>> targets;
  // Cluster: a failure its owner published after this moment is the command's outcome.
  const SystemTime command_at = std::chrono::system_clock::now();
  // Errors are answered once the catalog lock is released: a caller may send another request
  // from its callback.
  std::optional<Error> refused;
  if (cluster_ && coordinator_) {
    // One round of the control loop learns every flow created on another node a moment ago:
    // a command for every flow, or for one not known here yet, addresses them too.
    bool stale = !request.flow_ids;
    for (size_t i = 0; !stale && i < request.flow_ids->size(); ++i) {
      stale = !find((*request.flow_ids)[i]);
    }
    if (stale) coordinator_->syncNow(std::chrono::seconds(2));
  }
  {
    std::lock_guard lock(catalog_mu_);
    std::vector<Problem> problems;
    if (shut_down_) refused = Error{ErrorKind::kUnavailable, "the engine is shutting down", {}};
    if (refused) {
      // answered below
    } else if (request.flow_ids) {
      std::set<std::string> seen;
      for (size_t i = 0; i < request.flow_ids->size(); ++i) {
        const std::string& id = (*request.flow_ids)[i];
        if (!seen.insert(id).second) continue;  // addressed once
        auto it = flows_.find(id);
        if (it == flows_.end()) {
          problems.push_back({i, id, "", "flow '" + id + "' does not exist"});
          continue;
        }
        targets.push_back(it->second);
      }
    } else {
      targets = order_;
    }
    for (size_t i = 0; !refused && i < targets.size(); ++i) {
      // A flow that runs on another node is judged by the state its owner published.
      const auto& t = targets[i];
      if (auto why = t->local() ? t->refusal(request.command)
                                : t->refusal(request.command, briefStatus(*t).state)) {
        problems.push_back({std::nullopt, targets[i]->id(), "", *why});
      }
    }
    if (!refused && !problems.empty()) {
      bool unknown = false;
      for (const auto& p : problems) unknown = unknown || p.index.has_value();
      std::string msg = problems.size() == 1 ? problems[0].message
                        : unknown ? "unknown or invalid flows in flow_ids; no flow was changed"
                                  : std::to_string(problems.size()) +
                                        " flows cannot take this command; no flow was changed";
      refused = Error{ErrorKind::kInvalid, msg, std::move(problems)};
    }
    if (!refused) {
      std::vector<DesiredRow> desired;
      for (const auto& f : targets) {
        Desired d = f->desiredAfterFor(request.command);
        if (d != f->desired()) desired.push_back({f->id(), d, f->incarnation()});
        f->writeBegins();
      }
      if (audit && !request.flow_ids) {
        audit->entry.flow_ids.clear();
        for (const auto& f : targets) audit->entry.flow_ids.push_back(f->id());
      }
      auto stored = store_->setDesired(desired, audit.get());
      if (!stored.ok()) refused = stored.error();
      const uint64_t mark = nextWriteMark();
      for (const auto& f : targets) f->writeEnds(mark);
    }
    if (refused) targets.clear();
    batch->remaining = targets.size();
    batch->details.resize(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) batch->details[i].flow_id = targets[i]->id();
    if (!refused) batch->done = std::move(done);
    // Accepted and queued in one step, under the catalog lock: commands reach each flow's
    // strand in the order they were accepted. Callbacks never run synchronously here.
    auto remote = std::make_shared<std::vector<RemoteWait>>();
    const bool any_local =
        std::any_of(targets.begin(), targets.end(), [](const auto& t) { return t->local(); });
    // The flows' turns reach the pool in batches (one lock, one wake-up per idle worker each),
    // small enough that the workers start on the first while the rest are queued.
    constexpr size_t kPostBatch = 256;
    std::optional<ThreadPool::Batch> posts;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (i % kPostBatch == 0) {
        posts.reset();
        posts.emplace(&pool_);
      }
      auto answered = [this, batch, i, any_local](const Outcome& o, bool pending) {
        batch->details[i].state = o.state;
        batch->details[i].error = o.error;
        batch->details[i].pending = pending;
        if (batch->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        // Answered once the runs these flows began or ended are stored (one group commit for
        // the whole command, core/runtime/run_recorder.hpp); a command whose flows all run on
        // other nodes recorded nothing here.
        auto answer = [batch] { batch->done(std::move(batch->details)); };
        if (any_local) {
          runs_.afterDurable(std::move(answer));
        } else {
          answer();
        }
      };
      if (targets[i]->local()) {
        targets[i]->acceptCommand(request.command, request.mode,
                                  [answered](const Outcome& o) { answered(o, false); });
      } else {
        // Cluster: committed as desired state; the owner carries it out (docs/cluster.md).
        targets[i]->adoptRemote(FlowRuntime::desiredAfter(request.command));
        const auto budget =
            std::chrono::milliseconds(targets[i]->commandBudgetMs(request.command, request.mode));
        remote->push_back({targets[i], FlowRuntime::desiredAfter(request.command),
                           std::chrono::steady_clock::now() + budget, answered});
      }
      // Pause suspends a schedule; any other command lets it fire again.
      if (targets[i]->scheduled()) {
        scheduler_->suspend(targets[i]->id(), targets[i]->desired() == Desired::kPaused);
      }
    }
    posts.reset();
    if (!remote->empty()) {
      timer_.at(std::chrono::steady_clock::now(),
                [this, remote, since = command_at] { awaitRemote(remote, since); });
    }
  }
  if (refused) {
    done(std::move(*refused));
  } else if (targets.empty()) {
    batch->done(std::vector<CommandDetail>{});
  }
}

}  // namespace sluice
