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

TEST_F(SqliteStoreTest, InsertsInOrderAndSurvivesReopen) {
  {
    auto s = open();
    ASSERT_TRUE(s->insertFlows({{"b", R"({"flow_id":"b"})", Desired::kStopped},
                                {"a", R"({"flow_id":"a"})", Desired::kStopped}},
                               nullptr)
                    .ok());
    ASSERT_TRUE(s->insertFlows({{"c", R"({"flow_id":"c"})", Desired::kStopped}}, nullptr).ok());
    ASSERT_TRUE(s->setDesired({{"a", Desired::kRunning}, {"c", Desired::kPaused}}, nullptr).ok());
  }
  auto s = open();
  auto all = s->loadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 3u);
  EXPECT_EQ(all.value()[0].id, "b");
  EXPECT_EQ(all.value()[1].id, "a");
  EXPECT_EQ(all.value()[1].desired, Desired::kRunning);
  EXPECT_EQ(all.value()[2].desired, Desired::kPaused);
}

TEST_F(SqliteStoreTest, BatchIsAtomic) {
  auto s = open();
  ASSERT_TRUE(s->insertFlows({{"a", "{}", Desired::kStopped}}, nullptr).ok());
  auto r =
      s->insertFlows({{"b", "{}", Desired::kStopped}, {"a", "{}", Desired::kStopped}}, nullptr);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(s->loadAll().value().size(), 1u);
}

TEST_F(SqliteStoreTest, UpdateKeepsPositionAndStateIsKeyedByIncarnation) {
  auto s = open();
  auto inc =
      s->insertFlows({{"a", "{}", Desired::kStopped}, {"b", "{}", Desired::kStopped}}, nullptr);
  ASSERT_TRUE(inc.ok());
  const Incarnation a = inc.value()[0];
  const Incarnation b = inc.value()[1];
  EXPECT_NE(a, b);
  ASSERT_TRUE(s->updateFlow("a", a, R"({"flow_id":"a","v":2})", nullptr).ok());
  ASSERT_TRUE(s->statePut(a, "offset", std::string("4\0 2", 4)).ok());
  EXPECT_EQ(*s->stateGet(a, "offset").value(), std::string("4\0 2", 4));
  auto all = s->loadAll().value();
  EXPECT_EQ(all[0].record_json, R"({"flow_id":"a","v":2})");
  EXPECT_EQ(all[0].incarnation, a);
  // Deleted and created again under the same id: a new incarnation, which neither sees the old
  // state nor can be updated through the old incarnation.
  ASSERT_TRUE(s->deleteFlow("a", nullptr).ok());
  auto again = s->insertFlows({{"a", R"({"flow_id":"a","v":3})", Desired::kStopped}}, nullptr);
  ASSERT_TRUE(again.ok());
  const Incarnation a2 = again.value()[0];
  EXPECT_NE(a2, a);
  EXPECT_FALSE(s->stateGet(a2, "offset").value().has_value());
  auto stale = s->updateFlow("a", a, R"({"flow_id":"a","v":9})", nullptr);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(s->loadAll().value()[1].record_json, R"({"flow_id":"a","v":3})");
  // The old incarnation's state goes when asked (after the flow stopped), or at the next open.
  ASSERT_TRUE(s->deleteState(a).ok());
  EXPECT_FALSE(s->stateGet(a, "offset").value().has_value());
  ASSERT_TRUE(s->statePut(a, "late", "x").ok());  // plugin code of the deleted flow, late
  s.reset();
  s = open();
  EXPECT_FALSE(s->stateGet(a, "late").value().has_value());
  ASSERT_TRUE(s->stateDelete(b, "nothing").ok());
}

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
