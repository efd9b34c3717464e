#include "core/store/pg/pg_connection.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
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
  // Defaults first, the URL last: what the URL says wins. Dead peers are found by TCP keepalives
  // and unacknowledged writes time out; a server that accepts but never answers is bounded by
  // exec's own timeout.
  // The server bounds its side too: a statement, a lock wait, a transaction left open by a
  // client that went away. Notices ("relation already exists, skipping") stay in its log.
  const char* keys[] = {"connect_timeout",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "options",
                        "dbname",
                        nullptr};
  const char* values[] = {"5",
                          "5",
                          "2",
                          "3",
                          "10000",
                          "-c statement_timeout=10000 -c lock_timeout=10000 "
                          "-c idle_in_transaction_session_timeout=30000 "
                          "-c client_min_messages=warning",
                          url.c_str(),
                          nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) return Error{ErrorKind::kUnavailable, "out of memory connecting", {}};
  std::unique_ptr<Connection> conn(new Connection(c));
  if (!conn->up()) {
    return Error{ErrorKind::kUnavailable,
                 "cannot connect to PostgreSQL at " + redactUrl(url) + ": " + conn->lastError(),
                 {}};
  }
  return conn;
}

bool Connection::ensureUp() {
  if (up()) return true;
  timed_out_ = false;
  PQreset(conn_);
  return up();
}

std::string Connection::lastError() const {
  if (timed_out_) {
    return "no answer from the server within " + std::to_string(kStatementTimeout.count()) + " ms";
  }
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
  if (timed_out_ ||
      PQsendQueryParams(conn_, sql, static_cast<int>(params.size()), nullptr, values.data(),
                        lengths.data(), formats.data(), binary_result ? 1 : 0) == 0) {
    return Rows(nullptr);
  }
  return collect();
}

Rows Connection::script(const char* sql) {
  if (timed_out_ || PQsendQuery(conn_, sql) == 0) return Rows(nullptr);
  return collect();
}

Rows Connection::collect() {
  const auto deadline = std::chrono::steady_clock::now() + kStatementTimeout;
  PGresult* kept = nullptr;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd fd{PQsocket(conn_), POLLIN, 0};
      const int ready = left.count() > 0 ? ::poll(&fd, 1, static_cast<int>(left.count())) : 0;
      if (ready == 0) {
        timed_out_ = true;  // the connection is given up: the pool drops it
        PQclear(kept);
        return Rows(nullptr);
      }
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0 || PQconsumeInput(conn_) == 0) break;  // lost: PQgetResult says so
    }
    PGresult* r = PQgetResult(conn_);
    if (r == nullptr) break;
    const auto status = PQresultStatus(r);
    const bool failed = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
    const bool kept_failed = kept != nullptr && PQresultStatus(kept) != PGRES_COMMAND_OK &&
                             PQresultStatus(kept) != PGRES_TUPLES_OK;
    if (kept_failed && !failed) {
      PQclear(r);  // keep the first error
    } else {
      PQclear(kept);
      kept = r;
    }
    if (PQstatus(conn_) != CONNECTION_OK) break;
  }
  return Rows(kept);
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

std::string redactUrl(std::string_view in) {
  // ?password=... (or &password=...) first, then user:password@.
  std::string text(in);
  for (size_t at = text.find("password="); at != std::string::npos;
       at = text.find("password=", at + 1)) {
    if (at > 0 && text[at - 1] != '?' && text[at - 1] != '&') continue;
    const size_t from = at + 9;
    const size_t to = std::min(text.find('&', from), text.size());
    text.replace(from, to - from, "***");
  }
  std::string_view url = text;
  // scheme://user:password@host... -> scheme://user:***@host...
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const auto at = url.find('@', scheme + 3);
  if (at == std::string_view::npos) return std::string(url);
  const auto colon = url.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

std::string arrayLiteral(const std::vector<std::string>& items, bool quote) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    if (!quote) {
      out += items[i];
      continue;
    }
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace sluice::pg
