// When a cron schedule fires next, in a time zone of the system's tzdata (issue #12). libstdc++
// 12 has no C++20 <chrono> time zones (std::chrono::locate_zone is missing), so zones come from
// Howard Hinnant's date library (libhowardhinnant-date-dev, which C++20 zones were taken from),
// reading /usr/share/zoneinfo.
//
// Daylight saving time (docs/orchestration.md):
//  - a local time that does not exist (the clock jumps forward over it) fires at the instant of
//    the jump: every firing in the gap becomes one firing at its end;
//  - a local time that exists twice (the clock falls back) fires once, at its first occurrence.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/schedule/cron.hpp"

namespace date {
class time_zone;
}

namespace sluice::schedule {

using SysTime = std::chrono::system_clock::time_point;

/// A time zone by IANA name ("Europe/Berlin", "UTC"); nothing (and *error) when unknown.
const date::time_zone* findZone(std::string_view name, std::string* error);

/// The first firing of `cron` in `zone` strictly after `after`; nothing when there is none in
/// the next five years (a date that never comes, such as February 30).
std::optional<SysTime> nextFire(const CronExpr& cron, const date::time_zone* zone, SysTime after);

}  // namespace sluice::schedule
