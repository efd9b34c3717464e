// `sluice migrate --from URL --to URL`: copies a whole store into another, e.g. a single node's
// SQLite file into the PostgreSQL server of a cluster.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace sluice::cli {

/// Adds the `migrate` subcommand to `app`; returns a function that runs it when it was chosen
/// (its exit status, else -1), to be called after parsing.
std::function<int()> addMigrateCommand(CLI::App& app);

}  // namespace sluice::cli
