// When a flow's next step is due. Steps keep to a grid: the next due time is the previous due
// time plus the interval, not "now" plus the interval, so that the time a step takes (and the
// time it waited for a worker) does not make the flow drift. A flow that fell a whole interval
// or more behind skips the steps it missed (no burst to catch up) and keeps its phase.
#pragma once

#include <chrono>

namespace sluice {

template <class TimePoint>
TimePoint nextStepDue(TimePoint previous_due, std::chrono::milliseconds interval, TimePoint now) {
  if (interval.count() <= 0 || previous_due == TimePoint{}) return now + interval;
  TimePoint next = previous_due + interval;
  if (next + interval <= now) {
    const auto missed = (now - previous_due) / interval;  // whole intervals behind
    next = previous_due + interval * (missed + 1);
  }
  return next;
}

}  // namespace sluice
