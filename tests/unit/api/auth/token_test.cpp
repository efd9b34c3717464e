// Token secrets, hashing, and the token cache over a real SQLite store: verdicts, names,
// conflicts, and changes made by another process (the CLI) seen on the next check.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "api/auth/token_book.hpp"
#include "api/auth/token_crypto.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice::auth {
namespace {

TEST(TokenCrypto, SecretsAre256RandomBitsInHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string s = newTokenSecret();
    ASSERT_EQ(s.size(), 7u + 64u) << s;
    EXPECT_EQ(s.rfind("sluice_", 0), 0u);
    EXPECT_EQ(s.find_first_not_of("0123456789abcdef", 7), std::string::npos) << s;
    EXPECT_TRUE(seen.insert(s).second) << "a secret came twice: " << s;
  }
}

TEST(TokenCrypto, Sha256OfKnownVectors) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TokenCrypto, ConstantTimeEqual) {
  EXPECT_TRUE(constantTimeEqual("abcd", "abcd"));
  EXPECT_FALSE(constantTimeEqual("abcd", "abce"));
  EXPECT_FALSE(constantTimeEqual("abcd", "abc"));
  EXPECT_TRUE(constantTimeEqual("", ""));
}

TEST(TokenNames, Rules) {
  EXPECT_EQ(nameProblem("ci-bot_1.prod"), "");
  EXPECT_NE(nameProblem(""), "");
  EXPECT_NE(nameProblem(std::string(65, 'a')), "");
  EXPECT_NE(nameProblem("has space"), "");
  EXPECT_NE(nameProblem("slash/name"), "");
  EXPECT_NE(nameProblem("anonymous"), "");
}

class TokenBookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("tokens-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = open();
    book_ = std::make_unique<TokenBook>(*store_);
  }
  std::unique_ptr<SqliteStore> open() {
    auto s = SqliteStore::open((dir_ / "sluice.db").string());
    EXPECT_TRUE(s.ok());
    return std::move(s.value());
  }
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TokenBook> book_;
};

TEST_F(TokenBookTest, VerdictsOfValidUnknownExpiredAndRevokedTokens) {
  const int64_t now = nowMs();
  auto a = book_->issue("alice", Role::kEditor, std::nullopt, now, nullptr);
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = book_->issue("bob", Role::kViewer, std::chrono::milliseconds(1000), now, nullptr);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(book_->anyLive());

  auto m = book_->check(a.value().secret, now);
  EXPECT_EQ(m.verdict, Verdict::kValid);
  EXPECT_EQ(m.name, "alice");
  EXPECT_EQ(m.role, Role::kEditor);

  EXPECT_EQ(book_->check(b.value().secret, now + 999).verdict, Verdict::kValid);
  EXPECT_EQ(book_->check(b.value().secret, now + 1000).verdict, Verdict::kExpired);
  EXPECT_EQ(book_->check("sluice_0000", now).verdict, Verdict::kUnknown);
  EXPECT_EQ(book_->check("", now).verdict, Verdict::kUnknown);

  ASSERT_TRUE(book_->revoke("alice", now, nullptr).ok());
  m = book_->check(a.value().secret, now);
  EXPECT_EQ(m.verdict, Verdict::kRevoked);
  EXPECT_EQ(m.name, "alice");
}

TEST_F(TokenBookTest, OnlyTheHashIsStored) {
  auto a = book_->issue("alice", Role::kAdmin, std::nullopt, nowMs(), nullptr);
  ASSERT_TRUE(a.ok());
  auto rows = store_->loadTokens();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows.value().size(), 1u);
  EXPECT_EQ(rows.value()[0].hash, sha256Hex(a.value().secret));
  EXPECT_EQ(rows.value()[0].role, "admin");
}

