// Entity tags: a short, stable fingerprint of a document's bytes, the same after a restart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

/// The strong entity tag of `bytes`: a quoted 64-bit FNV-1a hash, e.g. "\"9f1c0a...\"".
/// Not a cryptographic hash: it tells versions apart for caching and optimistic concurrency,
/// where whoever could forge a collision could change the flow anyway.
inline std::string contentTag(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string tag(18, '"');
  for (int i = 0; i < 16; ++i) tag[static_cast<size_t>(16 - i)] = kHex[(h >> (4 * i)) & 0xf];
  return tag;
}

/// Whether an If-Match list accepts the version tagged `current`: "*" or an equal (strong)
/// tag.
inline bool ifMatchAccepts(const std::vector<std::string>& if_match, const std::string& current) {
  for (const auto& tag : if_match) {
    if (tag == "*" || tag == current) return true;
  }
  return false;
}

}  // namespace sluice
