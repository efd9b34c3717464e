// Schedules (issue #12, runtime.schedule) against the real binary. Time is the file that
// `--schedule-clock` names: the tests write a time into it and the engine's schedules follow,
// so no test waits for real minutes. A firing that must not start a run is checked against a
// witness flow with the same schedule, which does run at that firing.
#include <signal.h>

#include <fstream>
#include <string>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

class Schedule : public ApiFixture {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(SLUICE_TEST_TMP) /
           ("schedule-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    setClock("2026-01-01T10:02:00Z");
    startScheduled();
  }
  void startScheduled() { startServer({"--schedule-clock", clockFile()}); }
  std::string clockFile() const { return (dir_ / "clock").string(); }
  void setClock(const std::string& t) {
    const std::string tmp = clockFile() + ".new";
    std::ofstream(tmp) << t << "\n";
    std::filesystem::rename(tmp, clockFile());  // never a half-written file
  }
  uint64_t runs(const std::string& id) { return statusDoc(id)["runs"].GetUint64(); }
  bool waitRuns(const std::string& id, uint64_t n) {
    return waitFor([&] { return runs(id) >= n; }, 20s);
  }
  void create(const std::string& body) {
    auto r = post("/flows", body);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  void command(const std::string& command, const std::string& id) {
    auto r = patch(R"({"command":")" + command + R"(","flow_ids":[")" + id + R"("]})");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  /// A flow of type probe that finishes after one step, on `cron`.
  static std::string job(const std::string& id, const std::string& cron,
                         const std::string& more = "") {
    return R"({"flow_id":")" + id +
           R"(","type":"probe","config":{"interval_ms":5,"done_after":1},"runtime":{"schedule":{"cron":")" +
           cron + "\"" + more + "}}}";
  }
};

TEST_F(Schedule, ConfigurationIsCheckedAtPostAndPut) {
  expectRefused(post("/flows", "[" + job("a", "61 * * * *") + "]"), "/runtime/schedule/cron",
                "runtime.schedule.cron: minute field '61': 61 is out of range 0-59");
  expectRefused(post("/flows", "[" + job("a", "* * * *") + "]"), "/runtime/schedule/cron", "has 4");
  expectRefused(post("/flows", "[" + job("a", "0 9 * * *", R"(,"timezone":"Mars/Base")") + "]"),
                "/runtime/schedule/timezone", "unknown time zone 'Mars/Base'");
  expectRefused(post("/flows", "[" + job("a", "0 9 * * *", R"(,"overlap":"pile")") + "]"),
                "/runtime/schedule/overlap", "\\\"skip\\\", \\\"queue\\\" or \\\"replace\\\"");
  expectRefused(post("/flows", "[" + job("a", "0 9 * * *", R"(,"catch_up":"yes")") + "]"),
                "/runtime/schedule/catch_up", "true or false");
  expectRefused(post("/flows", "[" + job("a", "0 9 * * *", R"(,"every":5)") + "]"),
                "/runtime/schedule/every", "unknown schedule setting");
  expectRefused(post("/flows", R"([{"flow_id":"a","runtime":{"schedule":{}}}])"),
                "/runtime/schedule/cron", "runtime.schedule.cron is required");
  EXPECT_EQ(get("/flows/a").status, 404) << "nothing was stored";
  // PUT: refused, and the stored configuration stays.
  create("[" + job("a", "*/5 * * * *") + "]");
  expectRefused(put("/flows/a", job("a", "*/5 * * * *", R"(,"timezone":"Nowhere")")),
                "/runtime/schedule/timezone", "unknown time zone 'Nowhere'");
  EXPECT_NE(get("/flows/a").body.find("*/5 * * * *"), std::string::npos);
}

// next_run_at, a run at each firing, and firings a jump of the clock passed over run once.
TEST_F(Schedule, StartsTheFlowAtEachFiring) {
  create("[" + job("job", "*/5 * * * *") + "]");
  auto s = statusDoc("job");
  EXPECT_EQ(memberText(s, "next_run_at"), "2026-01-01T10:05:00.000Z");
  EXPECT_EQ(s["runs"].GetUint64(), 0u);
  EXPECT_EQ(memberText(s, "status"), "stopped");
  setClock("2026-01-01T10:05:00Z");
  ASSERT_TRUE(waitRuns("job", 1));
  ASSERT_TRUE(waitFor([&] { return statusOf("job") == "completed"; }, 20s));
  s = statusDoc("job");
  EXPECT_EQ(memberText(s, "next_run_at"), "2026-01-01T10:10:00.000Z");
  EXPECT_EQ(memberText(s, "desired"), "stopped")
      << "a finished scheduled job waits for its schedule";
  // 10:10, 10:15 and 10:20 passed at once: one run, and the next firing after now.
  setClock("2026-01-01T10:22:30Z");
  ASSERT_TRUE(waitRuns("job", 2));
  ASSERT_TRUE(waitFor([&] { return statusOf("job") == "completed"; }, 20s));
  EXPECT_EQ(memberText(statusDoc("job"), "next_run_at"), "2026-01-01T10:25:00.000Z");
  EXPECT_EQ(runs("job"), 2u);
  // A flow without a schedule shows no next_run_at.
  create(R"([{"flow_id":"plain"}])");
  EXPECT_EQ(memberText(statusDoc("plain"), "next_run_at"), "<absent>");
}

TEST_F(Schedule, FiresInItsTimeZone) {
  setClock("2026-07-15T06:58:00Z");
  create("[" + job("berlin", "0 9 * * *", R"(,"timezone":"Europe/Berlin")") + "," +
         job("utc", "0 9 * * *") + "]");
  EXPECT_EQ(memberText(statusDoc("berlin"), "next_run_at"), "2026-07-15T07:00:00.000Z");  // CEST
  EXPECT_EQ(memberText(statusDoc("utc"), "next_run_at"), "2026-07-15T09:00:00.000Z");
  setClock("2026-07-15T07:00:00Z");
  ASSERT_TRUE(waitRuns("berlin", 1));
  EXPECT_EQ(runs("utc"), 0u);
}

// Pausing suspends the schedule (no run, next_run_at null); resume resumes it from now.
TEST_F(Schedule, PauseSuspendsTheScheduleAndResumeResumesIt) {
  create("[" + job("paused", "*/5 * * * *") + "," + job("witness", "*/5 * * * *") + "]");
  // resume of a scheduled flow that is not paused is refused, as for any flow.
  auto refused = patch(R"({"command":"resume","flow_ids":["paused"]})");
  EXPECT_EQ(refused.status, 400) << refused.body;
  command("pause", "paused");
  auto s = statusDoc("paused");
  EXPECT_EQ(memberText(s, "desired"), "paused");
  EXPECT_EQ(memberText(s, "status"), "stopped") << "no run was started to be paused";
  EXPECT_EQ(memberText(s, "next_run_at"), "<null>");
  setClock("2026-01-01T10:05:00Z");
  ASSERT_TRUE(waitRuns("witness", 1));
  ASSERT_TRUE(waitFor([&] { return statusOf("witness") == "completed"; }, 20s));
  EXPECT_EQ(runs("paused"), 0u) << "a suspended schedule does not fire";
  // Suspended across a restart too.
  ASSERT_TRUE(WIFEXITED(server_->kill(SIGTERM)));
  startScheduled();
  s = statusDoc("paused");
  EXPECT_EQ(memberText(s, "desired"), "paused");
  EXPECT_EQ(memberText(s, "status"), "stopped");
  EXPECT_EQ(memberText(s, "next_run_at"), "<null>");
  command("resume", "paused");
  s = statusDoc("paused");
  EXPECT_EQ(memberText(s, "desired"), "stopped") << "resume starts no run: the schedule does";
  EXPECT_EQ(memberText(s, "next_run_at"), "2026-01-01T10:10:00.000Z");
  setClock("2026-01-01T10:10:00Z");
  ASSERT_TRUE(waitRuns("paused", 1));
}

// A scheduled flow paused during a run: the run pauses and the schedule is suspended.
TEST_F(Schedule, PausingARunningScheduledFlowPausesTheRunToo) {
  create(R"([{"flow_id":"long","type":"probe","config":{"interval_ms":5},
              "runtime":{"schedule":{"cron":"*/5 * * * *"}}}])");
  setClock("2026-01-01T10:05:00Z");
  ASSERT_TRUE(waitFor([&] { return statusOf("long") == "running"; }, 20s));
  command("pause", "long");
  EXPECT_EQ(statusOf("long"), "paused");
  EXPECT_EQ(memberText(statusDoc("long"), "next_run_at"), "<null>");
  command("resume", "long");
  EXPECT_EQ(statusOf("long"), "running");
  EXPECT_EQ(memberText(statusDoc("long"), "next_run_at"), "2026-01-01T10:10:00.000Z");
}

// A firing while the previous run goes on: skip, queue one run, or replace the run.
TEST_F(Schedule, OverlapSkipQueueAndReplace) {
  auto longJob = [](const std::string& id, const std::string& overlap) {
    return R"({"flow_id":")" + id +
           R"(","type":"probe","config":{"interval_ms":5},"runtime":{"schedule":{"cron":"* * * * *","overlap":")" +
           overlap + R"("}}})";
  };
  create("[" + longJob("skip", "skip") + "," + longJob("queue", "queue") + "," +
         longJob("replace", "replace") + "]");
  setClock("2026-01-01T10:03:00Z");
  for (const char* id : {"skip", "queue", "replace"}) {
    ASSERT_TRUE(waitFor([&] { return statusOf(id) == "running"; }, 20s)) << id;
    EXPECT_EQ(runs(id), 1u) << id;
  }
  setClock("2026-01-01T10:04:00Z");
  // replace: the run was stopped (cancelled) and a new one began.
  ASSERT_TRUE(waitRuns("replace", 2));
  ASSERT_TRUE(waitFor([&] { return statusOf("replace") == "running"; }, 20s));
  // The same firing reached the others: skip did nothing, queue holds one run back.
  EXPECT_EQ(runs("skip"), 1u);
  EXPECT_EQ(statusOf("skip"), "running");
  EXPECT_EQ(runs("queue"), 1u);
  // The queued run starts when the previous one ends.
  command("stop", "queue");
  ASSERT_TRUE(waitRuns("queue", 2));
  ASSERT_TRUE(waitFor([&] { return statusOf("queue") == "running"; }, 20s));
  EXPECT_EQ(memberText(statusDoc("queue")["last_run"], "result"), "<null>")
      << "the queued run goes on";
}

