// One plugin instance of a flow, whatever runs it: the engine's own process ("thread"
// isolation) or a host process of its own ("process" isolation). FlowRuntime calls the hooks
// through this interface, one at a time on its strand (run on the flow's dedicated thread).
#pragma once

#include <sluice/plugin.h>

#include <functional>
#include <memory>
#include <string>

#include "core/plugins/plugin_registry.hpp"

namespace sluice {

class Instance {
 public:
  /// Destroying an Instance calls the plugin's destroy hook (or ends its host process).
  virtual ~Instance() = default;
  virtual int32_t start(sluice_error* err) = 0;
  virtual int32_t stop(int32_t mode, sluice_error* err) = 0;
  virtual int32_t pause(sluice_error* err) = 0;   // SLUICE_OK when the type has no pause hook
  virtual int32_t resume(sluice_error* err) = 0;  // SLUICE_OK when the type has no resume hook
  virtual int32_t step(uint32_t* next_delay_ms, sluice_error* err) = 0;
  virtual int32_t reconfigure(const std::string& config_json, sluice_error* err) = 0;
  virtual int32_t run(sluice_error* err) = 0;
  virtual bool canReconfigure() const = 0;
  /// Ends plugin code that does not return, when the isolation allows it (process: SIGKILL of
  /// the host). Any thread. Returns false when it cannot (thread isolation).
  virtual bool kill() { return false; }
};

/// Creates the instance in this process through the type's create hook; nothing (and the
/// hook's error in *error) when it fails. `host` must outlive the instance.
std::shared_ptr<Instance> createInProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                  const sluice_host* host,
                                                  const std::string& config_json,
                                                  std::string* error);

struct ProcessOptions {
  std::string host_executable;   // the sluice binary, run with --flow-host
  uint32_t memory_limit_mb = 0;  // 0 = none; checked on the host's resident memory
};

/// Creates the instance in a host process of its own. `on_death` is called (from an engine
/// thread) when the host dies while no hook is running, with a description of how it died.
std::shared_ptr<Instance> createProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                const sluice_host* host,
                                                const std::string& config_json,
                                                const ProcessOptions& options,
                                                std::function<void(const std::string&)> on_death,
                                                std::string* error);

/// The --flow-host mode of the sluice binary: serves one plugin instance over `fd`.
int runFlowHost(int fd);

}  // namespace sluice
