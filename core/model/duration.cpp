#include "core/model/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>
#include <utility>

namespace sluice {
namespace {

constexpr std::array<std::pair<std::string_view, int64_t>, 5> kUnits{{
    {"ms", 1},
    {"s", 1'000},
    {"m", 60'000},
    {"h", 3'600'000},
    {"d", 86'400'000},
}};

}  // namespace

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  for (const auto& [name, ms] : kUnits) {
    if (unit != name) continue;
    int64_t value = 0;
    for (size_t i = 0; i < digits; ++i) value = value * 10 + (text[i] - '0');
    if (value > std::numeric_limits<int64_t>::max() / ms) return std::nullopt;
    return std::chrono::milliseconds(value * ms);
  }
  return std::nullopt;
}

std::string formatDuration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  for (size_t i = kUnits.size(); i-- > 1;) {
    if (ms != 0 && ms % kUnits[i].second == 0) {
      return std::to_string(ms / kUnits[i].second) + std::string(kUnits[i].first);
    }
  }
  return std::to_string(ms) + "ms";
}

}  // namespace sluice
