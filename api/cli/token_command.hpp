// `sluice token create|list|revoke`: token management in the store, with or without a
// running server (a running server sees the change on its next request).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sluice::cli {

/// Adds the `token` subcommand to `app`; returns a function that runs it when it was chosen
/// (its exit status, else -1), to be called after parsing. `main_data_dir` is the value of the
/// top-level --data-dir, and `main_store` of --store, used when the subcommand's own are not
/// given.
std::function<int()> addTokenCommand(CLI::App& app, const std::string* main_data_dir,
                                     const std::string* main_store);

}  // namespace sluice::cli
