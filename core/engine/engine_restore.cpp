// Engine: the restore at startup. The stored flows are built into runtimes on every core,
// published in stored order, and those whose desired state is running or paused are started.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <thread>

#include "core/engine/engine.hpp"
#include "core/runtime/heap.hpp"

namespace sluice {

void Engine::restore(std::vector<StoredFlow> stored) {
  // Parsing the stored configurations and building the runtimes is most of a restore: the
  // machine's cores share it (1,000,000 flows), and the catalog takes them in stored order.
  std::vector<std::shared_ptr<FlowRuntime>> made(stored.size());
  const auto build = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) made[i] = makeRuntime(stored[i]);
  };
  const size_t parts = stored.size() < kParallelBuild
                           ? 1
                           : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
  std::vector<std::future<void>> others;
  for (size_t p = 1; p < parts; ++p) {
    others.push_back(std::async(std::launch::async, build, stored.size() * p / parts,
                                stored.size() * (p + 1) / parts));
  }
  build(0, stored.size() / parts);
  for (auto& o : others) o.get();
  std::vector<std::pair<std::shared_ptr<FlowRuntime>, Desired>> to_start;
  {
    std::lock_guard lock(catalog_mu_);
    for (size_t i = 0; i < stored.size(); ++i) {
      const StoredFlow& f = stored[i];
      auto& flow = made[i];
      flows_.emplace(f.id, flow);
      order_.push_back(flow);
      const RunRecord last_run = parseStoredRunRecord(f.last_run);
      scheduleFlow(f.id, *flow->sharedSpec(), f.desired, &last_run);
      // A scheduled flow paused while idle only has its schedule suspended (makeRuntime).
      const bool idle_paused = flow->scheduled() && f.desired == Desired::kPaused;
      // In a cluster a flow starts where it is claimed, once this node joined (joinCluster).
      if (flow->local() && f.desired != Desired::kStopped && !idle_paused &&
          !flow->refusal(Command::kStart)) {
        to_start.emplace_back(flow, f.desired);
      }
    }
    graph_generation_.fetch_add(1, std::memory_order_release);  // new flows: a new graph
    spdlog::info("restored {} flows; {} to start", stored.size(), to_start.size());
    restoring_.store(to_start.size(), std::memory_order_release);
    // The restore is done (readiness) once every restored flow's last command has answered.
    auto restored = [this](const Outcome&) {
      if (restoring_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        spdlog::info("restore done: every restored flow reached its desired state or failed");
        // What the restore parsed and built in between (the stored rows, the documents, the
        // commands' records) is free now: hand its pages back (1,000,000 flows: ~100 MB).
        releaseFreeMemory();
      }
    };
    for (auto& [flow, desired] : to_start) {
      const bool paused = desired == Desired::kPaused;
      flow->keepStoredVersionOnNextStart();  // an engine restart changes no flow's code
      flow->acceptCommand(
          Command::kStart, StopMode::kSoft,
          paused ? FlowRuntime::Done([](const Outcome&) {}) : FlowRuntime::Done(restored));
      if (paused) flow->acceptCommand(Command::kPause, StopMode::kSoft, restored);
    }
  }
}

}  // namespace sluice
