// `sluice plugin new NAME [--dir DIR]`: scaffolds an out-of-tree plugin project (CMake with
// find_package(Sluice), a flow type with a schema, a harness test, a README).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sluice::cli {

/// Adds the `plugin` subcommand to `app`; returns a function that runs it when it was chosen
/// (its exit status, else -1), to be called after parsing.
std::function<int()> addPluginCommand(CLI::App& app);

}  // namespace sluice::cli
