// Durations as the CLI writes them: "500ms", "10s", "5m", "2h", "30d".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

/// Parses "<digits><unit>" with unit ms, s, m, h or d; nothing on any other text or overflow.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

/// The shortest exact spelling of `d` in the same units ("1500ms", "10s", "2h").
std::string formatDuration(std::chrono::milliseconds d);

}  // namespace sluice
