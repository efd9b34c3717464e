// Cron expressions: every field's syntax, names, steps, the day-of-month/day-of-week rule, and
// the refusals, each naming the field and what is wrong.
#include "core/schedule/cron.hpp"

#include <gtest/gtest.h>

namespace sluice::schedule {
namespace {

CronExpr parsed(const std::string& text) {
  std::string error;
  auto e = CronExpr::parse(text, &error);
  EXPECT_TRUE(e.has_value()) << text << ": " << error;
  return e.value_or(*CronExpr::parse("* * * * *", &error));
}

std::string refusal(const std::string& text) {
  std::string error;
  auto e = CronExpr::parse(text, &error);
  EXPECT_FALSE(e.has_value()) << text;
  return error;
}

TEST(Cron, MinutesListsRangesAndSteps) {
  auto e = parsed("*/15 * * * *");
  for (unsigned m = 0; m < 60; ++m) EXPECT_EQ(e.matchesMinute(m), m % 15 == 0) << m;
  e = parsed("5,10-12,50/5 * * * *");
  for (unsigned m = 0; m < 60; ++m) {
    const bool want = m == 5 || (m >= 10 && m <= 12) || m == 50 || m == 55;
    EXPECT_EQ(e.matchesMinute(m), want) << m;
  }
  e = parsed("10-30/10 * * * *");
  for (unsigned m = 0; m < 60; ++m) EXPECT_EQ(e.matchesMinute(m), m == 10 || m == 20 || m == 30);
}

TEST(Cron, HoursAndDaysOfMonth) {
  auto e = parsed("0 9-17 1,15 * *");
  EXPECT_TRUE(e.matchesHour(9));
  EXPECT_TRUE(e.matchesHour(17));
  EXPECT_FALSE(e.matchesHour(18));
  EXPECT_TRUE(e.matchesDay(3, 1, 2));
  EXPECT_TRUE(e.matchesDay(3, 15, 5));
  EXPECT_FALSE(e.matchesDay(3, 2, 3));
}

TEST(Cron, MonthAndWeekdayNamesInAnyCase) {
  auto e = parsed("0 0 * JAN-mar,Dec mon-FRI");
  EXPECT_TRUE(e.matchesDay(1, 5, 1));   // a Monday in January
  EXPECT_TRUE(e.matchesDay(12, 5, 5));  // a Friday in December
  EXPECT_FALSE(e.matchesDay(4, 5, 1));  // April
  EXPECT_FALSE(e.matchesDay(2, 5, 6));  // Saturday
  EXPECT_FALSE(e.matchesDay(2, 5, 0));  // Sunday
}

TEST(Cron, SundayIsZeroAndSeven) {
  for (const char* text : {"0 0 * * 0", "0 0 * * 7", "0 0 * * sun"}) {
    auto e = parsed(text);
    EXPECT_TRUE(e.matchesDay(6, 7, 0)) << text;
    EXPECT_FALSE(e.matchesDay(6, 8, 1)) << text;
  }
  auto weekend = parsed("0 0 * * 6-7");
  EXPECT_TRUE(weekend.matchesDay(6, 6, 6));
  EXPECT_TRUE(weekend.matchesDay(6, 7, 0));
  EXPECT_FALSE(weekend.matchesDay(6, 8, 1));
}

// Vixie cron: both day fields restricted -> either matches; one restricted -> that one.
TEST(Cron, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
  auto both = parsed("0 0 13 * fri");
  EXPECT_TRUE(both.matchesDay(5, 13, 3));   // the 13th, a Wednesday
  EXPECT_TRUE(both.matchesDay(5, 16, 5));   // a Friday, the 16th
  EXPECT_FALSE(both.matchesDay(5, 14, 4));  // neither
  auto dom = parsed("0 0 13 * *");
  EXPECT_FALSE(dom.matchesDay(5, 16, 5));
  auto dow = parsed("0 0 * * fri");
  EXPECT_FALSE(dow.matchesDay(5, 13, 3));
  auto stepped = parsed("0 0 */2 * fri");  // `*/2` counts as unrestricted, as in Vixie cron
  EXPECT_FALSE(stepped.matchesDay(5, 13, 3));
  EXPECT_TRUE(stepped.matchesDay(5, 15, 5));
}

TEST(Cron, Macros) {
  auto daily = parsed("@daily");
  EXPECT_TRUE(daily.matchesHour(0));
  EXPECT_FALSE(daily.matchesHour(1));
  EXPECT_TRUE(daily.matchesMinute(0));
  auto hourly = parsed("@HOURLY");
  EXPECT_TRUE(hourly.matchesHour(13));
  EXPECT_FALSE(hourly.matchesMinute(1));
  auto weekly = parsed("@weekly");
  EXPECT_TRUE(weekly.matchesDay(1, 4, 0));
  EXPECT_FALSE(weekly.matchesDay(1, 5, 1));
  auto yearly = parsed("@yearly");
  EXPECT_TRUE(yearly.matchesDay(1, 1, 4));
  EXPECT_FALSE(yearly.matchesDay(2, 1, 0));
  EXPECT_EQ(parsed(" */5  *\t* * * ").text(), " */5  *\t* * * ");
}

TEST(Cron, RefusalsNameTheFieldAndThePart) {
  EXPECT_EQ(refusal("* * * *"),
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            "'* * * *' has 4");
  EXPECT_EQ(refusal("60 * * * *"), "minute field '60': 60 is out of range 0-59");
  EXPECT_EQ(refusal("* 24 * * *"), "hour field '24': 24 is out of range 0-23");
  EXPECT_EQ(refusal("* * 0 * *"), "day-of-month field '0': 0 is out of range 1-31");
  EXPECT_EQ(refusal("* * * 13 *"), "month field '13': 13 is out of range 1-12");
  EXPECT_EQ(refusal("* * * * 8"), "day-of-week field '8': 8 is out of range 0-7");
  EXPECT_EQ(refusal("* * * jan-foo *"), "month field 'jan-foo': unknown name 'foo'");
  EXPECT_EQ(refusal("* * * * mon-xyz"), "day-of-week field 'mon-xyz': unknown name 'xyz'");
  EXPECT_EQ(refusal("x * * * *"), "minute field 'x': 'x' is not a number");
  EXPECT_EQ(refusal("*/0 * * * *"), "minute field '*/0': step '0' is not a positive number");
  EXPECT_EQ(refusal("*/ * * * *"), "minute field '*/': step '' is not a positive number");
  EXPECT_EQ(refusal("1/4294967295 * * * *"),
            "minute field '1/4294967295': step 4294967295 is larger than the field's range 0-59");
  EXPECT_EQ(refusal("1/99999999999 * * * *"),
            "minute field '1/99999999999': step '99999999999' is not a positive number");
  EXPECT_EQ(refusal("30-10 * * * *"), "minute field '30-10': range '30-10' runs backwards");
  EXPECT_EQ(refusal("1,,2 * * * *"), "minute field '1,,2': an empty list element");
  EXPECT_EQ(refusal("1- * * * *"), "minute field '1-': a value is missing");
  EXPECT_EQ(refusal("-1 * * * *"), "minute field '-1': a value is missing");
  EXPECT_EQ(refusal("@sometimes"),
            "unknown macro '@sometimes' (known: @yearly, @annually, @monthly, @weekly, @daily, "
            "@midnight, @hourly)");
  EXPECT_EQ(refusal(""),
            "a cron expression has 5 fields (minute hour day-of-month month day-of-week), '' "
            "has 0");
}

}  // namespace
}  // namespace sluice::schedule
