// The deadlines of many flows' commands, armed on the timer a group at a time.
//
// A command to 100,000 flows armed 100,000 deadlines (a stop two each), each an entry of the
// timer's ordered tree, and cancelled each one when its flow answered: a third of the time the
// HTTP thread spent queueing the command (issue 14). Collected here, the flows' deadlines with
// the same delay become one timer entry that runs each flow's check; a flow that answered
// meanwhile is a check that finds nothing to do (its callbacks hold the Pending weakly).
#pragma once

#include <boost/container/small_vector.hpp>
#include <chrono>
#include <vector>

#include "core/runtime/task.hpp"
#include "core/runtime/timer.hpp"

namespace sluice {

class DeadlineBatch {
 public:
  explicit DeadlineBatch(Timer* timer) : timer_(timer) {}
  /// Arms what is left.
  ~DeadlineBatch() { arm(); }
  DeadlineBatch(const DeadlineBatch&) = delete;
  DeadlineBatch& operator=(const DeadlineBatch&) = delete;

  /// Runs `fn` on the timer thread `after` from when the batch is armed.
  void add(std::chrono::milliseconds after, Task fn);
  /// One timer entry per delay collected since the last arm(), at now + that delay. Callers
  /// arm every few hundred flows: a deadline is then late by no more than the time it took to
  /// queue them (and is never early).
  void arm();

 private:
  struct Group {
    std::chrono::milliseconds after;
    std::vector<Task> fns;
  };
  Timer* const timer_;
  boost::container::small_vector<Group, 3> groups_;
};

}  // namespace sluice
