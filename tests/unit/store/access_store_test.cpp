// The audit trail over the SQLite store: pruning past its retention, entries no transaction
// stored, and a log that cannot record. (The store's own promises are in tests/store, run on
// both backends.)
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <thread>

#include "api/auth/audit_trail.hpp"
#include "api/auth/token_book.hpp"
#include "core/store/sqlite_store.hpp"
#include "fakes/audit_entries.hpp"

namespace sluice {
namespace {

class AccessStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("access-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    reopen();
  }
  void reopen() {
    store_.reset();
    auto s = SqliteStore::open((dir_ / "sluice.db").string());
    ASSERT_TRUE(s.ok());
    store_ = std::move(s.value());
  }
  static AuditEntry entry(const std::string& path, int64_t time_ms = 1000) {
    return test::sampleAuditEntry(path, time_ms);
  }
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(AccessStoreTest, TheTrailPrunesPastItsRetentionInTheBackground) {
  const int64_t now = auth::nowMs();
  const int64_t day = 24LL * 3600 * 1000;
  ASSERT_TRUE(store_->appendAudit(entry("/ancient", now - 91 * day)).ok());
  ASSERT_TRUE(store_->appendAudit(entry("/recent", now - 89 * day)).ok());
  auth::AuditTrail trail(*store_, std::chrono::hours(24 * 90));  // prunes at start
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  size_t left = 0;
  while (std::chrono::steady_clock::now() < until) {
    left = store_->listAudit(0, 10).value().size();
    if (left == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto rest = store_->listAudit(0, 10);
  ASSERT_EQ(rest.value().size(), 1u);
  EXPECT_EQ(rest.value()[0].path, "/recent");
}

TEST_F(AccessStoreTest, ZeroRetentionKeepsEverything) {
  ASSERT_TRUE(store_->appendAudit(entry("/ancient", 1)).ok());
  auth::AuditTrail trail(*store_, std::chrono::hours(0));
  EXPECT_EQ(trail.prune(), 0u);
  EXPECT_EQ(store_->listAudit(0, 10).value().size(), 1u);
}

TEST_F(AccessStoreTest, TheTrailAppendsWhatNoTransactionStored) {
  auth::AuditTrail trail(*store_, std::chrono::hours(0));
  auto rec = auth::AuditTrail::begin("t", "viewer", "10.0.0.9", "DELETE", "/flows/x");
  trail.finish(rec, 403, R"({"error":"needs the role editor","required_role":"editor"})");
  EXPECT_TRUE(rec->written);
  trail.finish(rec, 403, "{}");  // once only
  auto log = store_->listAudit(0, 10);
  ASSERT_EQ(log.value().size(), 1u);
  EXPECT_EQ(log.value()[0].status, 403);
  EXPECT_EQ(log.value()[0].error, "needs the role editor");
  EXPECT_EQ(log.value()[0].remote, "10.0.0.9");
}

TEST_F(AccessStoreTest, TheTrailSaysSoWhenItCannotRecord) {
  // Break the audit table from another connection: every append fails from now on.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "sluice.db").string().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "DROP TABLE audit", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auth::AuditTrail trail(*store_, std::chrono::hours(0));
  auto rec = auth::AuditTrail::begin("anonymous", "anonymous", "10.0.0.9", "GET", "/flows");
  EXPECT_FALSE(trail.finish(rec, 401, R"({"error":"unknown token"})"))
      << "the reply must not acknowledge what the log does not hold";
  EXPECT_FALSE(rec->written);
}

}  // namespace
}  // namespace sluice
