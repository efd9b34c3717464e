// Config validation in a host process: the validate hooks of process-isolated flows run where
// their other hooks run, so a validate that crashes or never returns costs a host, not the
// engine or a worker.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/model/errors.hpp"

namespace sluice {

struct HostValidation {
  size_t index;         // of the spec in the request
  std::string flow_id;  // for the problems
  std::string file;     // the plugin's shared object
  std::string type;     // the flow type
  std::string config;   // the `config` member, JSON text
};

/// Runs the validate hooks of `jobs`, in order, in one host process (`host_executable
/// --flow-host`). Returns their problems (paths under /config). Past `deadline` the host is
/// killed (SIGKILL) and the job in flight and those after it get a problem saying so; a host
/// that dies is named with its signal or exit code.
std::vector<Problem> validateInHost(const std::string& host_executable,
                                    const std::vector<HostValidation>& jobs,
                                    std::chrono::steady_clock::time_point deadline,
                                    uint32_t timeout_ms);

}  // namespace sluice
