#include "core/runtime/flow_status.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(FlowStatusTest, FormatsUtcWithMilliseconds) {
  const SystemTime t{std::chrono::milliseconds(1'795'000'000'123)};
  EXPECT_EQ(formatTime(t), "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(formatTime(SystemTime{}), "1970-01-01T00:00:00.000Z");
}

}  // namespace
}  // namespace sluice
