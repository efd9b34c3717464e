// The stored form of a flow's last run, and what GET /flows/status shows of it.
#include "core/model/run_record.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

RunRecord::Time at(int64_t ms) { return RunRecord::Time(std::chrono::milliseconds(ms)); }

TEST(RunRecord, NeverRanIsEmptyAndNull) {
  RunRecord none;
  EXPECT_EQ(storedRunRecord(none), "");
  EXPECT_EQ(runRecordJson(none), "null");
  EXPECT_FALSE(parseStoredRunRecord("").started);
  EXPECT_FALSE(parseStoredRunRecord("not json").started);
  EXPECT_FALSE(parseStoredRunRecord(R"({"started":"x"})").started);
}

TEST(RunRecord, AnEndedRunRoundTrips) {
  RunRecord r;
  r.started = at(1'767'323'045'678);
  r.ended = at(1'767'323'047'001);
  r.result = RunResult::kFailed;
  r.error = "step hook failed: \"x\"";
  const RunRecord back = parseStoredRunRecord(storedRunRecord(r));
  EXPECT_EQ(back.started, r.started);
  EXPECT_EQ(back.ended, r.ended);
  EXPECT_EQ(back.result, RunResult::kFailed);
  EXPECT_EQ(back.error, r.error);
  EXPECT_EQ(runRecordJson(r),
            R"({"started":"2026-01-02T03:04:05.678Z","ended":"2026-01-02T03:04:07.001Z",)"
            R"("result":"failed","error":"step hook failed: \"x\""})");
}

TEST(RunRecord, ARunInProgressShowsNulls) {
  RunRecord r;
  r.started = at(1'767'323'045'678);
  EXPECT_EQ(runRecordJson(r),
            R"({"started":"2026-01-02T03:04:05.678Z","ended":null,"result":null,"error":null})");
}

// Stored as begun and never ended: the engine stopped while it ran (kill -9, or a shutdown).
TEST(RunRecord, ARunNeverEndedReadsBackAsInterrupted) {
  RunRecord r;
  r.started = at(1'767'323'045'678);
  const RunRecord back = parseStoredRunRecord(storedRunRecord(r));
  EXPECT_EQ(back.started, r.started);
  EXPECT_FALSE(back.ended);
  EXPECT_EQ(back.result, RunResult::kCancelled);
  EXPECT_EQ(back.error, kRunInterrupted);
}

// The stored form is compact JSON, the same text the RapidJSON writer produced before it was
// written by hand (databases hold both), and it reads back.
TEST(RunRecord, TheStoredFormIsCompactJson) {
  RunRecord r;
  r.started = at(1'767'323'045'678);
  EXPECT_EQ(storedRunRecord(r), R"({"started":1767323045678,"ended":null,"result":"",)"
                                R"("error":""})");
  r.ended = at(1'767'323'047'001);
  r.result = RunResult::kFailed;
  r.error = "a \"quoted\"\tthing \\ é";
  r.due = at(1'767'323'040'000);
  const std::string stored = storedRunRecord(r);
  EXPECT_EQ(stored, R"({"started":1767323045678,"ended":1767323047001,"result":"failed",)"
                    R"("error":"a \"quoted\"\tthing \\ é","due":1767323040000})");
  const RunRecord back = parseStoredRunRecord(stored);
  EXPECT_EQ(back.started, r.started);
  EXPECT_EQ(back.ended, r.ended);
  EXPECT_EQ(back.due, r.due);
  EXPECT_EQ(back.error, r.error);
  RunRecord fired;  // a schedule's firing that never ran
  fired.due = at(5);
  EXPECT_EQ(storedRunRecord(fired),
            R"({"started":null,"ended":null,"result":"","error":"","due":5})");
}

}  // namespace
}  // namespace sluice
