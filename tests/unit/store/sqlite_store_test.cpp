// What only the SQLite store does: upgrading files of older schemas (plugin state kept by flow
// id, no recorded versions) and refusing newer ones. (What every store promises is in tests/store,
// run on both backends.)
#include "core/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

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
  std::filesystem::path dir_;
};

TEST_F(SqliteStoreTest, MigratesStateKeptByFlowId) {
  {
    auto s = open();
    ASSERT_TRUE(s->insertFlows({{"a", "{}", Desired::kStopped}}, nullptr).ok());
  }
  // A database of the previous schema: plugin state in flow_state, keyed by flow id.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").string().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE flow_state (flow_id TEXT NOT NULL, key TEXT NOT NULL, "
                           "value BLOB NOT NULL, PRIMARY KEY (flow_id, key));"
                           "INSERT INTO flow_state VALUES ('a', 'offset', '42');"
                           "INSERT INTO flow_state VALUES ('gone', 'offset', '7');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = open();
  const Incarnation a = s->loadAll().value()[0].incarnation;
  auto v = s->stateGet(a, "offset");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v.value().has_value());
  EXPECT_EQ(*v.value(), "42");
}

TEST_F(SqliteStoreTest, UpgradesADatabaseWrittenBeforeSchemaVersions) {
  // The schema as it was before versions were recorded (no schema_migrations, no nodes).
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").string().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE flows (seq INTEGER PRIMARY KEY AUTOINCREMENT, flow_id "
                           "TEXT NOT NULL UNIQUE, record TEXT NOT NULL, desired TEXT NOT NULL "
                           "DEFAULT 'stopped');"
                           "CREATE TABLE plugin_state (incarnation INTEGER NOT NULL, key TEXT NOT "
                           "NULL, value BLOB NOT NULL, PRIMARY KEY (incarnation, key));"
                           "CREATE TABLE sequences (name TEXT PRIMARY KEY, next INTEGER NOT NULL);"
                           "INSERT INTO flows (flow_id, record, desired) VALUES ('old', "
                           "'{\"flow_id\":\"old\"}', 'running');"
                           "INSERT INTO sequences VALUES ('events', 5000001);",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
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

TEST_F(SqliteStoreTest, RefusesADatabaseOfANewerSchema) {
  open().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").string().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 'future', 0)", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto again = SqliteStore::open((dir_ / "sluice.db").string());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("newer than this build"), std::string::npos)
      << again.error().message;
}

}  // namespace
}  // namespace sluice
