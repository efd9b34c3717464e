// The gate's decisions: modes, the Authorization header, roles, and the lockout of an address
// after repeated failures (with its own clock: no sleeps).
#include <gtest/gtest.h>

#include <filesystem>

#include "api/auth/auth_gate.hpp"
#include "api/auth/failure_limiter.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice::auth {
namespace {

using namespace std::chrono_literals;

TEST(FailureLimiter, LocksOutAnAddressAfterTheLimitWithinTheWindowOnly) {
  FailureLimiter lim({3, 10s, 30s});
  const auto t0 = FailureLimiter::Clock::now();
  EXPECT_EQ(lim.retryAfter("a", t0), 0);
  lim.fail("a", t0);
  lim.fail("a", t0 + 1s);
  EXPECT_EQ(lim.retryAfter("a", t0 + 1s), 0);
  lim.fail("a", t0 + 2s);
  EXPECT_EQ(lim.retryAfter("a", t0 + 2s), 30);
  EXPECT_EQ(lim.retryAfter("a", t0 + 31s), 1);
  EXPECT_EQ(lim.retryAfter("a", t0 + 32s), 0) << "the lockout ends";
  EXPECT_EQ(lim.retryAfter("b", t0 + 2s), 0) << "other addresses are not affected";
}

TEST(FailureLimiter, FailuresOlderThanTheWindowDoNotCount) {
  FailureLimiter lim({3, 10s, 30s});
  const auto t0 = FailureLimiter::Clock::now();
  lim.fail("a", t0);
  lim.fail("a", t0 + 5s);
  lim.fail("a", t0 + 11s);  // the first one left the window
  EXPECT_EQ(lim.retryAfter("a", t0 + 11s), 0);
  lim.fail("a", t0 + 12s);
  EXPECT_GT(lim.retryAfter("a", t0 + 12s), 0);
}

TEST(FailureLimiter, ZeroDisablesIt) {
  FailureLimiter lim({0, 10s, 30s});
  const auto t0 = FailureLimiter::Clock::now();
  for (int i = 0; i < 100; ++i) lim.fail("a", t0);
  EXPECT_EQ(lim.retryAfter("a", t0), 0);
}

TEST(AuthMode, ResolvedFromTheFlagTheAddressAndTheTokens) {
  EXPECT_EQ(resolveAuthMode("", "127.0.0.1", false).value(), AuthMode::kAuto);
  EXPECT_EQ(resolveAuthMode("", "127.0.0.1", true).value(), AuthMode::kRequired);
  EXPECT_EQ(resolveAuthMode("", "0.0.0.0", true).value(), AuthMode::kRequired);
  auto refused = resolveAuthMode("", "0.0.0.0", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--auth none"), std::string::npos);
  EXPECT_EQ(resolveAuthMode("none", "0.0.0.0", false).value(), AuthMode::kNone);
  EXPECT_EQ(resolveAuthMode("required", "127.0.0.1", false).value(), AuthMode::kRequired);
  EXPECT_FALSE(resolveAuthMode("maybe", "127.0.0.1", false).ok());
  EXPECT_TRUE(isLoopback("127.0.0.1"));
  EXPECT_TRUE(isLoopback("127.1.2.3"));
  EXPECT_TRUE(isLoopback("::1"));
  EXPECT_TRUE(isLoopback("[::1]"));
  EXPECT_FALSE(isLoopback("0.0.0.0"));
  EXPECT_FALSE(isLoopback("10.0.0.1"));
  EXPECT_FALSE(isLoopback("127.example.com")) << "a name that only starts like an address";
  EXPECT_FALSE(isLoopback("::"));
}

class GateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(SLUICE_TEST_TMP) /
           ("gate-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = SqliteStore::open((dir_ / "sluice.db").string());
    ASSERT_TRUE(s.ok());
    store_ = std::move(s.value());
    book_ = std::make_unique<TokenBook>(*store_);
  }
  std::string issue(const std::string& name, Role role) {
    auto t = book_->issue(name, role, std::nullopt, nowMs(), nullptr);
    EXPECT_TRUE(t.ok());
    return "Bearer " + t.value().secret;
  }
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TokenBook> book_;
};

TEST_F(GateTest, AutoModeIsOpenUntilTheFirstTokenThenRequiredForGood) {
  AuthGate gate(*book_, AuthMode::kAuto, {});
  EXPECT_TRUE(gate.open());
  auto a = gate.admit(std::nullopt, "127.0.0.1", Role::kAdmin);
  EXPECT_EQ(a.status, 0);
  EXPECT_EQ(a.who.token, "anonymous");
  const std::string admin = issue("root", Role::kAdmin);
  EXPECT_EQ(gate.admit(std::nullopt, "127.0.0.1", Role::kViewer).status, 401);
  EXPECT_EQ(gate.admit(admin, "127.0.0.1", Role::kAdmin).status, 0);
  ASSERT_TRUE(book_->revoke("root", nowMs(), nullptr).ok());
  EXPECT_FALSE(gate.open()) << "revoking every token must not open the server again";
  EXPECT_EQ(gate.admit(std::nullopt, "127.0.0.1", Role::kViewer).status, 401);
}

TEST_F(GateTest, RevokedTokensStillCountAsIssued) {
  issue("root", Role::kAdmin);
  ASSERT_TRUE(book_->revoke("root", nowMs(), nullptr).ok());
  AuthGate gate(*book_, AuthMode::kAuto, {});
  EXPECT_FALSE(gate.open()) << "a restart after revoking every token must not open the server";
  EXPECT_TRUE(book_->anyIssued());
  EXPECT_FALSE(book_->anyLive());
}

TEST_F(GateTest, NoneModeNeverAsks) {
  issue("root", Role::kAdmin);
  AuthGate gate(*book_, AuthMode::kNone, {});
  EXPECT_EQ(gate.admit(std::nullopt, "10.0.0.1", Role::kAdmin).status, 0);
  EXPECT_EQ(gate.admit(std::string_view("Bearer wrong"), "10.0.0.1", Role::kAdmin).status, 0);
}

TEST_F(GateTest, RolesAndHeaderForms) {
  AuthGate gate(*book_, AuthMode::kRequired, {0, 10s, 30s});
  const std::string viewer = issue("v", Role::kViewer);
  const std::string op = issue("o", Role::kOperator);
  const std::string editor = issue("e", Role::kEditor);
  auto a = gate.admit(viewer, "h", Role::kOperator);
  EXPECT_EQ(a.status, 403);
  ASSERT_TRUE(a.required_role.has_value());
  EXPECT_EQ(*a.required_role, Role::kOperator);
  EXPECT_EQ(a.who.token, "v");
  EXPECT_EQ(a.who.role, "viewer");
  EXPECT_NE(a.error.find("operator"), std::string::npos);
  EXPECT_EQ(gate.admit(op, "h", Role::kOperator).status, 0);
  EXPECT_EQ(gate.admit(op, "h", Role::kEditor).status, 403);
  EXPECT_EQ(gate.admit(editor, "h", Role::kViewer).status, 0);
  EXPECT_EQ(gate.admit(editor, "h", Role::kAdmin).status, 403);

  std::string lower = "bearer " + editor.substr(7);
  EXPECT_EQ(gate.admit(lower, "h", Role::kEditor).status, 0) << "the scheme is case-insensitive";
  EXPECT_EQ(gate.admit(std::string_view("Basic dXNlcjpwYXNz"), "h", Role::kViewer).status, 401);
  EXPECT_EQ(gate.admit(std::string_view("Bearer"), "h", Role::kViewer).status, 401);
  EXPECT_EQ(gate.admit(std::string_view(""), "h", Role::kViewer).status, 401);
  auto unknown = gate.admit(std::string_view("Bearer sluice_nope"), "h", Role::kViewer);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(unknown.who.token, "anonymous");
}

TEST_F(GateTest, RepeatedFailuresLockOutThatAddressEvenWithAGoodToken) {
  AuthGate gate(*book_, AuthMode::kRequired, {20, 10s, 30s});
  const std::string admin = issue("root", Role::kAdmin);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(gate.admit(std::string_view("Bearer bad"), "1.2.3.4", Role::kViewer).status, 401);
  }
  auto locked = gate.admit(admin, "1.2.3.4", Role::kViewer);
  EXPECT_EQ(locked.status, 429);
  EXPECT_GT(locked.retry_after_s, 0);
  EXPECT_FALSE(locked.audit);
  EXPECT_EQ(gate.admit(admin, "5.6.7.8", Role::kViewer).status, 0);
}

}  // namespace
}  // namespace sluice::auth
