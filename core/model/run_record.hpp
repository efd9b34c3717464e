// A flow's runs (issue #12): how many it began, and how the last one went. A run begins when a
// start (a command, a restore, the restart policy) brings the flow to `starting`, and ends when
// it reaches `completed` (succeeded), `failed` (failed) or `stopped` (cancelled by a stop, or
// succeeded when a dedicated-thread flow's run returned SLUICE_OK). Stored with the flow.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

enum class RunResult { kNone, kSucceeded, kFailed, kCancelled };

constexpr std::string_view toString(RunResult r) {
  switch (r) {
    case RunResult::kNone:
      return "";
    case RunResult::kSucceeded:
      return "succeeded";
    case RunResult::kFailed:
      return "failed";
    case RunResult::kCancelled:
      return "cancelled";
  }
  return "";
}

struct RunRecord {
  using Time = std::chrono::system_clock::time_point;
  std::optional<Time> started;  // none: the flow never ran
  std::optional<Time> ended;    // none: in progress (or its end was never recorded)
  RunResult result = RunResult::kNone;
  std::string error;  // why it failed or was cancelled; empty when none
  /// The flow's last schedule firing, by the schedule's clock, kept from run to run (stored,
  /// not shown: a schedule with catch_up counts the firings missed after it).
  std::optional<Time> due;
};

/// What a run left behind when the engine stopped before it ended (a crash, or a shutdown
/// while it ran): shown as cancelled with this error, its end unknown.
inline constexpr std::string_view kRunInterrupted =
    "the engine stopped during this run (its end was not recorded)";

/// The stored form: compact JSON {"started":ms|null,"ended":ms|null,"result":"...",
/// "error":"...","due":ms}; "" for a flow that never ran nor was fired.
std::string storedRunRecord(const RunRecord& r);
/// Reads the stored form back; "" or unreadable text is a flow that never ran. A run stored as
/// begun and never ended comes back as cancelled with kRunInterrupted (the engine stopped).
RunRecord parseStoredRunRecord(std::string_view text);
/// The `last_run` member of GET /flows/status: {"started","ended","result","error"} with
/// RFC 3339 times and nulls for what is not known yet; "null" for a flow that never ran.
std::string runRecordJson(const RunRecord& r);

}  // namespace sluice
