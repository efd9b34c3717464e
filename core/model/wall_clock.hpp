// The machine's wall clock in milliseconds since the Unix epoch: the one definition that the
// store, the membership, the audit log and the plugins' now() share.
#pragma once

#include <chrono>
#include <cstdint>

namespace sluice {

inline int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice
