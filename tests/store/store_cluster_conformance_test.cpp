// One suite, both backends: node leases on the store's clock, leaving, and one leader.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
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
  auto node = [&](const std::string& id) -> std::optional<NodeRecord> {
    auto all = store_->listNodes();
    if (!all.ok()) return std::nullopt;
    const NodeRecord* n = find(all.value(), id);
    return n != nullptr ? std::optional<NodeRecord>(*n) : std::nullopt;
  };
  while (!lapsed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto n = node("a:1");
    ASSERT_TRUE(n.has_value());
    lapsed = !n->alive;
  }
  EXPECT_TRUE(lapsed);
  ASSERT_TRUE(node("b:2").has_value());
  EXPECT_TRUE(node("b:2")->alive);
  // Renewed, it is alive again; leaving removes it.
  ASSERT_TRUE(store_->renewNodeLease("a:1", "http://a:1", 1000, 60000, false).ok());
  ASSERT_TRUE(node("a:1").has_value());
  EXPECT_TRUE(node("a:1")->alive);
  EXPECT_FALSE(node("a:1")->leader);
  ASSERT_TRUE(store_->leaveCluster("a:1").ok());
  EXPECT_FALSE(node("a:1").has_value());
  EXPECT_EQ(store_->listNodes().value().size(), 1u);
}

TEST_P(ClusterConformance, OneLeaderAtATime) {
  auto first = store_->holdLeadership(60000);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first.value());
  EXPECT_TRUE(store_->holdLeadership(60000).value()) << "kept while held";
  auto other = open();
  ASSERT_NE(other, nullptr);
  if (GetParam() == "sqlite") {
    EXPECT_TRUE(other->holdLeadership(60000).value()) << "a SQLite store is one node, which leads";
    return;
  }
  EXPECT_FALSE(other->holdLeadership(60000).value()) << "another process holds it";
  // The leader's process goes away (its sessions with it): the other one takes over.
  store_.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool took = false;
  while (!took && std::chrono::steady_clock::now() < deadline) {
    took = other->holdLeadership(60000).value();
    if (!took) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(took);
}

INSTANTIATE_TEST_SUITE_P(Backends, ClusterConformance, ::testing::Values("sqlite", "postgresql"),
                         backendName);

}  // namespace
}  // namespace sluice::test
