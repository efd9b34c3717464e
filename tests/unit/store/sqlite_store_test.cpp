// What only the SQLite store does: upgrading files of older schemas (plugin state kept by flow
// id, no recorded versions) and refusing newer ones. (What every store promises is in tests/store,
// run on both backends.)
#include "core/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/store/migrations.hpp"

namespace sluice {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("store-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  std::unique_ptr<SqliteStore> open() {
    auto s = SqliteStore::open((dir_ / "sluice.db").string());
    EXPECT_TRUE(s.ok());
    return std::move(s.value());
  }
  // Runs `sql` on the database file directly (as an older build or another tool would have
  // left it); "" when it worked, else SQLite's message.
  std::string rawExec(const char* sql) {
    sqlite3* db = nullptr;
    std::string error;
    if (sqlite3_open((dir_ / "sluice.db").string().c_str(), &db) != SQLITE_OK ||
        sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      error = db != nullptr ? sqlite3_errmsg(db) : "cannot open";
    }
    sqlite3_close(db);
    return error;
  }
  std::filesystem::path dir_;
};

TEST_F(SqliteStoreTest, MigratesStateKeptByFlowId) {
  {
    auto s = open();
    ASSERT_TRUE(s->insertFlows({{"a", "{}", Desired::kStopped}}, nullptr).ok());
  }
  // A database of the previous schema: plugin state in flow_state, keyed by flow id.
  ASSERT_EQ(rawExec("CREATE TABLE flow_state (flow_id TEXT NOT NULL, key TEXT NOT NULL, "
                    "value BLOB NOT NULL, PRIMARY KEY (flow_id, key));"
                    "INSERT INTO flow_state VALUES ('a', 'offset', '42');"
                    "INSERT INTO flow_state VALUES ('gone', 'offset', '7');"),
            "");
  auto s = open();
  const Incarnation a = s->loadAll().value()[0].incarnation;
  auto v = s->stateGet(a, "offset");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v.value().has_value());
  EXPECT_EQ(*v.value(), "42");
}

TEST_F(SqliteStoreTest, UpgradesADatabaseWrittenBeforeSchemaVersions) {
  // The schema as it was before versions were recorded (no schema_migrations, no nodes).
  ASSERT_EQ(rawExec("CREATE TABLE flows (seq INTEGER PRIMARY KEY AUTOINCREMENT, flow_id "
                    "TEXT NOT NULL UNIQUE, record TEXT NOT NULL, desired TEXT NOT NULL "
                    "DEFAULT 'stopped');"
                    "CREATE TABLE plugin_state (incarnation INTEGER NOT NULL, key TEXT NOT "
                    "NULL, value BLOB NOT NULL, PRIMARY KEY (incarnation, key));"
                    "CREATE TABLE sequences (name TEXT PRIMARY KEY, next INTEGER NOT NULL);"
                    "INSERT INTO flows (flow_id, record, desired) VALUES ('old', "
                    "'{\"flow_id\":\"old\"}', 'running');"
                    "INSERT INTO sequences VALUES ('events', 5000001);"),
            "");
  auto s = open();
  auto history = s->schemaHistory();
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history.value().size(), schemaMigrations().size());
  auto flows = s->loadAll().value();
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].desired, Desired::kRunning);
  EXPECT_EQ(s->reserveSequence("events", 1).value(), 5000001u);
  EXPECT_TRUE(s->listNodes().ok()) << "the newer tables exist";
}

