// Durations as Sluice writes them everywhere (the CLI, configurations): "500ms", "10s", "5m",
// "2h", "30d". Header-only, shared by the engine and by plugins (a flow's "timeout": "10m").
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::sdk {

inline constexpr std::array<std::pair<std::string_view, int64_t>, 5> kDurationUnits{{
    {"ms", 1},
    {"s", 1'000},
    {"m", 60'000},
    {"h", 3'600'000},
    {"d", 86'400'000},
}};

/// Parses "<digits><unit>" with unit ms, s, m, h or d; nothing on any other text or overflow.
inline std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  for (const auto& [name, ms] : kDurationUnits) {
    if (unit != name) continue;
    int64_t value = 0;
    for (size_t i = 0; i < digits; ++i) value = value * 10 + (text[i] - '0');
    if (value > std::numeric_limits<int64_t>::max() / ms) return std::nullopt;
    return std::chrono::milliseconds(value * ms);
  }
  return std::nullopt;
}

/// The shortest exact spelling of `d` in the same units ("1500ms", "10s", "2h").
inline std::string formatDuration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  for (size_t i = kDurationUnits.size(); i-- > 1;) {
    if (ms != 0 && ms % kDurationUnits[i].second == 0) {
      return std::to_string(ms / kDurationUnits[i].second) + std::string(kDurationUnits[i].first);
    }
  }
  return std::to_string(ms) + "ms";
}

}  // namespace sluice::sdk
