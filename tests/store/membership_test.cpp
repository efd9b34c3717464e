// Cluster membership against a real PostgreSQL: leases renewed on the server's clock, one
// leader among nodes and a new one when it goes, and the self-fence when the server stops
// answering (SIGSTOP), lifted when it answers again.
#include "core/cluster/membership.hpp"

#include <gtest/gtest.h>

#include <atomic>

#include "core/store/store_factory.hpp"
#include "fakes/pg_server.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using cluster::Membership;

std::unique_ptr<Store> openPg(const std::string& url) {
  auto s = openStore(url, SLUICE_TEST_TMP);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? std::move(s.value()) : nullptr;
}

bool aliveIn(Store& store, const std::string& id) {
  auto nodes = store.listNodes();
  if (!nodes.ok()) return false;
  for (const auto& n : nodes.value()) {
    if (n.node_id == id) return n.alive;
  }
  return false;
}

TEST(Membership, OneLeaderAmongNodesAndANewOneWhenItGoes) {
  const std::string url = PgServer::shared().freshDatabase("leader");
  auto store_a = openPg(url);
  auto store_b = openPg(url);
  ASSERT_TRUE(store_a && store_b);
  auto a = std::make_unique<Membership>(*store_a,
                                        cluster::MembershipOptions{"a:1", "http://a:1", 600ms});
  auto b = std::make_unique<Membership>(*store_b,
                                        cluster::MembershipOptions{"b:2", "http://b:2", 600ms});
  ASSERT_TRUE(a->renewNow());
  ASSERT_TRUE(b->renewNow());
  EXPECT_TRUE(aliveIn(*store_b, "a:1"));
  EXPECT_TRUE(aliveIn(*store_a, "b:2"));
  EXPECT_NE(a->view().leader, b->view().leader) << "exactly one leads";
  // The leader leaves (its process, its sessions): the other leads within a few renewals.
  const bool a_leads = a->view().leader;
  auto& leader = a_leads ? a : b;
  auto& leader_store = a_leads ? store_a : store_b;
  Membership& follower = a_leads ? *b : *a;
  Store& follower_store = a_leads ? *store_b : *store_a;
  const std::string gone = leader->options().node_id;
  leader.reset();
  leader_store.reset();
  EXPECT_TRUE(waitFor([&] { return follower.view().leader; }, 10s));
  EXPECT_FALSE(aliveIn(follower_store, gone)) << "a clean exit removes the node";
}

TEST(Membership, ANodeThatCannotRenewFencesItselfAtHalfTheTtl) {
  auto server = PgServer::startPrivate("fence");
  auto store = openPg(server->freshDatabase("fence"));
  ASSERT_TRUE(store);
  std::atomic<int> fenced{0}, unfenced{0};
  cluster::MembershipCallbacks callbacks;
  callbacks.fence = [&](const std::string&) { ++fenced; };
  callbacks.unfence = [&] { ++unfenced; };
  Membership m(*store, {"n:1", "http://n:1", 1000ms}, callbacks);
  ASSERT_TRUE(m.renewNow());
  EXPECT_FALSE(m.view().fenced);
  server->pause();  // accepts, never answers: the renewal blocks
  EXPECT_TRUE(waitFor([&] { return fenced.load() == 1; }, 10s));
  EXPECT_TRUE(m.view().fenced);
  EXPECT_EQ(fenced.load(), 1) << "once per episode";
  server->resume();
  EXPECT_TRUE(waitFor([&] { return unfenced.load() == 1; }, 20s));
  EXPECT_FALSE(m.view().fenced);
  EXPECT_EQ(fenced.load(), 1);
  EXPECT_TRUE(aliveIn(*store, "n:1"));
}

}  // namespace
}  // namespace sluice::test
