// Rendezvous hashing with a load bound: even counts, about 1/N moved when a node joins or
// leaves, and a result that depends only on the sets of flows and nodes.
#include "core/cluster/assignment.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace sluice::cluster {
namespace {

std::vector<std::string> flowIds(size_t n) {
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i) ids.push_back("flow-" + std::to_string(i));
  return ids;
}

std::map<std::string, size_t> counts(const std::unordered_map<std::string, std::string>& a) {
  std::map<std::string, size_t> c;
  for (const auto& [flow, node] : a) ++c[node];
  return c;
}

size_t moved(const std::unordered_map<std::string, std::string>& before,
             const std::unordered_map<std::string, std::string>& after) {
  size_t n = 0;
  for (const auto& [flow, node] : after) n += before.at(flow) != node;
  return n;
}

TEST(Assignment, CountsStayWithinTenPercentOfEven) {
  const auto flows = flowIds(10000);
  for (size_t nodes = 1; nodes <= 3; ++nodes) {
    std::vector<std::string> ids;
    for (size_t i = 0; i < nodes; ++i) ids.push_back("node-" + std::to_string(i));
    auto a = assignFlows(flows, ids);
    ASSERT_EQ(a.size(), flows.size());
    const double even = 10000.0 / static_cast<double>(nodes);
    for (const auto& [node, count] : counts(a)) {
      EXPECT_LE(std::abs(static_cast<double>(count) - even), 0.10 * even) << node << " " << count;
    }
  }
}

TEST(Assignment, AJoinOrALeaveMovesAboutOneNth) {
  const auto flows = flowIds(10000);
  const std::vector<std::string> three = {"a:5000", "b:5000", "c:5000"};
  const std::vector<std::string> four = {"a:5000", "b:5000", "c:5000", "d:5000"};
  const auto before = assignFlows(flows, three);
  const auto joined = assignFlows(flows, four);
  // A fourth node should take a quarter; every move is onto it, give or take the load bound.
  const size_t onto_new = counts(joined)["d:5000"];
  EXPECT_NEAR(static_cast<double>(onto_new), 2500.0, 250.0);
  EXPECT_LE(moved(before, joined), static_cast<size_t>(10000 * (0.25 + 0.05)));
  // A node leaving: its flows move, and only about as many more.
  const std::vector<std::string> two = {"a:5000", "c:5000"};
  const auto left = assignFlows(flows, two);
  const size_t on_b = counts(before)["b:5000"];
  EXPECT_LE(moved(before, left), on_b + 10000 / 20) << "on b before: " << on_b;
  for (const auto& [flow, node] : left) EXPECT_NE(node, "b:5000");
}

TEST(Assignment, DependsOnlyOnTheSets) {
  auto flows = flowIds(500);
  std::vector<std::string> nodes = {"n1", "n2", "n3"};
  const auto a = assignFlows(flows, nodes);
  std::mt19937 rng(7);
  std::shuffle(flows.begin(), flows.end(), rng);
  std::reverse(nodes.begin(), nodes.end());
  flows.push_back(flows.front());  // a duplicate changes nothing
  EXPECT_EQ(assignFlows(flows, nodes), a);
}

TEST(Assignment, NoNodesOrNoFlows) {
  EXPECT_TRUE(assignFlows(flowIds(3), {}).empty());
  EXPECT_TRUE(assignFlows({}, {"n"}).empty());
  auto one = assignFlows(flowIds(3), {"n"});
  EXPECT_EQ(one.size(), 3u);
}

}  // namespace
}  // namespace sluice::cluster
