#include "core/schedule/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

namespace sluice::schedule {

Scheduler::Scheduler(Clock clock, Fire fire, std::chrono::milliseconds max_wait)
    : clock_(std::move(clock)), fire_(std::move(fire)), max_wait_(max_wait) {
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  std::lock_guard join(join_mu_);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Scheduler::set(const std::string& flow_id, const ScheduleSpec& spec,
                    std::optional<SysTime> after, bool suspended) {
  std::string error;
  auto cron = CronExpr::parse(spec.cron, &error);
  const date::time_zone* zone = cron ? findZone(spec.timezone, &error) : nullptr;
  const SysTime from = after.value_or(clock_());
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(flow_id); it != entries_.end()) {
    unplanLocked(flow_id, it->second);
    entries_.erase(it);
  }
  if (!cron || zone == nullptr) {
    spdlog::error("flow {}: schedule not set: {}", flow_id, error);
    return;
  }
  Entry& e = entries_[flow_id];
  e.cron = *cron;
  e.zone = zone;
  e.suspended = suspended;
  planLocked(flow_id, e, from);
  cv_.notify_all();
}

void Scheduler::remove(const std::string& flow_id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(flow_id);
  if (it == entries_.end()) return;
  unplanLocked(flow_id, it->second);
  entries_.erase(it);
}

void Scheduler::suspend(const std::string& flow_id, bool suspended) {
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(flow_id);
    if (it == entries_.end() || it->second.suspended == suspended) return;  // the usual case
    if (suspended) {
      it->second.suspended = true;
      unplanLocked(flow_id, it->second);
      return;
    }
  }
  const SysTime now = clock_();  // not under the lock: a --schedule-clock reads a file
  std::lock_guard lock(mu_);
  auto it = entries_.find(flow_id);
  if (it == entries_.end() || !it->second.suspended) return;
  it->second.suspended = false;
  planLocked(flow_id, it->second, now);
  cv_.notify_all();
}

std::optional<SysTime> Scheduler::nextRun(const std::string& flow_id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(flow_id);
  if (it == entries_.end() || it->second.suspended) return std::nullopt;
  return it->second.next;
}

std::optional<std::optional<SysTime>> Scheduler::lookup(const std::string& flow_id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(flow_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.suspended ? std::nullopt : it->second.next;
}

bool Scheduler::scheduled(const std::string& flow_id) const {
  std::lock_guard lock(mu_);
  return entries_.count(flow_id) != 0;
}

size_t Scheduler::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void Scheduler::planLocked(const std::string& id, Entry& e, SysTime after) {
  unplanLocked(id, e);
  if (e.suspended) return;
  e.next = nextFire(e.cron, e.zone, after);
  if (e.next) due_.emplace(*e.next, id);
}

void Scheduler::unplanLocked(const std::string& id, Entry& e) {
  if (e.next) due_.erase({*e.next, id});
  e.next.reset();
}

void Scheduler::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const SysTime now = clock_();
    std::vector<Firing> firing;
    while (!due_.empty() && due_.begin()->first <= now) {
      auto [at, id] = *due_.begin();
      due_.erase(due_.begin());
      auto it = entries_.find(id);
      if (it == entries_.end()) continue;
      it->second.next.reset();
      // Of the firings the clock passed at once, the latest is the one reported (catch_up
      // counts the missed ones from it).
      SysTime latest = at;
      for (int i = 0; i < 100'000; ++i) {
        auto later = nextFire(it->second.cron, it->second.zone, latest);
        if (!later || *later > now) break;
        latest = *later;
      }
      firing.emplace_back(id, latest);
      // The next firing after now: those a jump of the clock passed over are not replayed.
      planLocked(id, it->second, std::max(now, at));
    }
    if (!firing.empty()) {
      lock.unlock();
      try {
        fire_(firing);
      } catch (const std::exception& e) {
        spdlog::error("{} scheduled runs could not be started: {}", firing.size(), e.what());
      }
      lock.lock();
      continue;
    }
    auto wait = max_wait_;
    if (!due_.empty()) {
      const auto until =
          std::chrono::duration_cast<std::chrono::milliseconds>(due_.begin()->first - now) +
          std::chrono::milliseconds(1);
      wait = std::min(wait, until);
    }
    cv_.wait_for(lock, wait);
  }
}

}  // namespace sluice::schedule
