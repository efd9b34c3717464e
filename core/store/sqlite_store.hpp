// Store on an embedded SQLite database (WAL, synchronous=FULL).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/store/store.hpp"

struct sqlite3;

namespace sluice {

class SqliteStore final : public Store {
 public:
  /// Opens (creating when needed) the database at `path`.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  Result<std::vector<StoredFlow>> loadAll() override;
  Result<std::vector<Incarnation>> insertFlows(const std::vector<StoredFlow>& flows) override;
  Result<Done> updateFlow(const std::string& id, Incarnation inc,
                          const std::string& record_json) override;
  Result<Done> deleteFlow(const std::string& id) override;
  Result<Done> deleteState(Incarnation inc) override;
  Result<Done> setDesired(const std::vector<std::pair<std::string, Desired>>& states) override;
  Result<std::optional<std::string>> stateGet(Incarnation inc, const std::string& key) override;
  Result<Done> statePut(Incarnation inc, const std::string& key, const std::string& value) override;
  Result<Done> stateDelete(Incarnation inc, const std::string& key) override;

 private:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  Error sqlError(const std::string& what) const;
  bool exec(const char* sql);
  /// BEGIN IMMEDIATE, `body`, COMMIT; rolls back and returns the error (`what`) when `body`
  /// returns false or the commit fails. Callers hold mu_.
  Result<Done> inTransaction(const char* what, const std::function<bool()>& body);

  std::mutex mu_;  // serializes every use of db_
  sqlite3* db_;    // guarded by mu_
};

}  // namespace sluice
