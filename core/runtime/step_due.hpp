// When a flow's next step is due. Steps keep to a grid: the next due time is the previous due
// time plus the interval, not "now" plus the interval, so that the time a step takes (and the
// time it waited for a worker) does not make the flow drift. A flow a whole interval or more
// behind runs once at once, on the latest point of its grid, and skips the steps it missed (no
// burst to catch up); it keeps its phase.
#pragma once

#include <chrono>

namespace sluice {

template <class TimePoint>
TimePoint nextStepDue(TimePoint previous_due, std::chrono::milliseconds interval, TimePoint now) {
  if (interval.count() <= 0 || previous_due == TimePoint{}) return now + interval;
  const auto lag = now - previous_due;
  if (lag < interval) return previous_due + interval;
  return previous_due + interval * (lag / interval);  // the latest grid point, not after now
}

}  // namespace sluice
