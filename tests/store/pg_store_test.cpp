// The PostgreSQL store against a server of its own: it reconnects when the server restarts,
// says "unavailable" when it cannot reach one, and the URL forms the factory takes.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/store/pg/pg_connection.hpp"
#include "core/store/store_factory.hpp"
#include "fakes/pg_server.hpp"

namespace sluice::test {
namespace {

TEST(PgStore, ReconnectsAfterTheServerRestarts) {
  auto server = PgServer::startPrivate("restart");
  const std::string url = server->freshDatabase("restart");
  auto opened = openStore(url, SLUICE_TEST_TMP);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& store = *opened.value();
  auto incs = store.insertFlows({{"a", "{}", Desired::kStopped}}, nullptr);
  ASSERT_TRUE(incs.ok());
  ASSERT_TRUE(store.statePut(incs.value()[0], "offset", "7").ok());
  const uint64_t changes = store.externalChanges().value();

  server->restart();  // every pooled connection is now broken

  // Reads, writes in a transaction and state writes each find a broken connection first.
  auto all = store.loadAll();
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all.value().size(), 1u);
  ASSERT_TRUE(store.insertFlows({{"b", "{}", Desired::kStopped}}, nullptr).ok());
  ASSERT_TRUE(store.setDesired({{"a", Desired::kRunning}}, nullptr).ok());
  EXPECT_EQ(*store.stateGet(incs.value()[0], "offset").value(), "7");
  EXPECT_TRUE(store.checkWritable().ok());
  // The notification listener reconnected too: what it may have missed counts as a change.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store.externalChanges().value() == changes && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(store.externalChanges().value(), changes);
  EXPECT_EQ(store.loadAll().value().size(), 2u);
}

TEST(PgStore, AnUnreachableServerIsUnavailableAndNamed) {
  auto r = openStore("postgresql://sluice:secret@127.0.0.1:1/nothing?connect_timeout=2",
                     SLUICE_TEST_TMP);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("127.0.0.1:1"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("secret"), std::string::npos) << "the password is not shown";
}

TEST(PgStore, StoreUrls) {
  EXPECT_TRUE(pg::isPostgresUrl("postgresql://h/db"));
  EXPECT_TRUE(pg::isPostgresUrl("postgres://h/db"));
  EXPECT_FALSE(pg::isPostgresUrl("sqlite:/x"));
  EXPECT_EQ(pg::redactUrl("postgresql://u:pw@h:5/db"), "postgresql://u:***@h:5/db");
  EXPECT_EQ(pg::redactUrl("postgresql://u@h/db"), "postgresql://u@h/db");
  auto bad = openStore("mysql://h/db", SLUICE_TEST_TMP);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(bad.error().message.find("sqlite:DIR or postgresql://"), std::string::npos);
  EXPECT_FALSE(openStore("sqlite:", SLUICE_TEST_TMP).ok());
  EXPECT_EQ(describeStore("", "/d"), "sqlite:/d/sluice.db");
  EXPECT_EQ(describeStore("sqlite:/e", "/d"), "sqlite:/e/sluice.db");
}

}  // namespace
}  // namespace sluice::test
