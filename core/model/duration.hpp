// Durations as the CLI writes them: "500ms", "10s", "5m", "2h", "30d". The parser is the SDK's
// (plugins read their "timeout" members with the same one).
#pragma once

#include <sluice/sdk/duration.hpp>

namespace sluice {

using sdk::formatDuration;
using sdk::parseDuration;

}  // namespace sluice
