#include "core/runtime/flow_status.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace sluice {
namespace {

TEST(FlowStatusTest, FormatsUtcWithMilliseconds) {
  const SystemTime t{std::chrono::milliseconds(1'795'000'000'123)};
  EXPECT_EQ(formatTime(t), "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(formatTime(SystemTime{}), "1970-01-01T00:00:00.000Z");
}

// The calendar arithmetic agrees with gmtime_r + strftime (what it replaced) across leap days,
// month ends and centuries, 1970 to 2255.
TEST(FlowStatusTest, FormatsAsGmtimeDoes) {
  const auto byLibc = [](long long ms) {
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::array<char, 40> buf{};
    const size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
    std::array<char, 8> frac{};
    std::snprintf(frac.data(), frac.size(), ".%03dZ", static_cast<int>(ms % 1000));
    return std::string(buf.data(), n) + frac.data();
  };
  std::mt19937_64 rng(7);
  // (SystemTime counts nanoseconds in 64 bits: it ends in 2262)
  std::uniform_int_distribution<long long> any(0, 9'000'000'000'000LL);         // to 2255
  std::vector<long long> instants = {951'782'400'000LL - 1, 951'782'400'000LL,  // 2000-02-29
                                     4'107'542'400'000LL,                       // 2100-02-28T00:00
                                     4'107'628'800'000LL,                       // 2100-03-01T00:00
                                     1'798'761'599'999LL};  // 2026-12-31T23:59:59.999
  for (int i = 0; i < 20000; ++i) instants.push_back(any(rng));
  for (const long long ms : instants) {
    EXPECT_EQ(formatTime(SystemTime{std::chrono::milliseconds(ms)}), byLibc(ms)) << ms;
  }
}

}  // namespace
}  // namespace sluice
