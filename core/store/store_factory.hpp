// Opens the store a URL names: `sqlite:DIR` (the embedded file DIR/sluice.db; the default, in
// the data directory) or `postgresql://...` (a shared PostgreSQL server, for a cluster).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/store/store.hpp"

namespace sluice {

/// `url` empty: SQLite in `data_dir`. kInvalid when the URL names no known backend.
/// `engine`: the engine's own store, which folds SQLite's journal (core/store/sqlite_journal.cpp);
/// a tool's (the token CLI, migrate) leaves that to the engine.
Result<std::unique_ptr<Store>> openStore(const std::string& url,
                                         const std::filesystem::path& data_dir,
                                         bool engine = false);

/// What a URL names, for logs: the SQLite file, or the PostgreSQL URL without its password.
std::string describeStore(const std::string& url, const std::filesystem::path& data_dir);

/// Whether the URL names a shared server (whose tokens and flows other processes change).
bool isSharedStore(const std::string& url);

}  // namespace sluice
