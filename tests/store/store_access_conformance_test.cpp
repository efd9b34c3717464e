// One suite, both backends: tokens, the audit log, changes seen by other processes, and whole
// snapshots moved between stores (sluice migrate), through the Store interface.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fakes/audit_entries.hpp"
#include "fakes/store_fixture.hpp"

namespace sluice::test {
namespace {

class AccessConformance : public StoreConformance {};

AuditEntry entry(const std::string& path, int64_t time_ms = 1000) {
  return sampleAuditEntry(path, time_ms);
}

bool eventually(const std::function<bool()>& cond) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

TEST_P(AccessConformance, AuditAppendsPagesAndPrunes) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store_->appendAudit(entry("/p" + std::to_string(i), 1000 * (i + 1))).ok());
  }
  reopen();  // durable
  auto all = store_->listAudit(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 5u);
  EXPECT_EQ(all.value()[0].path, "/p0");
  EXPECT_EQ(all.value()[0].flow_ids, (std::vector<std::string>{"a", "b\"quoted\""}));
  EXPECT_EQ(all.value()[0].role, "editor");
  EXPECT_EQ(all.value()[0].detail, "token ci (operator)");
  EXPECT_EQ(all.value()[0].status, 201);
  auto page = store_->listAudit(all.value()[1].seq, 2);
  ASSERT_EQ(page.value().size(), 2u);
  EXPECT_EQ(page.value()[0].path, "/p2");
  EXPECT_EQ(page.value()[1].path, "/p3");
  auto pruned = store_->pruneAudit(2500);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(pruned.value(), 2u);
  EXPECT_EQ(store_->listAudit(0, 10).value().front().path, "/p2");
}

TEST_P(AccessConformance, AnAuditEntryCommitsWithItsChangeAndNotWithoutIt) {
  AuditRecord ok(entry("/flows"));
  ASSERT_TRUE(store_->insertFlows({{"a", "{}", Desired::kStopped}}, &ok).ok());
  EXPECT_TRUE(ok.written);
  AuditRecord dup(entry("/flows"));
  EXPECT_FALSE(store_->insertFlows({{"a", "{}", Desired::kStopped}}, &dup).ok());
  EXPECT_FALSE(dup.written);
  AuditRecord desired(entry("/flows/commands"));
  ASSERT_TRUE(store_->setDesired({}, &desired).ok()) << "a command that changes nothing is logged";
  EXPECT_TRUE(desired.written);
  const Incarnation inc = store_->loadAll().value()[0].incarnation;
  AuditRecord stale(entry("/flows/a"));
  EXPECT_FALSE(store_->updateFlow("a", inc + 1, "{}", &stale).ok());
  EXPECT_FALSE(stale.written);
  AuditRecord del(entry("/flows/a"));
  ASSERT_TRUE(store_->deleteFlow("a", &del).ok());
  EXPECT_TRUE(del.written);
  auto log = store_->listAudit(0, 10);
  ASSERT_EQ(log.value().size(), 3u);
  EXPECT_EQ(log.value()[0].path, "/flows");
  EXPECT_EQ(log.value()[1].path, "/flows/commands");
  EXPECT_EQ(log.value()[2].path, "/flows/a");
}

TEST_P(AccessConformance, TokensAreUniqueWhileLiveAndRevokedOnce) {
  AuditRecord audit(entry("/tokens"));
  ASSERT_TRUE(store_->insertToken({"ci", "operator", "h1", 10, 99999, std::nullopt}, &audit).ok());
  EXPECT_TRUE(audit.written);
  auto dup = store_->insertToken({"ci", "admin", "h2", 11, std::nullopt, std::nullopt}, nullptr);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().kind, ErrorKind::kConflict);
  ASSERT_TRUE(store_->revokeToken("ci", 50, nullptr).ok());
  auto again = store_->revokeToken("ci", 60, nullptr);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
  // The name is free again once its token is revoked.
  ASSERT_TRUE(
      store_->insertToken({"ci", "admin", "h3", 70, std::nullopt, std::nullopt}, nullptr).ok());
  reopen();
  auto tokens = store_->loadTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens.value().size(), 2u);
  const auto& old = tokens.value()[0];
  EXPECT_EQ(old.hash, "h1");
  EXPECT_EQ(old.role, "operator");
  EXPECT_EQ(old.created_ms, 10);
  EXPECT_EQ(old.expires_ms, std::optional<int64_t>(99999));
  EXPECT_EQ(old.revoked_ms, std::optional<int64_t>(50));
  EXPECT_FALSE(tokens.value()[1].expires_ms.has_value());
  EXPECT_FALSE(tokens.value()[1].revoked_ms.has_value());
}

