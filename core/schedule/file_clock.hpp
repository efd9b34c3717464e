// A clock read from a file, for tests and dry runs of schedules (sluice --schedule-clock FILE):
// the file holds one RFC 3339 UTC time ("2026-03-29T00:59:00Z", milliseconds optional), which
// whoever drives the test rewrites to move time on. No real minutes pass in the tests.
#pragma once

#include <filesystem>
#include <functional>

#include "core/schedule/next_fire.hpp"

namespace sluice::schedule {

/// Parses "2026-03-29T00:59:00Z" or "2026-03-29T00:59:00.250Z"; nothing when it is not that.
std::optional<SysTime> parseUtc(std::string_view text);

/// A clock that reads `path` at every call. While the file is missing or does not hold a time,
/// it gives the last time it read (the system time before any), and logs the problem once.
std::function<SysTime()> fileClock(std::filesystem::path path);

}  // namespace sluice::schedule
