// One suite, both backends: node leases on the store's clock, leaving, and one leader.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fakes/store_fixture.hpp"

namespace sluice::test {
namespace {

class ClusterConformance : public StoreConformance {};

const NodeRecord* find(const std::vector<NodeRecord>& nodes, const std::string& id) {
  for (const auto& n : nodes) {
    if (n.node_id == id) return &n;
  }
  return nullptr;
}

TEST_P(ClusterConformance, LeasesRunOutByTheStoresClock) {
  auto until = store_->renewNodeLease("a:1", "http://a:1", 1000, 400, true);
  ASSERT_TRUE(until.ok()) << until.error().message;
  ASSERT_TRUE(store_->renewNodeLease("b:2", "http://b:2", 2000, 60000, false).ok());
  auto nodes = store_->listNodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes.value().size(), 2u);
  const NodeRecord* a = find(nodes.value(), "a:1");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->url, "http://a:1");
  EXPECT_EQ(a->started_ms, 1000);
  EXPECT_TRUE(a->leader);
  EXPECT_EQ(a->lease_until_ms, until.value());
  EXPECT_EQ(a->lease_until_ms - a->heartbeat_ms, 400);
  // Not renewed, a's lease runs out; b's does not.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool lapsed = false;
  while (!lapsed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    lapsed = !find(store_->listNodes().value(), "a:1")->alive;
  }
  EXPECT_TRUE(lapsed);
  EXPECT_TRUE(find(store_->listNodes().value(), "b:2")->alive);
  // Renewed, it is alive again; leaving removes it.
  ASSERT_TRUE(store_->renewNodeLease("a:1", "http://a:1", 1000, 60000, false).ok());
  EXPECT_TRUE(find(store_->listNodes().value(), "a:1")->alive);
  EXPECT_FALSE(find(store_->listNodes().value(), "a:1")->leader);
  ASSERT_TRUE(store_->leaveCluster("a:1").ok());
  EXPECT_EQ(find(store_->listNodes().value(), "a:1"), nullptr);
  EXPECT_EQ(store_->listNodes().value().size(), 1u);
}

TEST_P(ClusterConformance, OneLeaderAtATime) {
  auto first = store_->holdLeadership();
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first.value());
  EXPECT_TRUE(store_->holdLeadership().value()) << "kept while held";
  auto other = open();
  ASSERT_NE(other, nullptr);
  if (GetParam() == "sqlite") {
    EXPECT_TRUE(other->holdLeadership().value()) << "a SQLite store is one node, which leads";
    return;
  }
  EXPECT_FALSE(other->holdLeadership().value()) << "another process holds it";
  // The leader's process goes away (its sessions with it): the other one takes over.
  store_.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool took = false;
  while (!took && std::chrono::steady_clock::now() < deadline) {
    took = other->holdLeadership().value();
    if (!took) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(took);
}

INSTANTIATE_TEST_SUITE_P(Backends, ClusterConformance, ::testing::Values("sqlite", "postgresql"),
                         backendName);

}  // namespace
}  // namespace sluice::test