// Firings missed while the engine was down: skipped, or one run with catch_up (not for a
// paused flow, and not again at the next restart).
TEST_F(Schedule, CatchUpRunsOnceForTheFiringsMissedWhileDown) {
  create("[" + job("catches", "*/5 * * * *", R"(,"catch_up":true)") + "," +
         job("skips", "*/5 * * * *") + "," + job("paused", "*/5 * * * *", R"(,"catch_up":true)") +
         "," + job("every3", "*/3 * * * *", R"(,"catch_up":true)") + "]");
  setClock("2026-01-01T10:05:00Z");
  ASSERT_TRUE(waitRuns("catches", 1));
  ASSERT_TRUE(waitRuns("skips", 1));
  ASSERT_TRUE(waitRuns("paused", 1));
  ASSERT_TRUE(waitRuns("every3", 1));  // its 10:03
  command("pause", "paused");
  ASSERT_TRUE(waitFor([&] { return statusOf("catches") == "completed"; }, 20s));
  ASSERT_TRUE(waitFor([&] { return statusOf("skips") == "completed"; }, 20s));
  ASSERT_TRUE(WIFEXITED(server_->kill(SIGTERM)));
  setClock("2026-01-01T10:22:00Z");  // 10:10, 10:15 and 10:20 pass while it is down
  startScheduled();
  ASSERT_TRUE(waitRuns("catches", 2));
  ASSERT_TRUE(waitFor([&] { return statusOf("catches") == "completed"; }, 20s));
  ASSERT_TRUE(waitRuns("every3", 2));  // created after the others: they were all handled
  EXPECT_EQ(runs("catches"), 2u) << "exactly one run catches up";
  EXPECT_EQ(runs("skips"), 1u);
  EXPECT_EQ(runs("paused"), 1u) << "a paused flow's schedule is suspended: nothing catches up";
  EXPECT_EQ(memberText(statusDoc("paused"), "next_run_at"), "<null>");
  EXPECT_EQ(memberText(statusDoc("catches"), "next_run_at"), "2026-01-01T10:25:00.000Z");
  EXPECT_EQ(memberText(statusDoc("skips"), "next_run_at"), "2026-01-01T10:25:00.000Z");
  // Down again from 10:22 to 10:24: no firing of */5 was missed since the 10:20 the catch-up
  // ran for; every3 missed 10:24 (after its 10:21).
  ASSERT_TRUE(waitFor([&] { return statusOf("catches") == "completed"; }, 20s));
  ASSERT_TRUE(waitFor([&] { return statusOf("every3") == "completed"; }, 20s));
  ASSERT_TRUE(WIFEXITED(server_->kill(SIGTERM)));
  setClock("2026-01-01T10:24:00Z");
  startScheduled();
  ASSERT_TRUE(waitRuns("every3", 3));
  EXPECT_EQ(runs("catches"), 2u) << "no second catch-up for the same missed firings";
}

