#include "core/model/duration.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::milliseconds;

TEST(DurationTest, ParsesEveryUnit) {
  EXPECT_EQ(parseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(parseDuration("10s"), milliseconds(10'000));
  EXPECT_EQ(parseDuration("5m"), milliseconds(300'000));
  EXPECT_EQ(parseDuration("2h"), milliseconds(7'200'000));
  EXPECT_EQ(parseDuration("30d"), milliseconds(2'592'000'000));
  EXPECT_EQ(parseDuration("0s"), milliseconds(0));
}

TEST(DurationTest, RefusesAnythingElse) {
  for (const char* bad :
       {"", "10", "s", "-1s", "1.5s", "10 s", "10sec", "1S", "10s ", "9999999999999d"}) {
    EXPECT_FALSE(parseDuration(bad)) << bad;
  }
}

TEST(DurationTest, FormatsInTheLargestExactUnit) {
  EXPECT_EQ(formatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(formatDuration(milliseconds(10'000)), "10s");
  EXPECT_EQ(formatDuration(milliseconds(7'200'000)), "2h");
  EXPECT_EQ(formatDuration(milliseconds(0)), "0ms");
  for (const char* s : {"250ms", "10s", "5m", "2h", "30d"}) {
    EXPECT_EQ(formatDuration(*parseDuration(s)), s);
  }
}

}  // namespace
}  // namespace sluice
