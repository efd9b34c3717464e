// A libpq connection and its results, released on every path. Shared by the PgStore's files.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/errors.hpp"

namespace sluice::pg {

/// One parameter of a query: text, or bytes sent as binary (bytea), or NULL.
struct Param {
  Param() = default;                                     // NULL
  Param(std::string text) : value(std::move(text)) {}    // NOLINT(google-explicit-constructor)
  Param(const char* text) : value(std::string(text)) {}  // NOLINT(google-explicit-constructor)
  Param(int64_t n) : value(std::to_string(n)) {}         // NOLINT(google-explicit-constructor)
  static Param bytes(std::string b) {
    Param p(std::move(b));
    p.binary = true;
    return p;
  }
  std::optional<std::string> value;
  bool binary = false;
};

/// The result of one statement. ok() when the server ran it; otherwise sqlState() names why
/// (e.g. "23505", a unique violation), or is empty when the connection failed.
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r, PQclear) {}
  bool ok() const {
    const auto s = PQresultStatus(r_.get());
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
  }
  int size() const { return PQntuples(r_.get()); }
  bool isNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col),
                       static_cast<size_t>(PQgetlength(r_.get(), row, col)));
  }
  int64_t int64(int row, int col) const { return std::stoll(text(row, col)); }
  /// Rows changed by an INSERT, UPDATE or DELETE.
  uint64_t affected() const;
  std::string sqlState() const;
  std::string message() const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

/// One connection to the server. Not thread-safe: the store hands each to one caller at a time.
class Connection {
 public:
  /// Connects; an error (kUnavailable) naming the server's answer when it cannot.
  static Result<std::unique_ptr<Connection>> open(const std::string& url);
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs one statement with parameters ($1, $2...). `binary_result`: columns come back as raw
  /// bytes (for bytea), integers then unreadable as text. Bounded by kStatementTimeout: a server
  /// that stops answering (stopped, partitioned) leaves the connection broken, never a caller
  /// waiting for ever.
  Rows exec(const char* sql, const std::vector<Param>& params = {}, bool binary_result = false);
  /// Runs several statements without parameters (a migration's text), with the same bound.
  Rows script(const char* sql);
  /// Whether the connection is up; reconnects once when it is not.
  bool ensureUp();
  bool up() const { return !timed_out_ && PQstatus(conn_) == CONNECTION_OK; }
  std::string lastError() const;
  PGconn* get() const { return conn_; }

  static constexpr std::chrono::milliseconds kStatementTimeout{10'000};

 private:
  explicit Connection(PGconn* c) : conn_(c) {}
  /// Waits for the results of the query just sent; the last one (the first error, if any).
  Rows collect();
  PGconn* conn_;
  bool timed_out_ = false;
};

/// The error of a failed statement: kUnavailable when the connection is gone, kInternal else.
Error errorOf(const Rows& rows, const Connection& conn, const std::string& what);

/// Whether `url` names a PostgreSQL server (postgresql:// or postgres://).
bool isPostgresUrl(std::string_view url);
/// The URL without its password, for logs and errors.
std::string redactUrl(std::string_view url);

/// A PostgreSQL array literal of `items` ({"a","b"}), each quoted and escaped when `quote`
/// (text), as they are otherwise (numbers).
std::string arrayLiteral(const std::vector<std::string>& items, bool quote = true);

}  // namespace sluice::pg
