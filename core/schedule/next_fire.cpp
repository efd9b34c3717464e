#include "core/schedule/next_fire.hpp"

#include <date/tz.h>

#include <mutex>

namespace sluice::schedule {

const date::time_zone* findZone(std::string_view name, std::string* error) {
  // The date library reads the system's tzdata lazily on its first lookups, and two threads
  // looking up at once race in it (ThreadSanitizer saw it in Scheduler::set): lookups are
  // serialized; they are rare (a schedule set or changed) and cheap once the data is read.
  static std::mutex lookup_mu;
  std::lock_guard lock(lookup_mu);
  try {
    return date::locate_zone(name);
  } catch (const std::exception& e) {
    *error = "unknown time zone '" + std::string(name) + "' (an IANA name such as " +
             "Europe/Berlin or UTC, from the system's tzdata)";
    return nullptr;
  }
}

std::optional<SysTime> nextFire(const CronExpr& cron, const date::time_zone* zone, SysTime after) {
  using namespace std::chrono;
  const auto local_after = zone->to_local(after);
  // The first local minute that may be later than `after`.
  const auto first = floor<minutes>(local_after) + minutes(1);
  auto day = floor<date::days>(first);
  auto from = duration_cast<minutes>(first - day);  // within the first day
  constexpr int kDays = 5 * 366 + 1;
  for (int i = 0; i < kDays; ++i, day += date::days(1), from = minutes(0)) {
    const date::year_month_day ymd{day};
    const date::weekday wd{day};
    if (!cron.matchesDay(static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                         wd.c_encoding())) {
      continue;
    }
    for (unsigned h = static_cast<unsigned>(from.count() / 60); h < 24; ++h) {
      if (!cron.matchesHour(h)) continue;
      for (unsigned m = 0; m < 60; ++m) {
        if (!cron.matchesMinute(m)) continue;
        const auto local = day + hours(h) + minutes(m);
        if (local < first) continue;
        const date::local_info info = zone->get_info(local);
        SysTime at;
        switch (info.result) {
          case date::local_info::unique:
          case date::local_info::ambiguous:  // the first occurrence
            at = SysTime(local.time_since_epoch() - info.first.offset);
            break;
          case date::local_info::nonexistent:  // the end of the gap: the jump itself
            at = info.first.end;
            break;
        }
        if (at > after) return at;
      }
    }
  }
  return std::nullopt;
}

}  // namespace sluice::schedule
