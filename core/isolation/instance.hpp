// One plugin instance of a flow, whatever runs it: the engine's own process ("thread"
// isolation) or a host process of its own ("process" isolation). FlowRuntime calls the hooks
// through this interface, one at a time on its strand (run on the flow's dedicated thread).
//
// Life of an instance: make*Instance() prepares it (a process instance spawns its host), then
// create() runs the plugin's create hook, the other hooks follow, and destroy() runs the destroy
// hook. create and destroy are ordinary calls so that the flow's deadlines cover them like any
// other hook (and can kill() them).
#pragma once

#include <sluice/plugin.h>

#include <functional>
#include <memory>
#include <string>

#include "core/plugins/plugin_registry.hpp"

namespace sluice {

class Instance {
 public:
  /// Calls destroy() when it was not called; never joins a thread that may be the caller's.
  virtual ~Instance() = default;
  /// Runs the create hook. Called once, before any other hook.
  virtual int32_t create(sluice_error* err) = 0;
  /// Runs the destroy hook once create succeeded (a process instance's host then exits; it is
  /// killed when it does not within a bound). Idempotent. SLUICE_ERROR when the hook threw or
  /// its host died running it.
  virtual int32_t destroy(sluice_error* err) = 0;
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

/// The host table of an instance. Shared: a thread of the engine that serves the instance (the
/// host reactor) may outlive the Instance object and keeps the table alive.
using HostTable = std::shared_ptr<const sluice_host>;

/// An instance in this process; create() calls the type's create hook.
std::shared_ptr<Instance> makeInProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                HostTable host, std::string config_json);

struct ProcessOptions {
  std::string host_executable;   // the sluice binary, run with --flow-host
  uint32_t memory_limit_mb = 0;  // 0 = none; checked on the host's resident memory
};

/// Spawns the host process of an instance; create() then runs the create hook in it. Nothing
/// (and why in *error) when the host cannot be started. `on_death` is called from the host
/// reactor's thread when the host dies while no hook is running: it must not destroy the instance
/// synchronously (post the work elsewhere); it may drop the last reference to it safely.
std::shared_ptr<Instance> makeProcessInstance(const std::shared_ptr<const FlowType>& type,
                                              HostTable host, std::string config_json,
                                              const ProcessOptions& options,
                                              std::function<void(const std::string&)> on_death,
                                              std::string* error);

/// make*Instance() and create() in one call (benchmarks, tests): nothing and the hook's error
/// when create fails. `host` is borrowed and must outlive the instance.
std::shared_ptr<Instance> createInProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                  const sluice_host* host,
                                                  const std::string& config_json,
                                                  std::string* error);
std::shared_ptr<Instance> createProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                const sluice_host* host,
                                                const std::string& config_json,
                                                const ProcessOptions& options,
                                                std::function<void(const std::string&)> on_death,
                                                std::string* error);

/// The --flow-host mode of the sluice binary: serves one plugin instance over `fd`.
int runFlowHost(int fd);

}  // namespace sluice