// A schedule added by PUT fires; one removed by PUT does not; a deleted flow's does not.
TEST_F(Schedule, PutAndDeleteChangeTheSchedule) {
  create(R"([{"flow_id":"later","type":"probe","config":{"interval_ms":5,"done_after":1}},)" +
         job("dropped", "*/5 * * * *") + "," + job("deleted", "*/5 * * * *") + "," +
         job("witness", "*/5 * * * *") + "]");
  EXPECT_EQ(memberText(statusDoc("later"), "next_run_at"), "<absent>");
  ASSERT_EQ(put("/flows/later", job("later", "*/5 * * * *")).status, 200);
  EXPECT_EQ(memberText(statusDoc("later"), "next_run_at"), "2026-01-01T10:05:00.000Z");
  ASSERT_EQ(
      put("/flows/dropped", R"({"flow_id":"dropped","type":"probe","config":{"done_after":1}})")
          .status,
      200);
  EXPECT_EQ(memberText(statusDoc("dropped"), "next_run_at"), "<absent>");
  ASSERT_EQ(del("/flows/deleted").status, 200);
  setClock("2026-01-01T10:05:00Z");
  ASSERT_TRUE(waitRuns("witness", 1));
  ASSERT_TRUE(waitRuns("later", 1));
  ASSERT_TRUE(waitFor([&] { return statusOf("witness") == "completed"; }, 20s));
  EXPECT_EQ(runs("dropped"), 0u);
  EXPECT_EQ(get("/flows/deleted").status, 404);
}

}  // namespace
}  // namespace sluice::test
