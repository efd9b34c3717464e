// The SQLite store's journal (core/store/sqlite_journal.cpp): desired states and run records are
// journaled a batch per row, read on top of the tables until they are folded into them, and
// folded in slices without changing what a load returns.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "core/store/sqlite_store.hpp"

namespace sluice {
namespace {

class SqliteJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("journal-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  std::unique_ptr<SqliteStore> open(bool fold) {
    auto s = SqliteStore::open((dir_ / "sluice.db").string(), fold);
    EXPECT_TRUE(s.ok());
    return std::move(s.value());
  }
  // One number the file holds, read through a connection of its own ("" = an error).
  std::string rawQuery(const char* sql) {
    sqlite3* db = nullptr;
    sqlite3_stmt* st = nullptr;
    std::string out;
    if (sqlite3_open((dir_ / "sluice.db").string().c_str(), &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(st, 0);
      out = text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }
  // `n` flows f0, f1, ... with an empty configuration.
  static std::vector<StoredFlow> numberedFlows(size_t n) {
    std::vector<StoredFlow> flows;
    for (size_t i = 0; i < n; ++i) flows.push_back({"f" + std::to_string(i), "{}"});
    return flows;
  }
  // Waits (up to a deadline) until the journal is empty.
  bool journalEmptyWithin(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (rawQuery("SELECT count(*) FROM flow_journal") == "0") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::filesystem::path dir_;
};

TEST_F(SqliteJournalTest, AJournalLeftUnfoldedIsReadOnTopOfTheTablesThenFolded) {
  {
    auto s = open(/*fold=*/false);  // as if the process ended before folding
    auto inc = s->insertFlows({{"a", "{}", Desired::kStopped},
                               {"b", "{}", Desired::kStopped},
                               {"c", "{}", Desired::kRunning},
                               {"gone", "{}", Desired::kStopped}},
                              nullptr)
                   .value();
    ASSERT_TRUE(
        s->setDesired({{"a", Desired::kRunning, inc[0]}, {"b", Desired::kPaused, 0}}, nullptr).ok())
        << "b by id only";
    ASSERT_TRUE(s->setRunRecords({{"a", inc[0], 2, R"({"n":2})"},
                                  {"c", inc[2], 0, "", "1.2.3", false},
                                  {"gone", inc[3], 5, R"({"n":5})"}})
                    .ok());
    ASSERT_TRUE(
        s->setDesired({{"a", Desired::kStopped, inc[0]}, {"c", Desired::kStopped, inc[2]}}, nullptr)
            .ok());
    ASSERT_TRUE(s->setRunRecord("a", inc[0], 3, R"({"n":3})").ok()) << "the later one wins";
    ASSERT_TRUE(s->deleteFlow("gone", nullptr).ok());
    ASSERT_TRUE(s->insertFlows({{"gone", "{}", Desired::kStopped}}, nullptr).ok());
  }
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flow_journal"), "5");
  EXPECT_EQ(rawQuery("SELECT desired FROM flows WHERE flow_id = 'b'"), "stopped")
      << "not folded yet";
  auto check = [](const std::vector<StoredFlow>& flows) {
    ASSERT_EQ(flows.size(), 4u);
    EXPECT_EQ(flows[0].id, "a");
    EXPECT_EQ(flows[0].desired, Desired::kStopped);
    EXPECT_EQ(flows[0].runs, 3u);
    EXPECT_EQ(flows[0].last_run, R"({"n":3})");
    EXPECT_EQ(flows[1].desired, Desired::kPaused);
    EXPECT_EQ(flows[1].runs, 0u);
    EXPECT_EQ(flows[2].desired, Desired::kStopped);
    EXPECT_EQ(flows[2].type_version, "1.2.3");
    EXPECT_EQ(flows[2].runs, 0u) << "a version alone keeps the runs";
    EXPECT_EQ(flows[3].id, "gone");
    EXPECT_EQ(flows[3].runs, 0u) << "the deleted incarnation's record is not the new one's";
    EXPECT_EQ(flows[3].last_run, "");
  };
  {
    auto s = open(/*fold=*/true);
    check(s->loadAll().value());
    ASSERT_TRUE(journalEmptyWithin(std::chrono::seconds(20))) << "folded once found at open";
    check(s->loadAll().value());
  }
  EXPECT_EQ(rawQuery("SELECT desired FROM flows WHERE flow_id = 'b'"), "paused");
  EXPECT_EQ(rawQuery("SELECT runs FROM flow_runs WHERE seq = (SELECT seq FROM flows WHERE "
                     "flow_id = 'a')"),
            "3");
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flow_runs"), "4");
  check(open(false)->loadAll().value());
}

// A batch larger than a fold's slice is folded over several transactions, from where the last
// one stopped; what a load returns is the same before, during and after.
TEST_F(SqliteJournalTest, ABatchIsFoldedInSlicesWithoutChangingWhatALoadReturns) {
  constexpr size_t kFlows = 25000;
  const auto flows = numberedFlows(kFlows);
  {
    auto s = open(false);
    auto inc = s->insertFlows(flows, nullptr).value();
    std::vector<DesiredRow> desired;
    std::vector<RunRecordRow> runs;
    for (size_t i = 0; i < kFlows; ++i) {
      desired.push_back({flows[i].id, i % 2 == 0 ? Desired::kRunning : Desired::kPaused, inc[i]});
      runs.push_back({flows[i].id, inc[i], i + 1, "{\"i\":" + std::to_string(i) + "}"});
    }
    ASSERT_TRUE(s->setDesired(desired, nullptr).ok());
    ASSERT_TRUE(s->setRunRecords(runs).ok());
  }
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flow_journal"), "3") << "running, paused, runs";
  auto check = [&](const std::vector<StoredFlow>& loaded) {
    ASSERT_EQ(loaded.size(), kFlows);
    size_t wrong = 0;
    for (size_t i = 0; i < kFlows; ++i) {
      const auto& f = loaded[i];
      if (f.desired != (i % 2 == 0 ? Desired::kRunning : Desired::kPaused) || f.runs != i + 1 ||
          f.last_run != "{\"i\":" + std::to_string(i) + "}") {
        ++wrong;
      }
    }
    EXPECT_EQ(wrong, 0u);
  };
  auto s = open(true);
  check(s->loadAll().value());
  bool seen_partial = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string left = rawQuery("SELECT count(*) FROM flow_journal");
    if (left == "0") break;
    const std::string folded = rawQuery("SELECT count(*) FROM flow_runs WHERE runs > 0");
    if (!folded.empty() && folded != "0" && folded != std::to_string(kFlows)) seen_partial = true;
    check(s->loadAll().value());
  }
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flow_journal"), "0");
  check(s->loadAll().value());
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flow_runs WHERE runs > 0"), std::to_string(kFlows));
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flows WHERE desired = 'paused'"),
            std::to_string(kFlows / 2));
  // Not asserted (it depends on how fast the slices go), only reported.
  RecordProperty("seen_a_partial_fold", seen_partial ? "yes" : "no");
}

// A store that journaled folds it all before it closes: the tables alone hold the state.
TEST_F(SqliteJournalTest, AStoreFoldsWhatItJournaledBeforeItCloses) {
  {
    auto s = open(true);
    auto inc = s->insertFlows({{"a", "{}", Desired::kStopped}}, nullptr).value();
    ASSERT_TRUE(s->setDesired({{"a", Desired::kRunning, inc[0]}}, nullptr).ok());
    ASSERT_TRUE(s->setRunRecord("a", inc[0], 1, R"({"n":1})").ok());
  }  // closed at once, before the quiet period passed
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flow_journal"), "0");
  EXPECT_EQ(rawQuery("SELECT desired FROM flows"), "running");
  EXPECT_EQ(rawQuery("SELECT last_run FROM flow_runs"), R"({"n":1})");
}

// A batch whose blob ends in the middle of a record (a damaged file) keeps the records before
// it, and the store opens.
TEST_F(SqliteJournalTest, ADamagedBatchKeepsTheRecordsBeforeTheDamage) {
  {
    auto s = open(false);
    auto inc = s->insertFlows({{"a", "{}"}, {"b", "{}"}}, nullptr).value();
    ASSERT_TRUE(
        s->setRunRecords({{"a", inc[0], 1, R"({"n":1})"}, {"b", inc[1], 7, R"({"n":7})"}}).ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").string().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE flow_journal SET body = substr(body, 1, length(body) - 3)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = open(true);
  auto flows = s->loadAll().value();
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0].runs, 1u);
  EXPECT_EQ(flows[1].runs, 0u) << "its record was cut";
  ASSERT_TRUE(journalEmptyWithin(std::chrono::seconds(20)));
  EXPECT_EQ(s->loadAll().value()[0].runs, 1u);
}

// Two stores folding one journal at once (a server and another process that opened the file)
// take turns through the cursor committed with each slice: neither folds a flow's older record
// over the newer one the other folded. Each flow has two records in the batch, in order.
TEST_F(SqliteJournalTest, TwoStoresFoldingAtOnceGoOnFromTheCommittedCursor) {
  constexpr size_t kFlows = 12000;
  const auto flows = numberedFlows(kFlows);
  {
    auto s = open(false);
    auto inc = s->insertFlows(flows, nullptr).value();
    std::vector<RunRecordRow> runs;
    for (size_t i = 0; i < kFlows; ++i) {
      runs.push_back({flows[i].id, inc[i], 1, R"({"old":1})"});
      runs.push_back({flows[i].id, inc[i], 2, R"({"new":2})"});
    }
    ASSERT_TRUE(s->setRunRecords(runs).ok());
  }
  {
    auto one = open(true);
    auto two = open(true);
    ASSERT_TRUE(journalEmptyWithin(std::chrono::seconds(60)));
  }
  EXPECT_EQ(rawQuery("SELECT count(*) FROM flow_runs WHERE runs = 2 AND last_run = '{\"new\":2}'"),
            std::to_string(kFlows));
  auto s = open(false);
  const auto loaded = s->loadAll();  // held: a range over value() of a temporary dangles
  ASSERT_TRUE(loaded.ok());
  size_t wrong = 0;
  for (const auto& f : loaded.value()) wrong += f.runs == 2 ? 0 : 1;
  EXPECT_EQ(wrong, 0u);
}

}  // namespace
}  // namespace sluice
