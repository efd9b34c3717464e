// Update (PUT) of a FlowRuntime: in place through the reconfigure hook, or a restart with the
// new configuration and a rollback to the old one when it does not start.
//
// The store is written only once the new configuration is in effect, and only after the update
// claimed its answer: a deadline that answered first means nothing is stored (the caller was
// told it failed), and a commit means the deadline can no longer answer "failed".
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/model/content_tag.hpp"
#include "core/runtime/flow_runtime.hpp"

namespace sluice {

void FlowRuntime::update(FlowSpec spec, std::shared_ptr<const FlowType> type, UpdateDone done,
                         AuditPtr audit, std::optional<std::vector<std::string>> if_match,
                         bool persist) {
  RuntimeOptions rt;
  {
    std::lock_guard lock(mu_);
    rt = spec_->runtime;
  }
  // Worst case: stop the old instance, start the new one, fail, start the old one again.
  const uint32_t budget = rt.stop_timeout_ms + kHardStopBoundMs + rt.start_timeout_ms +
                          spec.runtime.start_timeout_ms + kHardStopBoundMs;
  // Answered once: by runUpdate, or by the deadline.
  auto answered = std::make_shared<std::atomic<bool>>(false);
  Done on_deadline = [done, answered, id = id_](const Outcome& o) {
    if (answered->exchange(true)) return;
    done(Error{ErrorKind::kUnavailable, "update of flow '" + id + "': " + o.error, {}});
  };
  auto p = makePending("update", budget, on_deadline);
  std::weak_ptr<FlowRuntime> weak = weak_from_this();
  p->arm(services_->timer, std::chrono::milliseconds(budget), [weak, p, budget] {
    if (auto self = weak.lock()) {
      self->onDeadline(p, "update did not finish within " + std::to_string(budget) +
                              " ms: plugin code is still running");
    }
  });
  UpdateDone finish_update = [done, answered](const Result<sluice::Done>& r) {
    if (answered->exchange(true)) return;
    done(r);
  };
  std::lock_guard submit(submit_mu_);
  strand_.post([self = shared_from_this(), spec = std::move(spec), type = std::move(type), p,
                finish_update, audit = std::move(audit), if_match = std::move(if_match),
                persist]() mutable {
    self->runUpdate(std::move(spec), std::move(type), p, finish_update, std::move(audit), if_match,
                    persist);
  });
}

void FlowRuntime::runUpdate(FlowSpec spec, std::shared_ptr<const FlowType> type,
                            const std::shared_ptr<Pending>& p, UpdateDone done, AuditPtr audit,
                            const std::optional<std::vector<std::string>>& if_match, bool persist) {
  beginOperation(p);
  // The new configuration, shared by the instance it starts and the flow once committed.
  const auto next = std::make_shared<const FlowSpec>(spec);
  const Error gone{ErrorKind::kNotFound, "flow '" + id_ + "' does not exist", {}};
  const Error late{ErrorKind::kUnavailable,
                   "update of flow '" + id_ + "' passed its deadline; nothing was stored",
                   {}};
  // Claims the answer, then stores: exactly one of "committed" and "failed" is ever answered.
  auto commit = [&]() -> Result<sluice::Done> {
    if (!p->claim(false)) return late;
    release(p);
    if (removed()) return gone;
    if (persist) {
      auto r = services_->store->updateFlow(id_, incarnation_, spec.record_json, audit.get());
      if (!r.ok()) return r;
    }
    {
      std::lock_guard lock(mu_);
      spec_ = next;
      type_ = type;
    }
    services_->records_changed();
    return sluice::Done{};
  };
  auto answer_error = [&](const Error& e) {
    if (p->claim(false)) release(p);
    done(e);
  };
  if (removed()) {
    if (!if_match) return answer_error(gone);
    return answer_error(Error{ErrorKind::kPrecondition, gone.message, {}});
  }
  if (if_match) {
    // On the strand: no other update of this flow can land between this check and the commit.
    const std::string current = contentTag(recordJson());
    if (!ifMatchAccepts(*if_match, current)) {
      return answer_error(Error{ErrorKind::kPrecondition,
                                "flow '" + id_ + "' has changed: its entity tag is " + current +
                                    ", not the one in If-Match; nothing was stored",
                                {}});
    }
  }
  if (!instance_ || !local()) {
    // Stopped or failed (or, in a cluster, run elsewhere): only the configuration changes.
    return done(commit());
  }
  // In place only when nothing about where the instance runs changes.
  const bool same_home = instance_spec_ &&
                         spec.runtime.isolation == instance_spec_->runtime.isolation &&
                         spec.runtime.memory_limit_mb == instance_spec_->runtime.memory_limit_mb;
  if (instance_type_ == type && same_home && instance_->canReconfigure()) {
    // The type applies the new config in place: no restart.
    std::string error;
    const bool ok = callHook(
        "reconfigure", [&](sluice_error* e) { return instance_->reconfigure(spec.config_json, e); },
        &error);
    if (ok) {
      auto r = commit();
      if (r.ok()) instance_spec_ = next;
      return done(r);
    }
    return answer_error(Error{ErrorKind::kInvalid,
                              "the new configuration of flow '" + id_ + "' was refused: " + error +
                                  "; the previous configuration stays in effect and nothing was "
                                  "stored",
                              {}});
  }
  const bool was_paused = state() == State::kPaused;
  std::shared_ptr<const FlowSpec> old_spec = instance_spec_;
  std::shared_ptr<const FlowType> old_type = instance_type_;

  ++step_generation_;
  setStateKeepError(State::kStopping);
  std::string stop_error;
  stopAndDestroy(signals_.cancel ? StopMode::kHard : StopMode::kSoft, &stop_error);

  auto bring_up = [&](const std::shared_ptr<const FlowSpec>& s,
                      const std::shared_ptr<const FlowType>& t, std::string* err) -> bool {
    setState(State::kStarting);
    if (!createAndStart(s, t, err)) return false;
    if (was_paused) {
      signals_.pause_requested = true;
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
  if (bring_up(next, type, &error)) {
    auto r = commit();
    if (r.ok()) return done(r);
    error = r.error().message;
    ++step_generation_;
    std::string ignored;
    stopAndDestroy(StopMode::kSoft, &ignored);
  }
  // Roll back to the configuration that was running.
  std::string restore_error;
  const bool restored = bring_up(old_spec, old_type, &restore_error);
  if (restored) {
    spdlog::warn("flow {}: update failed ({}); previous configuration restored", id_, error);
  } else {
    setState(State::kFailed, "restoring the previous configuration failed: " + restore_error);
  }
  if (old_spec && spec.record_json == old_spec->record_json && type && old_type &&
      type != old_type) {
    // The same configuration on other code: an upgrade (Engine::upgrade).
    return answer_error(Error{
        ErrorKind::kInvalid,
        "upgrade of flow '" + id_ + "' to " + type->ref() + " failed to start: " + error +
            (restored ? "; rolled back to " + old_type->ref()
                      : "; rolling back to " + old_type->ref() + " failed too: " + restore_error),
        {}});
  }
  answer_error(Error{ErrorKind::kInvalid,
                     "the new configuration of flow '" + id_ + "' failed to start: " + error +
                         "; the previous configuration was restored and nothing was stored",
                     {}});
}

}  // namespace sluice
