// What only the SQLite store does: moving plugin state kept by flow id (an older schema) to
// incarnations. (What every store promises is in tests/store, run on both backends.)
#include "core/store/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

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

}  // namespace
}  // namespace sluice