TEST_F(TokenBookTest, NamesAreUniqueAmongLiveTokensAndFreedByRevocation) {
  const int64_t now = nowMs();
  ASSERT_TRUE(book_->issue("ci", Role::kOperator, std::nullopt, now, nullptr).ok());
  auto dup = book_->issue("ci", Role::kViewer, std::nullopt, now, nullptr);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().kind, ErrorKind::kConflict);
  auto bad = book_->issue("no spaces", Role::kViewer, std::nullopt, now, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalid);

  ASSERT_TRUE(book_->revoke("ci", now, nullptr).ok());
  auto again = book_->revoke("ci", now, nullptr);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
  EXPECT_FALSE(book_->anyLive());
  // Rotation: the name can be issued again.
  ASSERT_TRUE(book_->issue("ci", Role::kOperator, std::nullopt, now, nullptr).ok());
  auto live = book_->live();
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live.value().size(), 1u);
  EXPECT_EQ(live.value()[0].name, "ci");
}

TEST_F(TokenBookTest, AChangeByAnotherConnectionIsSeenOnTheNextCheck) {
  const int64_t now = nowMs();
  auto a = book_->issue("alice", Role::kAdmin, std::nullopt, now, nullptr);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(book_->check(a.value().secret, now).verdict, Verdict::kValid);
  {
    // What `sluice token revoke` does from another process: its own connection.
    auto other = open();
    TokenBook cli(*other);
    ASSERT_TRUE(cli.revoke("alice", now, nullptr).ok());
    auto issued = cli.issue("carol", Role::kViewer, std::nullopt, now, nullptr);
    ASSERT_TRUE(issued.ok());
    EXPECT_EQ(book_->check(issued.value().secret, now).verdict, Verdict::kValid);
  }
  EXPECT_EQ(book_->check(a.value().secret, now).verdict, Verdict::kRevoked);
}

TEST_F(TokenBookTest, IssueAndRevokeStoreTheirAuditEntryInTheSameTransaction) {
  AuditEntry e;
  e.method = "POST";
  e.path = "/tokens";
  e.status = 201;
  AuditRecord rec(e);
  ASSERT_TRUE(book_->issue("x", Role::kViewer, std::nullopt, nowMs(), &rec).ok());
  EXPECT_TRUE(rec.written);
  AuditRecord dup(e);
  EXPECT_FALSE(book_->issue("x", Role::kViewer, std::nullopt, nowMs(), &dup).ok());
  EXPECT_FALSE(dup.written) << "a refused change must not leave its entry behind";
  auto log = store_->listAudit(0, 10);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log.value().size(), 1u);
  EXPECT_EQ(log.value()[0].path, "/tokens");
}

// Checks on several threads while tokens are revoked through another connection (the CLI's):
// a check that starts after a revocation returned never lets the token in. Bounded by rounds.
TEST_F(TokenBookTest, ARevocationHoldsForEveryCheckThatStartsAfterIt) {
  constexpr int kRounds = 40;
  auto other = open();
  TokenBook cli(*other);
  for (int round = 0; round < kRounds; ++round) {
    const std::string name = "t" + std::to_string(round);
    auto t = cli.issue(name, Role::kViewer, std::nullopt, nowMs(), nullptr);
    ASSERT_TRUE(t.ok());
    std::atomic<bool> revoked{false};
    std::atomic<bool> stop{false};
    std::atomic<int> late_accepts{0};
    std::vector<std::thread> checkers;
    for (int i = 0; i < 3; ++i) {
      checkers.emplace_back([&] {
        while (!stop) {
          const bool after = revoked.load();
          const auto v = book_->check(t.value().secret, nowMs()).verdict;
          if (after && v == Verdict::kValid) ++late_accepts;
        }
      });
    }
    std::this_thread::yield();
    ASSERT_TRUE(cli.revoke(name, nowMs(), nullptr).ok());
    revoked = true;
    for (int i = 0; i < 200 && book_->check(t.value().secret, nowMs()).verdict != Verdict::kRevoked;
         ++i) {
    }
    stop = true;
    for (auto& c : checkers) c.join();
    EXPECT_EQ(late_accepts.load(), 0) << "round " << round;
    EXPECT_EQ(book_->check(t.value().secret, nowMs()).verdict, Verdict::kRevoked);
  }
}

}  // namespace
}  // namespace sluice::auth
