// The engine's helper processes run the engine's own executable: a flow's host process
// (`--flow-host FD`, process isolation), the host spawner (`--flow-zygote FD`) and the plugin
// scanner (`--scan-plugin FILE`). A program that embeds the engine calls runHelperMode first
// thing in main() (docs/embedding.md).
#pragma once

#include <optional>

namespace sluice {

/// When this process was started as one of the engine's helpers, runs it and returns its exit
/// status; otherwise nullopt (a normal start: go on).
std::optional<int> runHelperMode(int argc, char** argv);

}  // namespace sluice
