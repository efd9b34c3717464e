// Steps keep to their grid: the next due time comes from the previous one, a late step does
// not move the ones after it, and a flow a whole interval behind skips what it missed.
#include "core/runtime/step_due.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using std::chrono::milliseconds;
using T = std::chrono::steady_clock::time_point;

T at(int ms) { return T{} + milliseconds(ms); }

TEST(StepDueTest, TheNextDueTimeIsThePreviousOnePlusTheInterval) {
  // Due at 1000, ran late at 1007: the next is due at 2000, not 2007.
  EXPECT_EQ(nextStepDue(at(1000), milliseconds(1000), at(1007)), at(2000));
  // A step that took 900 ms of its 1000: the next is still due at 2000.
  EXPECT_EQ(nextStepDue(at(1000), milliseconds(1000), at(1900)), at(2000));
}

TEST(StepDueTest, AFlowAnIntervalOrMoreBehindRunsOnceAtOnceOnItsGrid) {
  // The latest grid point not after now: due at once, the missed ones skipped.
  EXPECT_EQ(nextStepDue(at(1000), milliseconds(100), at(1150)), at(1100));
  EXPECT_EQ(nextStepDue(at(1000), milliseconds(100), at(1200)), at(1200));
  EXPECT_EQ(nextStepDue(at(1000), milliseconds(100), at(1350)), at(1300));
  EXPECT_EQ(nextStepDue(at(1000), milliseconds(100), at(9999)), at(9900));
  // And the step after that one is back on the grid.
  EXPECT_EQ(nextStepDue(at(1300), milliseconds(100), at(1301)), at(1400));
}

TEST(StepDueTest, NoPreviousDueTimeOrNoIntervalCountsFromNow) {
  EXPECT_EQ(nextStepDue(T{}, milliseconds(100), at(5000)), at(5100));
  EXPECT_EQ(nextStepDue(at(1000), milliseconds(0), at(5000)), at(5000));
}

}  // namespace
}  // namespace sluice
