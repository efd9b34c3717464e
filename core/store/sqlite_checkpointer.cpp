#include "core/store/sqlite_checkpointer.hpp"

#include <spdlog/spdlog.h>

namespace sluice {

std::unique_ptr<SqliteCheckpointer> SqliteCheckpointer::attach(sqlite3* db, const std::string& path,
                                                               int pages) {
  const char* file = sqlite3_db_filename(db, "main");
  if (file == nullptr || *file == '\0') return nullptr;  // in memory: no log
  sqlite3* own = nullptr;
  // A connection checkpoints nothing until it has read the database once (until then it has
  // not opened the log): the query makes it, and checks that the connection works.
  std::string failed;
  if (sqlite3_open_v2(file, &own, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
          SQLITE_OK ||
      sqlite3_exec(own, "PRAGMA busy_timeout=5000; SELECT 1 FROM sqlite_master LIMIT 1;", nullptr,
                   nullptr, nullptr) != SQLITE_OK) {
    failed = own != nullptr ? sqlite3_errmsg(own) : "cannot open a second connection";
  } else if (sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0;", nullptr, nullptr, nullptr) !=
             SQLITE_OK) {
    failed = sqlite3_errmsg(db);
  }
  if (!failed.empty()) {
    spdlog::warn("database {}: checkpoints stay in its commits: {}", path, failed);
    sqlite3_close(own);
    return nullptr;
  }
  std::unique_ptr<SqliteCheckpointer> c(new SqliteCheckpointer(db, own, pages));
  sqlite3_wal_hook(db, &SqliteCheckpointer::onCommit, c.get());
  return c;
}

SqliteCheckpointer::SqliteCheckpointer(sqlite3* store_db, sqlite3* own_db, int pages)
    : store_db_(store_db), db_(own_db), pages_(pages), thread_([this] { run(); }) {}

SqliteCheckpointer::~SqliteCheckpointer() {
  // Back to SQLite's own: the store's connection checkpoints again, and on its close.
  sqlite3_wal_hook(store_db_, nullptr, nullptr);
  sqlite3_wal_autocheckpoint(store_db_, kDefaultPages);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  sqlite3_close(db_);
}

uint64_t SqliteCheckpointer::checkpoints() const {
  std::lock_guard lock(mu_);
  return checkpoints_;
}

int SqliteCheckpointer::onCommit(void* self, sqlite3*, const char*, int pages) {
  auto* c = static_cast<SqliteCheckpointer*>(self);
  if (pages < c->pages_) return SQLITE_OK;
  {
    std::lock_guard lock(c->mu_);
    c->due_ = true;
  }
  c->cv_.notify_one();
  return SQLITE_OK;
}

void SqliteCheckpointer::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || due_; });
    if (stopping_) return;
    due_ = false;
    lock.unlock();
    int log = 0;
    int copied = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      spdlog::warn("database checkpoint failed: {}", sqlite3_errmsg(db_));
    }
    lock.lock();
    if (copied > 0) ++checkpoints_;
  }
}

}  // namespace sluice