// Schema version 9 moves the runs and type versions out of `flows` into `flow_runs`: a
// database of version 8 keeps every flow's, and `flows` loses the three columns.
TEST_F(SqliteStoreTest, MovesTheRunsOfAVersion8DatabaseIntoTheirOwnTable) {
  {
    auto s = open();
    ASSERT_TRUE(
        s->insertFlows({{"a", "{}", Desired::kRunning}, {"b", "{}", Desired::kStopped}}, nullptr)
            .ok());
  }
  // Back to version 8: the runs in `flows`, no journal.
  ASSERT_EQ(rawExec("DROP TABLE flow_runs;"
                    "DROP TABLE flow_journal;"
                    "DROP TABLE flow_journal_cursor;"
                    "ALTER TABLE flows ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;"
                    "ALTER TABLE flows ADD COLUMN last_run TEXT NOT NULL DEFAULT '';"
                    "ALTER TABLE flows ADD COLUMN type_version TEXT NOT NULL DEFAULT '';"
                    "UPDATE flows SET runs = 3, last_run = '{\"x\":1}' WHERE flow_id = 'a';"
                    "UPDATE flows SET type_version = '1.0.0' WHERE flow_id = 'b';"
                    "DELETE FROM schema_migrations WHERE version >= 9;"),
            "");
  auto s = open();
  auto flows = s->loadAll().value();
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0].id, "a");
  EXPECT_EQ(flows[0].runs, 3u);
  EXPECT_EQ(flows[0].last_run, R"({"x":1})");
  EXPECT_EQ(flows[0].desired, Desired::kRunning);
  EXPECT_EQ(flows[0].type_version, "");
  EXPECT_EQ(flows[1].runs, 0u);
  EXPECT_EQ(flows[1].last_run, "");
  EXPECT_EQ(flows[1].type_version, "1.0.0") << "started once, never ran";
  ASSERT_TRUE(s->setRunRecord("b", flows[1].incarnation, 1, R"({"y":2})").ok());
  EXPECT_EQ(s->loadAll().value()[1].runs, 1u);
  EXPECT_EQ(s->loadAll().value()[1].type_version, "1.0.0") << "kept by a run record";
  ASSERT_TRUE(s->deleteFlow("b", nullptr).ok());  // takes its runs' row with it
  s.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").string().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT count(*) FROM pragma_table_info('flows') WHERE name IN "
                               "('runs', 'last_run', 'type_version')",
                               -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 0) << "flows keeps no runs";
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT group_concat(runs) FROM flow_runs", -1, &st, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "3") << "a's only";
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(SqliteStoreTest, RefusesADatabaseOfANewerSchema) {
  open().reset();
  ASSERT_EQ(rawExec("INSERT INTO schema_migrations VALUES (999, 'future', 0)"), "");
  auto again = SqliteStore::open((dir_ / "sluice.db").string());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("newer than this build"), std::string::npos)
      << again.error().message;
}

// The log is checkpointed off the commits' path, by the store's checkpoint thread: the commits
// themselves never do (wal_autocheckpoint 0), yet the log is copied into the database once it
// passes SQLite's threshold, and everything written is there after a reopen.
TEST_F(SqliteStoreTest, CheckpointsTheLogOnItsOwnThread) {
  auto s = open();
  EXPECT_EQ(s->checkpoints(), 0u);
  std::vector<StoredFlow> flows;
  const std::string padding(2'000, 'x');
  for (int i = 0; i < 3'000; ++i) {  // about 6 MB of log: past 1000 pages of 4 KB
    const std::string id = "f" + std::to_string(i);
    flows.push_back(
        {id, R"({"flow_id":")" + id + R"(","pad":")" + padding + R"("})", Desired::kStopped});
  }
  ASSERT_TRUE(s->insertFlows(flows, nullptr).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (s->checkpoints() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(s->checkpoints(), 1u);
  EXPECT_GT(std::filesystem::file_size(dir_ / "sluice.db"), 5'000'000u)
      << "the log's pages are in the database while the store is open";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").string().c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA wal_autocheckpoint", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(st, 0), 1000) << "a connection of its own keeps the default";
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  ASSERT_TRUE(s->setDesired({{"f7", Desired::kRunning}}, nullptr).ok());
  s.reset();
  EXPECT_FALSE(std::filesystem::exists(dir_ / "sluice.db-wal"))
      << "the last close checkpoints the rest and removes the log";
  s = open();
  auto all = s->loadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), flows.size());
  EXPECT_EQ(all.value()[7].desired, Desired::kRunning);
}

}  // namespace
}  // namespace sluice
