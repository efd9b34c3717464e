// When a schedule fires next, in a time zone: plain cases, month ends, leap days, and the two
// daylight saving changes of Europe/Berlin and America/New_York.
#include "core/schedule/next_fire.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <gtest/gtest.h>

namespace sluice::schedule {
namespace {

/// "2026-03-29T00:59:00Z" -> time point (UTC).
SysTime utc(const std::string& text) {
  std::istringstream in(text);
  date::sys_time<std::chrono::seconds> t;
  in >> date::parse("%Y-%m-%dT%H:%M:%SZ", t);
  EXPECT_FALSE(in.fail()) << text;
  return SysTime(t);
}

std::string utcText(std::optional<SysTime> t) {
  if (!t) return "never";
  return date::format("%Y-%m-%dT%H:%M:%SZ", std::chrono::floor<std::chrono::seconds>(*t));
}

std::string next(const std::string& cron, const std::string& zone, const std::string& after) {
  std::string error;
  auto expr = CronExpr::parse(cron, &error);
  EXPECT_TRUE(expr) << error;
  const date::time_zone* z = findZone(zone, &error);
  EXPECT_NE(z, nullptr) << error;
  if (!expr || z == nullptr) return "error";
  return utcText(nextFire(*expr, z, utc(after)));
}

TEST(NextFire, StrictlyAfterAndAtTheNextMatchingMinute) {
  EXPECT_EQ(next("*/5 * * * *", "UTC", "2026-01-01T10:00:00Z"), "2026-01-01T10:05:00Z");
  EXPECT_EQ(next("*/5 * * * *", "UTC", "2026-01-01T10:04:59Z"), "2026-01-01T10:05:00Z");
  EXPECT_EQ(next("* * * * *", "UTC", "2026-01-01T23:59:30Z"), "2026-01-02T00:00:00Z");
  EXPECT_EQ(next("0 0 1 1 *", "UTC", "2026-01-01T00:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(next("30 2 * * mon-fri", "UTC", "2026-11-27T03:00:00Z"),  // a Friday
            "2026-11-30T02:30:00Z");                                  // Monday
}

TEST(NextFire, MonthEndsLeapDaysAndDatesThatNeverCome) {
  EXPECT_EQ(next("0 0 31 * *", "UTC", "2026-04-01T00:00:00Z"), "2026-05-31T00:00:00Z");
  EXPECT_EQ(next("0 12 29 2 *", "UTC", "2026-03-01T00:00:00Z"), "2028-02-29T12:00:00Z");
  EXPECT_EQ(next("0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z"), "never");
}

TEST(NextFire, InTheScheduleTimeZone) {
  // 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
  EXPECT_EQ(next("0 9 * * *", "Europe/Berlin", "2026-01-15T12:00:00Z"), "2026-01-16T08:00:00Z");
  EXPECT_EQ(next("0 9 * * *", "Europe/Berlin", "2026-07-15T12:00:00Z"), "2026-07-16T07:00:00Z");
  // Midnight in Berlin on a Monday is Sunday 23:00 UTC.
  EXPECT_EQ(next("0 0 * * mon", "Europe/Berlin", "2026-11-28T00:00:00Z"), "2026-11-29T23:00:00Z");
}

// Spring forward: Berlin's clocks go from 02:00 to 03:00 on 2026-03-29 (01:00 UTC).
TEST(NextFire, ALocalTimeSkippedBySpringForwardFiresAtTheJump) {
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00Z");
  // Every minute of the skipped hour is one firing, at the jump; the next is 03:00 local.
  EXPECT_EQ(next("* 2 * * *", "Europe/Berlin", "2026-03-29T00:59:00Z"), "2026-03-29T01:00:00Z");
  EXPECT_EQ(next("* 2-3 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z"),
            "2026-03-29T01:01:00Z");  // 03:01 local
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00Z");
  // New York: 02:00 -> 03:00 on 2026-03-08 (07:00 UTC).
  EXPECT_EQ(next("15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z"), "2026-03-08T07:00:00Z");
}

// Fall back: Berlin's clocks go from 03:00 back to 02:00 on 2026-10-25 (01:00 UTC); 02:30
// happens twice (00:30 and 01:30 UTC). It fires once, at the first.
TEST(NextFire, ALocalTimeThatHappensTwiceFiresOnceAtTheFirst) {
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z"), "2026-10-25T00:30:00Z");
  EXPECT_EQ(next("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00Z");
  // Hourly: the repeated 02:00 (01:00 UTC) is the same local time again, so it does not fire;
  // after 02:00 CEST (00:00 UTC) the next is 03:00 CET (02:00 UTC).
  EXPECT_EQ(next("0 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z"), "2026-10-25T02:00:00Z");
}

TEST(NextFire, UnknownZonesAreNamed) {
  std::string error;
  EXPECT_EQ(findZone("Mars/Olympus_Mons", &error), nullptr);
  EXPECT_EQ(error,
            "unknown time zone 'Mars/Olympus_Mons' (an IANA name such as Europe/Berlin or UTC, "
            "from the system's tzdata)");
  EXPECT_NE(findZone("UTC", &error), nullptr);
}

}  // namespace
}  // namespace sluice::schedule
