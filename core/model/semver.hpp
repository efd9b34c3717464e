// Semantic versions of flow types (major.minor.patch) and the pins a configuration's `type` may
// carry: "ticker" (newest), "ticker@1" (newest 1.x), "ticker@1.2" (newest 1.2.x), "ticker@1.2.0".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

struct SemVer {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint32_t patch = 0;
  auto operator<=>(const SemVer&) const = default;
  std::string str() const;
};

/// "1.2.3" (three decimal numbers, each at most 9 digits); nothing else.
std::optional<SemVer> parseSemVer(std::string_view text);

/// What a configuration's `type` asks for.
struct TypePin {
  std::string name;
  int parts = 0;  // how many of major, minor, patch are pinned (0 = any version)
  SemVer version;
  bool matches(const SemVer& v) const;
  std::string str() const;  // as written: name, name@1, name@1.2 or name@1.2.3
};

/// Parses "name", "name@1", "name@1.2" or "name@1.2.3"; nullopt (with *error) otherwise.
std::optional<TypePin> parseTypePin(std::string_view text, std::string* error);

}  // namespace sluice
