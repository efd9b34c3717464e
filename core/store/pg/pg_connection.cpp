#include "core/store/pg/pg_connection.hpp"

#include <cstring>

namespace sluice::pg {

uint64_t Rows::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return n == nullptr || *n == '\0' ? 0 : std::stoull(n);
}

std::string Rows::sqlState() const {
  const char* s = PQresultErrorField(r_.get(), PG_DIAG_SQLSTATE);
  return s == nullptr ? std::string() : std::string(s);
}

std::string Rows::message() const {
  const char* m = PQresultErrorField(r_.get(), PG_DIAG_MESSAGE_PRIMARY);
  if (m == nullptr) m = PQresultErrorMessage(r_.get());
  return m == nullptr ? std::string() : std::string(m);
}

Result<std::unique_ptr<Connection>> Connection::open(const std::string& url) {
  PGconn* c = PQconnectdb(url.c_str());
  if (c == nullptr) return Error{ErrorKind::kUnavailable, "out of memory connecting", {}};
  std::unique_ptr<Connection> conn(new Connection(c));
  if (!conn->up()) {
    return Error{ErrorKind::kUnavailable,
                 "cannot connect to PostgreSQL at " + redactUrl(url) + ": " + conn->lastError(),
                 {}};
  }
  // Notices (e.g. "relation already exists, skipping") stay in the server's log.
  conn->exec("SET client_min_messages = warning");
  return conn;
}

bool Connection::ensureUp() {
  if (up()) return true;
  PQreset(conn_);
  return up();
}

std::string Connection::lastError() const {
  std::string m = PQerrorMessage(conn_);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

Rows Connection::exec(const char* sql, const std::vector<Param>& params, bool binary_result) {
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size());
  std::vector<int> formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].value ? params[i].value->data() : nullptr;
    lengths[i] = params[i].value ? static_cast<int>(params[i].value->size()) : 0;
    formats[i] = params[i].binary ? 1 : 0;
  }
  return Rows(PQexecParams(conn_, sql, static_cast<int>(params.size()), nullptr, values.data(),
                           lengths.data(), formats.data(), binary_result ? 1 : 0));
}

Error errorOf(const Rows& rows, const Connection& conn, const std::string& what) {
  if (!conn.up()) {
    return Error{ErrorKind::kUnavailable,
                 (what.empty() ? "" : what + ": ") + "the PostgreSQL connection is lost (" +
                     conn.lastError() + ")",
                 {}};
  }
  std::string msg = rows.message();
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return Error{ErrorKind::kInternal, what.empty() ? msg : what + ": " + msg, {}};
}

bool isPostgresUrl(std::string_view url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

std::string redactUrl(std::string_view url) {
  // scheme://user:password@host... -> scheme://user:***@host...
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const auto at = url.find('@', scheme + 3);
  if (at == std::string_view::npos) return std::string(url);
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

}  // namespace sluice::pg
