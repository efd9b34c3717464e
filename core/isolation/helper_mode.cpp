#include "core/isolation/helper_mode.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>

#include "core/isolation/instance.hpp"
#include "core/isolation/zygote.hpp"
#include "core/plugins/plugin_scan.hpp"

namespace sluice {

std::optional<int> runHelperMode(int argc, char** argv) {
  if (argc != 3) return std::nullopt;
  const std::string mode = argv[1];
  if (mode == "--flow-host") {
    spdlog::set_default_logger(spdlog::stderr_color_mt("flow-host"));
    return runFlowHost(std::atoi(argv[2]));
  }
  if (mode == "--flow-zygote") {
    // The hosts it forks inherit this logger (they write to stderr under "flow-host").
    spdlog::set_default_logger(spdlog::stderr_color_mt("flow-host"));
    return runZygote(std::atoi(argv[2]), argc, argv);
  }
  if (mode == "--scan-plugin") {
    // Opens one plugin file as the engine would, in this throwaway process, and reports the
    // verdict on descriptor 3 (core/plugins/plugin_scan.hpp).
    spdlog::set_default_logger(spdlog::stderr_color_mt("plugin-scan"));
    runPluginScan(argv[2], 3);
  }
  return std::nullopt;
}

}  // namespace sluice
