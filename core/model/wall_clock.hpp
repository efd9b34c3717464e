// The machine's wall clock in milliseconds since the Unix epoch: the one definition that the
// store, the membership, the audit log and the plugins' now() share; and the one way times are
// written in the API (status, runs, events).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sluice {

inline int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// RFC 3339 UTC with milliseconds: 2026-01-02T03:04:05.678Z.
std::string formatTime(std::chrono::system_clock::time_point t);

}  // namespace sluice
