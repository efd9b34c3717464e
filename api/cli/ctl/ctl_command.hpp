// `sluice ctl ...`: a kubectl-like client of a running server's REST API (docs/cli.md), and
// `sluice completion bash`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sluice::cli {

/// Adds the `ctl` and `completion` subcommands to `app`; returns a function that runs the one
/// chosen (its exit status: 0 done, 1 the API refused or could not be reached, 2 bad usage or
/// input), else -1, to be called after parsing.
std::function<int()> addCtlCommand(CLI::App& app);

}  // namespace sluice::cli
