// The subcommands of `sluice ctl`, each a function of its parsed arguments that returns the
// process's exit status (ctl_common.hpp). ctl_command.cpp defines the command line.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "api/cli/ctl/ctl_common.hpp"

namespace sluice::cli::ctl {

struct GetArgs {
  std::string kind;  // flows, flow, status, plugins, nodes
  std::string id;    // flow and (optionally) status
  std::string output = "table";
};
int runGet(const Globals& g, const GetArgs& a);  // ctl_get.cpp

struct AuditArgs {
  uint64_t after = 0;
  unsigned limit = 100;  // entries per page (the API's `limit`); every page is read
  std::string output = "table";
};
int runAudit(const Globals& g, const AuditArgs& a);  // ctl_get.cpp

struct ApplyArgs {
  std::vector<std::string> files;
  bool prune = false;
  bool dry_run = false;
};
int runApply(const Globals& g, const ApplyArgs& a);  // ctl_apply.cpp

struct FlowCommandArgs {
  std::string command;  // start, stop, pause, resume
  std::vector<std::string> ids;
  bool all = false;
  bool hard = false;  // stop only
};
int runFlowCommand(const Globals& g, const FlowCommandArgs& a);  // ctl_commands.cpp

struct DeleteArgs {
  std::vector<std::string> ids;
  bool force = false;
};
int runDelete(const Globals& g, const DeleteArgs& a);  // ctl_commands.cpp

struct ValidateArgs {
  std::vector<std::string> files;
  bool existing_ok = false;  // a flow_id that exists is no problem (apply would update it)
};
int runValidate(const Globals& g, const ValidateArgs& a);  // ctl_commands.cpp

struct WatchArgs {
  std::vector<std::string> ids;
  std::string timeout;  // empty: until Ctrl-C or SIGTERM
  uint64_t count = 0;   // 0: no limit
};
int runWatch(const Globals& g, const WatchArgs& a);  // ctl_watch.cpp

/// A bash completion script for the command `program`, generated from the whole command
/// line definition under `root` (ctl_completion.cpp).
std::string bashCompletion(const CLI::App& root, const std::string& program);

}  // namespace sluice::cli::ctl
