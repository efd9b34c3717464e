#include "core/store/sqlite_store.hpp"

#include <gtest/gtest.h>

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
                                {"a", R"({"flow_id":"a"})", Desired::kStopped}})
                    .ok());
    ASSERT_TRUE(s->insertFlows({{"c", R"({"flow_id":"c"})", Desired::kStopped}}).ok());
    ASSERT_TRUE(s->setDesired({{"a", Desired::kRunning}, {"c", Desired::kPaused}}).ok());
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
  ASSERT_TRUE(s->insertFlows({{"a", "{}", Desired::kStopped}}).ok());
  auto r = s->insertFlows({{"b", "{}", Desired::kStopped}, {"a", "{}", Desired::kStopped}});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(s->loadAll().value().size(), 1u);
}

TEST_F(SqliteStoreTest, UpdateKeepsPositionAndDeleteRemovesState) {
  auto s = open();
  ASSERT_TRUE(
      s->insertFlows({{"a", "{}", Desired::kStopped}, {"b", "{}", Desired::kStopped}}).ok());
  ASSERT_TRUE(s->updateFlow("a", R"({"flow_id":"a","v":2})").ok());
  ASSERT_TRUE(s->statePut("a", "offset", std::string("4\0 2", 4)).ok());
  EXPECT_EQ(*s->stateGet("a", "offset").value(), std::string("4\0 2", 4));
  auto all = s->loadAll().value();
  EXPECT_EQ(all[0].record_json, R"({"flow_id":"a","v":2})");
  ASSERT_TRUE(s->deleteFlow("a").ok());
  EXPECT_FALSE(s->stateGet("a", "offset").value().has_value());
  EXPECT_EQ(s->loadAll().value().size(), 1u);
  ASSERT_TRUE(s->stateDelete("b", "nothing").ok());
}

}  // namespace
}  // namespace sluice
