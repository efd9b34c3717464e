// Flow states: what the operator asked for (desired, persisted) and what the flow is doing
// (actual, not persisted; its runs are: core/runtime/run_record.hpp).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace sluice {

enum class Desired { kStopped, kRunning, kPaused };
inline constexpr size_t kDesiredCount = 3;
static_assert(static_cast<size_t>(Desired::kPaused) + 1 == kDesiredCount, "every Desired");

enum class State {
  kStopped,
  kStarting,
  kRunning,
  kPausing,
  kPaused,
  kResuming,
  kStopping,
  kFailed,
  kCompleted  // the run finished by itself and succeeded (SLUICE_DONE); desired is stopped
};
inline constexpr size_t kStateCount = 9;
inline constexpr State kAllStates[kStateCount] = {
    State::kStopped,  State::kStarting, State::kRunning, State::kPausing,  State::kPaused,
    State::kResuming, State::kStopping, State::kFailed,  State::kCompleted};

enum class Command { kStart, kStop, kPause, kResume };

enum class StopMode { kSoft = 0, kHard = 1 };

/// A run is in progress (or a command on it): not stopped, failed or completed.
constexpr bool isActive(State s) {
  return s != State::kStopped && s != State::kFailed && s != State::kCompleted;
}

constexpr std::string_view toString(Desired d) {
  switch (d) {
    case Desired::kStopped:
      return "stopped";
    case Desired::kRunning:
      return "running";
    case Desired::kPaused:
      return "paused";
  }
  return "stopped";
}

constexpr std::string_view toString(State s) {
  switch (s) {
    case State::kStopped:
      return "stopped";
    case State::kStarting:
      return "starting";
    case State::kRunning:
      return "running";
    case State::kPausing:
      return "pausing";
    case State::kPaused:
      return "paused";
    case State::kResuming:
      return "resuming";
    case State::kStopping:
      return "stopping";
    case State::kFailed:
      return "failed";
    case State::kCompleted:
      return "completed";
  }
  return "failed";
}

constexpr std::string_view toString(Command c) {
  switch (c) {
    case Command::kStart:
      return "start";
    case Command::kStop:
      return "stop";
    case Command::kPause:
      return "pause";
    case Command::kResume:
      return "resume";
  }
  return "start";
}

inline std::optional<Desired> desiredFromString(std::string_view s) {
  if (s == "stopped") return Desired::kStopped;
  if (s == "running") return Desired::kRunning;
  if (s == "paused") return Desired::kPaused;
  return std::nullopt;
}

inline std::optional<Command> commandFromString(std::string_view s) {
  if (s == "start") return Command::kStart;
  if (s == "stop") return Command::kStop;
  if (s == "pause") return Command::kPause;
  if (s == "resume") return Command::kResume;
  return std::nullopt;
}

}  // namespace sluice
