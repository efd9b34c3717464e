// The engine's schedules (issue #12, runtime.schedule): one thread that knows when each
// scheduled flow fires next and calls back at that time. It knows nothing of flows: the engine
// decides what a firing does (start, skip, queue or replace: docs/orchestration.md).
//
// Time comes from a clock the engine gives it: the system clock, or (tests, dry runs) any
// function, such as the file `--schedule-clock` names. The thread re-reads the clock at least
// every `max_wait`, so a clock that jumps is followed within that time; firings that a jump (or
// a stall) skipped over are not replayed: one firing, then the next after now.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/model/flow_spec.hpp"
#include "core/schedule/cron.hpp"
#include "core/schedule/next_fire.hpp"

namespace sluice::schedule {

class Scheduler {
 public:
  using Clock = std::function<SysTime()>;
  /// One firing: the flow and the time it was due (of several firings the clock passed at once,
  /// the latest).
  using Firing = std::pair<std::string, SysTime>;
  /// Called on the scheduler's thread (never under its lock) with every firing that came due at
  /// once (so that the engine starts them together), in the order they were due.
  using Fire = std::function<void(const std::vector<Firing>& firings)>;

  Scheduler(Clock clock, Fire fire, std::chrono::milliseconds max_wait);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Sets (or replaces) the schedule of `flow_id` (a spec checked already: a cron that does not
  /// parse or an unknown zone leaves the flow unscheduled, and says why in the log). Its first
  /// firing is the first after `after` (now when not given): a time in the past fires at once,
  /// once. `suspended`: set suspended, in the same step (nothing fires in between).
  void set(const std::string& flow_id, const ScheduleSpec& spec,
           std::optional<SysTime> after = std::nullopt, bool suspended = false);
  void remove(const std::string& flow_id);
  /// A suspended schedule does not fire; resuming it counts from now (missed firings skipped).
  void suspend(const std::string& flow_id, bool suspended);
  /// When the flow fires next; nothing when it has no schedule, is suspended, or never fires.
  std::optional<SysTime> nextRun(const std::string& flow_id) const;
  /// Both in one look: nothing when the flow has no schedule, else its nextRun.
  std::optional<std::optional<SysTime>> lookup(const std::string& flow_id) const;
  bool scheduled(const std::string& flow_id) const;
  size_t size() const;
  SysTime now() const { return clock_(); }
  /// Stops the thread (idempotent); no firing is called after it returns.
  void stop();

 private:
  struct Entry {
    CronExpr cron;
    const date::time_zone* zone = nullptr;
    std::optional<SysTime> next;
    bool suspended = false;
  };
  void loop();
  void planLocked(const std::string& id, Entry& e, SysTime after);  // mu_ held
  void unplanLocked(const std::string& id, Entry& e);               // mu_ held

  const Clock clock_;
  const Fire fire_;
  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                           // guarded by mu_
  std::mutex join_mu_;                              // one stop() joins the thread
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::set<std::pair<SysTime, std::string>> due_;   // guarded by mu_: (next, flow) of each plan
  std::thread thread_;
};

}  // namespace sluice::schedule
