// The configuration object of a flow: shape validation and the parts the engine needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/errors.hpp"
#include "core/model/json.hpp"

namespace sluice {

/// Where a flow's plugin instance runs.
enum class Isolation { kThread, kProcess };

/// What the engine does when a flow fails (runtime.restart).
struct RestartPolicy {
  bool on_failure = false;           // "policy": "never" (false) or "on-failure" (true)
  uint32_t max_restarts = 5;         // restarts in a row before giving up
  uint32_t backoff_ms = 1'000;       // delay before the first restart, doubled each time
  uint32_t max_backoff_ms = 60'000;  // cap of the delay
  uint32_t reset_after_ms = 60'000;  // running this long without failing resets the count
};

/// Engine-level per-flow settings: the `runtime` member of a configuration (docs/configuration.md).
/// What a schedule's firing does while the previous run still goes (docs/orchestration.md).
enum class Overlap { kSkip, kQueue, kReplace };

/// runtime.schedule: the engine starts the flow at each firing of `cron` in `timezone`.
struct ScheduleSpec {
  std::string cron;              // checked by CronExpr::parse
  std::string timezone = "UTC";  // an IANA name; the engine checks the system has it
  Overlap overlap = Overlap::kSkip;
  bool catch_up = false;  // after downtime, run once for the firings missed
};

/// runtime.after[].on: how an upstream's run must end for this flow to start.
enum class AfterOn {
  kSucceeded,  // its run succeeded (the flow completed)
  kFailed,     // its run failed
  kCompleted,  // its run ended, whatever the result (succeeded, failed or cancelled)
};
std::string_view toString(AfterOn on);

/// One edge of runtime.after: this flow starts once every upstream's run ended as required.
struct AfterSpec {
  std::string flow_id;
  AfterOn on = AfterOn::kSucceeded;
  bool operator==(const AfterSpec&) const = default;
};

struct RuntimeOptions {
  uint32_t start_timeout_ms = 10'000;  // start (and pause/resume) hooks must return within this
  uint32_t stop_timeout_ms = 5'000;    // a soft stop past this escalates to a hard stop
  Isolation isolation = Isolation::kThread;
  uint32_t memory_limit_mb = 0;  // process isolation only; 0 = no limit
  RestartPolicy restart;
  std::optional<ScheduleSpec> schedule;
  std::vector<AfterSpec> after;  // upstream flows (a DAG: docs/orchestration.md)
};

inline constexpr uint32_t kMaxTimeoutMs = 600'000;
inline constexpr const char* kDefaultFlowType = "noop";

/// A validated configuration object.
struct FlowSpec {
  std::string id;
  std::string type;
  std::string config_json = "{}";  // the `config` member, compact JSON text
  RuntimeOptions runtime;
  std::string record_json;  // the whole object as stored and returned, compact JSON text
};

/// True when `id` is a valid flow id (1-128 chars of [A-Za-z0-9._-], first a letter or digit,
/// not a reserved word).
bool isValidFlowId(std::string_view id);
/// True when `name` may name a flow type (1-128 chars of [A-Za-z0-9._-]; never a path).
bool isValidTypeName(std::string_view name);
/// Flow ids that collide with routes.
bool isReservedFlowId(std::string_view id);

/// Checks the shape of one configuration object and fills *out. When `path_id` is not empty (a
/// PUT), `flow_id` may be absent and, when present, must equal it. Problems are appended to
/// `problems` (index/flow_id left for the caller to set); returns true when there were none.
/// Does not know about flow types: the engine checks `type` and `config` against the plugins.
bool parseFlowSpec(const rapidjson::Value& v, std::string_view path_id, FlowSpec* out,
                   std::vector<Problem>& problems);

}  // namespace sluice
