// Opens the store a URL names: `sqlite:DIR` (the embedded file DIR/sluice.db; the default, in
// the data directory) or `postgresql://...` (a shared PostgreSQL server, for a cluster).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/store/store.hpp"

namespace sluice {

/// `url` empty: SQLite in `data_dir`. kInvalid when the URL names no known backend.
Result<std::unique_ptr<Store>> openStore(const std::string& url,
                                         const std::filesystem::path& data_dir);

/// What a URL names, for logs: the SQLite file, or the PostgreSQL URL without its password.
std::string describeStore(const std::string& url, const std::filesystem::path& data_dir);

/// Whether the URL names a shared server (whose tokens and flows other processes change).
bool isSharedStore(const std::string& url);

}  // namespace sluice
