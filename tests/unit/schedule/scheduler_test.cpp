// The scheduler's thread with an injected clock: firings at their time, a jump of the clock
// fires once, suspend and resume, removal, and set/remove racing the firings (run under TSan).
#include "core/schedule/scheduler.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "core/schedule/file_clock.hpp"

namespace sluice::schedule {
namespace {

using namespace std::chrono_literals;

SysTime at(const char* text) { return *parseUtc(text); }

struct Fixture {
  std::atomic<int64_t> now_ms{std::chrono::duration_cast<std::chrono::milliseconds>(
                                  at("2026-01-01T10:02:00Z").time_since_epoch())
                                  .count()};
  std::mutex mu;
  std::vector<std::pair<std::string, SysTime>> fired;  // guarded by mu
  Scheduler scheduler{[this] { return SysTime(std::chrono::milliseconds(now_ms.load())); },
                      [this](const std::vector<Scheduler::Firing>& firings) {
                        std::lock_guard lock(mu);
                        fired.insert(fired.end(), firings.begin(), firings.end());
                      },
                      5ms};
  void setNow(const char* text) {
    now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(at(text).time_since_epoch()).count();
  }
  size_t count() {
    std::lock_guard lock(mu);
    return fired.size();
  }
  std::pair<std::string, SysTime> firing(size_t i) {
    std::lock_guard lock(mu);
    return fired.at(i);
  }
  bool waitCount(size_t n) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      if (count() >= n) return true;
      std::this_thread::sleep_for(1ms);
    }
    return count() >= n;
  }
};

ScheduleSpec every5() {
  ScheduleSpec s;
  s.cron = "*/5 * * * *";
  return s;
}

TEST(Scheduler, FiresAtItsTimeAndOnceForAJump) {
  Fixture f;
  f.scheduler.set("a", every5());
  EXPECT_EQ(f.scheduler.nextRun("a"), at("2026-01-01T10:05:00Z"));
  f.setNow("2026-01-01T10:05:00Z");
  ASSERT_TRUE(f.waitCount(1));
  EXPECT_EQ(f.firing(0).first, "a");
  EXPECT_EQ(f.firing(0).second, at("2026-01-01T10:05:00Z"));
  EXPECT_EQ(f.scheduler.nextRun("a"), at("2026-01-01T10:10:00Z"));
  f.setNow("2026-01-01T10:31:00Z");  // five firings passed: one is called, for the latest
  ASSERT_TRUE(f.waitCount(2));
  EXPECT_EQ(f.firing(1).second, at("2026-01-01T10:30:00Z"));
  EXPECT_EQ(f.scheduler.nextRun("a"), at("2026-01-01T10:35:00Z"));
  EXPECT_EQ(f.count(), 2u);
}

TEST(Scheduler, AFiringInThePastIsDueAtOnce) {
  Fixture f;
  f.scheduler.set("late", every5(), at("2026-01-01T09:50:00Z"));
  ASSERT_TRUE(f.waitCount(1));
  EXPECT_EQ(f.firing(0).second, at("2026-01-01T10:00:00Z"));  // the latest passed
  EXPECT_EQ(f.scheduler.nextRun("late"), at("2026-01-01T10:05:00Z"));
}

TEST(Scheduler, SuspendedSchedulesDoNotFireAndResumeFromNow) {
  Fixture f;
  f.scheduler.set("s", every5());
  f.scheduler.set("w", every5());
  f.scheduler.suspend("s", true);
  EXPECT_FALSE(f.scheduler.nextRun("s"));
  f.setNow("2026-01-01T10:05:00Z");
  ASSERT_TRUE(f.waitCount(1));
  f.setNow("2026-01-01T10:12:00Z");
  ASSERT_TRUE(f.waitCount(2));  // the witness's 10:10
  {
    std::lock_guard lock(f.mu);
    for (const auto& [id, due] : f.fired) EXPECT_EQ(id, "w");
  }
  f.scheduler.suspend("s", false);
  EXPECT_EQ(f.scheduler.nextRun("s"), at("2026-01-01T10:15:00Z"));
  f.scheduler.remove("w");
  EXPECT_FALSE(f.scheduler.scheduled("w"));
  f.setNow("2026-01-01T10:15:00Z");
  ASSERT_TRUE(f.waitCount(3));
  EXPECT_EQ(f.firing(2).first, "s");
}

TEST(Scheduler, AScheduleThatCannotBeSetIsNotKept) {
  Fixture f;
  ScheduleSpec bad = every5();
  bad.timezone = "Nowhere/Special";
  f.scheduler.set("x", bad);
  EXPECT_FALSE(f.scheduler.scheduled("x"));
  EXPECT_EQ(f.scheduler.size(), 0u);
}

// set, suspend and remove from several threads while the clock runs and firings are called.
TEST(Scheduler, ChangesRacingTheFiringsAreSafe) {
  Fixture f;
  ScheduleSpec every_minute;
  every_minute.cron = "* * * * *";
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !done; ++i) {
        const std::string id = "f" + std::to_string(t) + "-" + std::to_string(i % 20);
        f.scheduler.set(id, every_minute);
        f.scheduler.suspend(id, i % 3 == 0);
        if (i % 5 == 0) f.scheduler.remove(id);
        (void)f.scheduler.nextRun(id);
      }
    });
  }
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < until) {
    f.now_ms += 60'000;
    std::this_thread::sleep_for(2ms);
  }
  done = true;
  for (auto& t : threads) t.join();
  f.scheduler.stop();
  EXPECT_GT(f.count(), 0u);
}

TEST(FileClock, ReadsTheTimeInTheFile) {
  EXPECT_EQ(parseUtc("2026-03-29T00:59:00Z"), at("2026-03-29T00:59:00Z"));
  EXPECT_EQ(parseUtc("2026-03-29T00:59:00.250Z\n"),
            at("2026-03-29T00:59:00Z") + std::chrono::milliseconds(250));
  EXPECT_FALSE(parseUtc("2026-03-29 00:59:00"));
  EXPECT_FALSE(parseUtc("2026-03-29T00:59:00Z junk"));
  EXPECT_FALSE(parseUtc(""));
}

}  // namespace
}  // namespace sluice::schedule
