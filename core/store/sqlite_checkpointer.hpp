// Checkpoints of a SQLite database in WAL mode, on a thread of their own.
//
// SQLite's automatic checkpoint runs inside the commit that grows the log past its threshold:
// the transaction of a command that sets 100,000 desired states also copied the whole log into
// the database and synced it, on the request's path. Here the store's connection does no
// checkpoints (wal_autocheckpoint=0); its commits report the log's size (sqlite3_wal_hook), and
// past the threshold this thread checkpoints through a second connection, PASSIVE: it never
// waits for, nor blocks, the store's readers and writers.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace sluice {

class SqliteCheckpointer {
 public:
  /// SQLite's own default threshold: 1000 pages of log.
  static constexpr int kDefaultPages = 1000;
  /// Takes over the checkpoints of `db` (the store's connection, open on `path` in WAL mode).
  /// Nothing when a second connection cannot be opened: `db` then keeps SQLite's automatic
  /// checkpoints.
  static std::unique_ptr<SqliteCheckpointer> attach(sqlite3* db, const std::string& path,
                                                    int pages = kDefaultPages);
  /// Gives the checkpoints back to `db` (so that its own close checkpoints the rest) and stops.
  ~SqliteCheckpointer();
  SqliteCheckpointer(const SqliteCheckpointer&) = delete;
  SqliteCheckpointer& operator=(const SqliteCheckpointer&) = delete;

  /// Checkpoints so far that copied pages of the log into the database.
  uint64_t checkpoints() const;

 private:
  SqliteCheckpointer(sqlite3* store_db, sqlite3* own_db, int pages);
  static int onCommit(void* self, sqlite3* db, const char* name, int pages);
  void run();

  sqlite3* const store_db_;
  sqlite3* const db_;  // this thread's connection
  const int pages_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool due_ = false;          // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  uint64_t checkpoints_ = 0;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice
