#include "core/store/store_factory.hpp"

#include "core/store/pg/pg_store.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice {

namespace {

constexpr std::string_view kSqlitePrefix = "sqlite:";

std::filesystem::path sqliteFile(const std::string& url, const std::filesystem::path& data_dir) {
  const std::filesystem::path dir =
      url.empty() ? data_dir : std::filesystem::path(url.substr(kSqlitePrefix.size()));
  return dir / "sluice.db";
}

bool isSqlite(const std::string& url) { return url.empty() || url.rfind(kSqlitePrefix, 0) == 0; }

}  // namespace

Result<std::unique_ptr<Store>> openStore(const std::string& url,
                                         const std::filesystem::path& data_dir, bool engine) {
  if (pg::isPostgresUrl(url)) {
    auto store = PgStore::open(url);
    if (!store.ok()) return store.error();
    return std::unique_ptr<Store>(std::move(store.value()));
  }
  if (!isSqlite(url) || url == kSqlitePrefix) {
    return Error{ErrorKind::kInvalid,
                 "unknown store '" + pg::redactUrl(url) +
                     "': use sqlite:DIR or postgresql://user@host:port/database",
                 {}};
  }
  const auto file = sqliteFile(url, data_dir);
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) {
    return Error{ErrorKind::kInternal,
                 "cannot create " + file.parent_path().string() + ": " + ec.message(),
                 {}};
  }
  auto store = SqliteStore::open(file.string(), /*fold_journal=*/engine);
  if (!store.ok()) return store.error();
  return std::unique_ptr<Store>(std::move(store.value()));
}

std::string describeStore(const std::string& url, const std::filesystem::path& data_dir) {
  if (pg::isPostgresUrl(url)) return pg::redactUrl(url);
  return "sqlite:" + sqliteFile(url, data_dir).string();
}

bool isSharedStore(const std::string& url) { return pg::isPostgresUrl(url); }

}  // namespace sluice
