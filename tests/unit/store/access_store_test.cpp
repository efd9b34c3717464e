// The store's access tables: the audit log (append, pages, pruning) and audit entries written in
// the transaction of the change they record, and only when that change commits.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <thread>

#include "api/auth/audit_trail.hpp"
#include "api/auth/token_book.hpp"
#include "core/store/sqlite_store.hpp"

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
    AuditEntry e;
    e.time_ms = time_ms;
    e.token = "t";
    e.role = "editor";
    e.remote = "127.0.0.1";
    e.method = "POST";
    e.path = path;
    e.flow_ids = {"a", "b\"quoted\""};
    e.status = 201;
    return e;
  }
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
};

TEST_F(AccessStoreTest, AppendListAndPage) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(store_->appendAudit(entry("/p" + std::to_string(i))).ok());
  reopen();  // durable
  auto all = store_->listAudit(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 5u);
  EXPECT_EQ(all.value()[0].path, "/p0");
  EXPECT_EQ(all.value()[0].flow_ids, (std::vector<std::string>{"a", "b\"quoted\""}));
  EXPECT_EQ(all.value()[0].role, "editor");
  auto page = store_->listAudit(all.value()[1].seq, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page.value().size(), 2u);
  EXPECT_EQ(page.value()[0].path, "/p2");
  EXPECT_EQ(page.value()[1].path, "/p3");
}

TEST_F(AccessStoreTest, PruneRemovesOnlyOlderEntries) {
  ASSERT_TRUE(store_->appendAudit(entry("/old", 1000)).ok());
  ASSERT_TRUE(store_->appendAudit(entry("/new", 5000)).ok());
  auto n = store_->pruneAudit(2000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 1u);
  auto left = store_->listAudit(0, 10);
  ASSERT_EQ(left.value().size(), 1u);
  EXPECT_EQ(left.value()[0].path, "/new");
}

TEST_F(AccessStoreTest, AnEntryCommitsWithItsChangeAndNotWithoutIt) {
  AuditRecord ok(entry("/flows"));
  ASSERT_TRUE(store_->insertFlows({{"a", "{}", Desired::kStopped}}, &ok).ok());
  EXPECT_TRUE(ok.written);
  AuditRecord dup(entry("/flows"));
  EXPECT_FALSE(store_->insertFlows({{"a", "{}", Desired::kStopped}}, &dup).ok());
  EXPECT_FALSE(dup.written);
  AuditRecord desired(entry("/flows/commands"));
  ASSERT_TRUE(store_->setDesired({}, &desired).ok()) << "a command that changes nothing is logged";
  EXPECT_TRUE(desired.written);
  auto incs = store_->loadAll();
  ASSERT_TRUE(incs.ok());
  AuditRecord stale(entry("/flows/a"));
  EXPECT_FALSE(store_->updateFlow("a", incs.value()[0].incarnation + 1, "{}", &stale).ok());
  EXPECT_FALSE(stale.written);
  AuditRecord del(entry("/flows/a"));
  ASSERT_TRUE(store_->deleteFlow("a", &del).ok());
  EXPECT_TRUE(del.written);
  auto log = store_->listAudit(0, 10);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log.value().size(), 3u);
  EXPECT_EQ(log.value()[0].path, "/flows");
  EXPECT_EQ(log.value()[1].path, "/flows/commands");
  EXPECT_EQ(log.value()[2].path, "/flows/a");
}

TEST_F(AccessStoreTest, ExternalChangesMoveWithCommitsOfOtherConnections) {
  auto v0 = store_->externalChanges();
  ASSERT_TRUE(v0.ok());
  auto v1 = store_->externalChanges();
  EXPECT_EQ(v0.value(), v1.value()) << "nothing changed";
  auto other = SqliteStore::open((dir_ / "sluice.db").string());
  ASSERT_TRUE(other.ok());
  TokenRecord t{"n", "viewer", "abc", 1, std::nullopt, std::nullopt};
  ASSERT_TRUE(other.value()->insertToken(t, nullptr).ok());
  auto v2 = store_->externalChanges();
  ASSERT_TRUE(v2.ok());
  EXPECT_NE(v2.value(), v1.value());
  auto dup = store_->insertToken({"n", "admin", "def", 2, std::nullopt, std::nullopt}, nullptr);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().kind, ErrorKind::kConflict);
}

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
