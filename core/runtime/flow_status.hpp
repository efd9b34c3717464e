// What GET /flows/status shows of a flow, and how its times are written.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model/flow_spec.hpp"
#include "core/model/run_record.hpp"
#include "core/model/states.hpp"
#include "core/model/wall_clock.hpp"  // formatTime
#include "core/runtime/pending.hpp"

namespace sluice {

/// A snapshot of a flow for GET /flows/status.
struct FlowStatus {
  std::string id;
  std::string type;
  std::string type_version;  // version of the flow type it runs (or would start on)
  State state = State::kStopped;
  Desired desired = Desired::kStopped;
  SystemTime since;
  std::string error;  // last error, empty when none
  std::vector<std::pair<std::string, int64_t>> counters;
  std::vector<std::pair<std::string, double>> gauges;
  std::string operation;                      // command in progress, empty when none
  std::optional<SystemTime> deadline;         // its deadline
  bool restarts = false;                      // runtime.restart.policy is on-failure
  uint32_t restart_count = 0;                 // restarts since the last clean run
  std::optional<SystemTime> next_restart_at;  // a restart is pending
  bool clustered = false;                     // the store is shared: node and epoch are shown
  std::string node;                           // owner node; empty when not assigned yet
  uint64_t epoch = 0;                         // the owner's fencing epoch
  bool scheduled = false;                     // runtime.schedule is set
  std::optional<SystemTime> next_run_at;      // when it fires next (none: suspended, or never)
  uint64_t runs = 0;                          // runs begun (core/model/run_record.hpp)
  RunRecord last_run;                         // the last one; never ran when not started
  /// runtime.after: the upstream runs this flow still waits for (docs/orchestration.md).
  struct AfterWait {
    std::string flow_id;
    AfterOn on = AfterOn::kSucceeded;
    RunResult last_result = RunResult::kNone;  // how its last run ended (none: never, or going)
    bool missing = false;                      // no such flow (deleted with ?force=true)
  };
  bool has_after = false;  // runtime.after is set: waiting_for is shown
  std::vector<AfterWait> waiting_for;
};

}  // namespace sluice
