#include "core/cluster/assignment.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

namespace sluice::cluster {

namespace {

uint64_t fnv1a(const std::string& s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

uint64_t rendezvousWeight(const std::string& flow, const std::string& node) {
  return mix(fnv1a(node, fnv1a(flow) ^ 0x9e3779b97f4a7c15ULL));
}

std::unordered_map<std::string, std::string> assignFlows(const std::vector<std::string>& flows,
                                                         const std::vector<std::string>& nodes,
                                                         const AssignmentOptions& options) {
  std::unordered_map<std::string, std::string> owner;
  if (nodes.empty() || flows.empty()) return owner;
  std::vector<std::string> sorted_nodes = nodes;
  std::sort(sorted_nodes.begin(), sorted_nodes.end());
  sorted_nodes.erase(std::unique(sorted_nodes.begin(), sorted_nodes.end()), sorted_nodes.end());
  const size_t n = sorted_nodes.size();
  // Flows in the order of their own hash (ties by id), each once: independent of the input's
  // order.
  std::vector<std::pair<uint64_t, const std::string*>> order;
  order.reserve(flows.size());
  for (const auto& f : flows) order.emplace_back(mix(fnv1a(f)), &f);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : *a.second < *b.second;
  });
  order.erase(std::unique(order.begin(), order.end(),
                          [](const auto& a, const auto& b) { return *a.second == *b.second; }),
              order.end());
  const auto capacity = static_cast<size_t>(std::ceil(
      static_cast<double>(order.size()) / static_cast<double>(n) * (1.0 + options.slack)));
  std::vector<size_t> load(n, 0);
  std::vector<std::pair<uint64_t, size_t>> ranked(n);
  owner.reserve(flows.size());
  for (const auto& [hash, flow] : order) {
    for (size_t i = 0; i < n; ++i) ranked[i] = {rendezvousWeight(*flow, sorted_nodes[i]), i};
    std::sort(ranked.begin(), ranked.end(), std::greater<>());
    for (const auto& [weight, i] : ranked) {
      if (load[i] < capacity) {
        ++load[i];
        owner.emplace(*flow, sorted_nodes[i]);
        break;
      }
    }
  }
  return owner;
}

}  // namespace sluice::cluster
