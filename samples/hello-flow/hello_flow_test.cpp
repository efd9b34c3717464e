// Unit tests of the hello flow type with the SDK's harness: no engine, no server.
#include "hello_flow.hpp"

#include <gtest/gtest.h>

#include <sluice/testing/harness.hpp>

using sluice::testing::Harness;
using sluice::testing::Stop;

// The plugin exactly as the engine would load it.
TEST(HelloPlugin, GreetsOnEveryStep) {
  auto h = Harness::load(HELLO_FLOW_SO, "hello");
  ASSERT_TRUE(h.create(R"({"name": "test", "every_ms": 50})"));
  ASSERT_TRUE(h.start());
  auto step = h.step();
  ASSERT_TRUE(step) << step;
  EXPECT_EQ(step.next_delay_ms, 50u);
  ASSERT_TRUE(h.step());
  EXPECT_EQ(h.counter("greetings"), 2);
  EXPECT_TRUE(h.logged("hello, test"));
  EXPECT_TRUE(h.stop(Stop::kSoft));
}

TEST(HelloPlugin, TheSchemaRefusesATooShortInterval) {
  auto h = Harness::load(HELLO_FLOW_SO, "hello");
  auto problems = h.validate(R"({"every_ms": 5})");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "/every_ms") << problems[0];
  EXPECT_TRUE(h.validate(R"({"name": "x", "every_ms": 10})").empty());
}

// The same class compiled into the test.
TEST(HelloType, GreetsTheWorldByDefault) {
  auto h = Harness::of<Hello>();
  ASSERT_TRUE(h.create());
  ASSERT_TRUE(h.start());
  EXPECT_EQ(h.step().next_delay_ms, 1000u);
  EXPECT_TRUE(h.logged("hello, world"));
  EXPECT_TRUE(h.stop(Stop::kHard));
}
