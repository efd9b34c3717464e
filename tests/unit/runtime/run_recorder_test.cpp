// The group commit of run records: rows queued while a transaction is being written go
// together into the next one, nobody is told "durable" before the rows it waits for are
// stored, and stop() writes what is queued.
#include "core/runtime/run_recorder.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "core/store/sqlite_store.hpp"
#include "fakes/server_process.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

class RunRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(SLUICE_TEST_TMP) /
           ("recorder-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = SqliteStore::open((dir_ / "sluice.db").string());
    ASSERT_TRUE(s.ok());
    store_ = std::move(s.value());
    std::vector<StoredFlow> flows;
    for (int i = 0; i < kFlows; ++i) {
      flows.push_back({id(i), R"({"flow_id":")" + id(i) + R"("})", Desired::kStopped});
    }
    auto inc = store_->insertFlows(flows, nullptr);
    ASSERT_TRUE(inc.ok());
    incarnations_ = inc.value();
  }
  static std::string id(int i) { return "f" + std::to_string(i); }
  RunRecordRow row(int i, uint64_t runs) {
    return {id(i), incarnations_[i], runs, R"({"n":)" + std::to_string(runs) + "}"};
  }
  // The runs stored for each flow, read back from the database.
  std::map<std::string, uint64_t> storedRuns() {
    std::map<std::string, uint64_t> out;
    auto all = store_->loadAll();
    EXPECT_TRUE(all.ok());
    for (const auto& f : all.value()) out[f.id] = f.runs;
    return out;
  }

  static constexpr int kFlows = 1000;
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  std::vector<Incarnation> incarnations_;
};

// A second connection holds the database's write lock: the recorder's first transaction waits,
// and the 999 rows queued meanwhile from four threads are written in one more.
TEST_F(RunRecorderTest, RowsQueuedDuringAWriteGoInTheNextTransaction) {
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  RunRecorder recorder(store_.get());
  std::atomic<bool> first_durable{false};
  recorder.record(row(0, 1), [&] { first_durable = true; });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 1 + t; i < kFlows; i += 4) recorder.record(row(i, 1));
    });
  }
  for (auto& t : threads) t.join();
  std::atomic<bool> all_durable{false};
  recorder.afterDurable([&] { all_durable = true; });
  EXPECT_FALSE(first_durable.load());  // the write lock is still held elsewhere
  EXPECT_FALSE(all_durable.load());
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  ASSERT_TRUE(test::waitFor([&] { return all_durable.load(); }, 10s));
  EXPECT_TRUE(first_durable.load());
  EXPECT_LE(recorder.transactions(), 2u);
  const auto runs = storedRuns();
  for (int i = 0; i < kFlows; ++i) EXPECT_EQ(runs.at(id(i)), 1u) << id(i);
}

// Nothing to wait for: the caller is answered at once, on its own thread.
TEST_F(RunRecorderTest, AfterDurableWithNothingQueuedAnswersAtOnce) {
  RunRecorder recorder(store_.get());
  bool called = false;
  recorder.afterDurable([&] { called = true; });
  EXPECT_TRUE(called);
  EXPECT_EQ(recorder.transactions(), 0u);
}

// The last row of a flow wins; stop() writes what is queued; a row after stop() is written by
// the caller itself, who is told so (and runs its callback).
TEST_F(RunRecorderTest, StopWritesWhatIsQueuedAndLaterRowsAreWrittenAtOnce) {
  {
    RunRecorder recorder(store_.get());
    for (uint64_t runs = 1; runs <= 50; ++runs) recorder.record(row(3, runs));
    recorder.stop();
    EXPECT_EQ(storedRuns().at(id(3)), 50u);
    bool then = false;
    EXPECT_FALSE(recorder.record(row(4, 7), [&] { then = true; }));  // written here, not queued
    EXPECT_FALSE(then);  // the caller's to run, outside its locks
    EXPECT_EQ(storedRuns().at(id(4)), 7u);
  }
}

}  // namespace
}  // namespace sluice