TEST_P(AccessConformance, TokenChangesOfAnotherProcessAreSeen) {
  auto v0 = store_->externalChanges();
  ASSERT_TRUE(v0.ok());
  EXPECT_EQ(store_->externalChanges().value(), v0.value()) << "nothing changed";
  auto other = open();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(
      other->insertToken({"n", "viewer", "abc", 1, std::nullopt, std::nullopt}, nullptr).ok());
  EXPECT_TRUE(eventually([&] { return store_->externalChanges().value() != v0.value(); }));
  const uint64_t v1 = store_->externalChanges().value();
  ASSERT_TRUE(other->revokeToken("n", 2, nullptr).ok());
  EXPECT_TRUE(eventually([&] { return store_->externalChanges().value() != v1; }));
}

// A store with some of everything, for the snapshot tests.
void fill(Store& s) {
  auto incs = s.insertFlows({{"b", R"({"flow_id":"b","type":"ticker"})", Desired::kStopped},
                             {"a", R"({"flow_id":"a"})", Desired::kStopped},
                             {"gone", "{}", Desired::kStopped}},
                            nullptr)
                  .value();
  ASSERT_TRUE(s.setDesired({{"b", Desired::kRunning}, {"a", Desired::kPaused}}, nullptr).ok());
  ASSERT_TRUE(s.statePut(incs[0], "offset", std::string("\0\x01\xff", 3)).ok());
  ASSERT_TRUE(s.statePut(incs[1], "k", "v").ok());
  ASSERT_TRUE(s.statePut(incs[2], "k", "orphan").ok());
  ASSERT_TRUE(s.setRunRecord("b", incs[0], 7, R"({"started":1,"error":"x"})").ok());
  ASSERT_TRUE(s.setTypeVersion("b", incs[0], "2.1.0").ok());
  ASSERT_TRUE(s.deleteFlow("gone", nullptr).ok());
  ASSERT_TRUE(s.insertToken({"old", "admin", "h0", 1, std::nullopt, std::nullopt}, nullptr).ok());
  ASSERT_TRUE(s.revokeToken("old", 2, nullptr).ok());
  ASSERT_TRUE(s.insertToken({"ci", "editor", "h1", 3, 4000, std::nullopt}, nullptr).ok());
  ASSERT_TRUE(s.appendAudit(entry("/flows", 5)).ok());
  ASSERT_TRUE(s.reserveSequence("events", 1000).ok());
}

void expectFilled(Store& s) {
  auto flows = s.loadAll().value();
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0].id, "b");
  EXPECT_EQ(flows[0].record_json, R"({"flow_id":"b","type":"ticker"})");
  EXPECT_EQ(flows[0].desired, Desired::kRunning);
  EXPECT_EQ(flows[1].id, "a");
  EXPECT_EQ(flows[1].desired, Desired::kPaused);
  // The runs and the version travel; a flow that never ran has none.
  EXPECT_EQ(flows[0].runs, 7u);
  EXPECT_EQ(flows[0].last_run, R"({"started":1,"error":"x"})");
  EXPECT_EQ(flows[0].type_version, "2.1.0");
  EXPECT_EQ(flows[1].runs, 0u);
  EXPECT_EQ(flows[1].last_run, "");
  EXPECT_EQ(flows[1].type_version, "");
  EXPECT_EQ(*s.stateGet(flows[0].incarnation, "offset").value(), std::string("\0\x01\xff", 3));
  EXPECT_EQ(*s.stateGet(flows[1].incarnation, "k").value(), "v");
  auto tokens = s.loadTokens().value();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].name, "old");
  EXPECT_EQ(tokens[0].revoked_ms, std::optional<int64_t>(2));
  EXPECT_EQ(tokens[1].expires_ms, std::optional<int64_t>(4000));
  auto audit = s.listAudit(0, 10).value();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].flow_ids, (std::vector<std::string>{"a", "b\"quoted\""}));
  EXPECT_GE(s.reserveSequence("events", 1).value(), 1001u) << "ids continue, never reused";
}

TEST_P(AccessConformance, ASnapshotMovesEverythingToEitherBackend) {
  fill(*store_);
  auto snap = store_->exportAll();
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(snap.value().state.size(), 2u) << "the deleted flow's state is not part of it";
  for (const std::string backend : {"sqlite", "postgresql"}) {
    SCOPED_TRACE(GetParam() + " to " + backend);
    auto to = emptyStore(backend, "to-" + backend);
    ASSERT_NE(to, nullptr);
    auto done = to->importAll(snap.value());
    ASSERT_TRUE(done.ok()) << done.error().message;
    expectFilled(*to);
    // An imported flow's runs can still be written (it has where to keep them).
    const auto a = to->loadAll().value()[1];
    ASSERT_TRUE(to->setRunRecord("a", a.incarnation, 1, "{}").ok());
    EXPECT_EQ(to->loadAll().value()[1].runs, 1u);
    // Into a store that holds flows: refused, and nothing written.
    auto twice = to->importAll(snap.value());
    ASSERT_FALSE(twice.ok());
    EXPECT_EQ(twice.error().kind, ErrorKind::kConflict);
    EXPECT_EQ(to->loadAll().value().size(), 2u);
    EXPECT_EQ(to->listAudit(0, 10).value().size(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, AccessConformance, ::testing::Values("sqlite", "postgresql"),
                         backendName);

}  // namespace
}  // namespace sluice::test
