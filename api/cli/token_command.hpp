// `sluice token create|list|revoke`: token management on the data directory, with or without a
// running server (a running server sees the change on its next request).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sluice::cli {

/// Adds the `token` subcommand to `app`; returns a function that runs it when it was chosen
/// (its exit status), to be called after parsing.
std::function<int()> addTokenCommand(CLI::App& app);

}  // namespace sluice::cli
