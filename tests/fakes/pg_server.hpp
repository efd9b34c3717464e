// A real PostgreSQL server for tests (tests/pg/pg.sh): the one ctest's `pg` fixture started for
// the whole run when there is one, else a private one for this process. Each test takes a fresh
// database of its own.
#pragma once

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>

namespace sluice::test {

class PgServer {
 public:
  /// Starts a server of its own, stopped (and removed) by the destructor.
  static std::unique_ptr<PgServer> startPrivate(const std::string& name) {
    const std::string state =
        std::string(SLUICE_TEST_TMP) + "/pg-" + name + "-" + std::to_string(::getpid()) + ".state";
    std::filesystem::create_directories(SLUICE_TEST_TMP);
    if (std::system((script() + " start " + state).c_str()) != 0) {
      throw std::runtime_error("cannot start PostgreSQL (tests/pg/pg.sh start)");
    }
    return std::unique_ptr<PgServer>(new PgServer(state, true));
  }

  /// The run's shared server: ctest's fixture's (SLUICE_TEST_TMP/pg.state), else a private one
  /// for this process.
  static PgServer& shared() {
    static std::unique_ptr<PgServer> server = [] {
      const std::string state = std::string(SLUICE_TEST_TMP) + "/pg.state";
      if (std::filesystem::exists(state)) {
        std::unique_ptr<PgServer> s(new PgServer(state, false));
        if (s->answers()) return s;
      }
      return startPrivate("shared");
    }();
    return *server;
  }

  ~PgServer() {
    if (owned_) std::system((script() + " stop " + state_).c_str());
  }
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& database) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
  }

  /// Creates a database no other test uses; its URL.
  std::string freshDatabase(const std::string& hint) {
    static std::atomic<int> counter{0};
    std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_";
    for (char c : hint) {
      if (name.size() >= 60) break;
      name +=
          std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
    }
    sql("postgres", "DROP DATABASE IF EXISTS " + name);
    sql("postgres", "CREATE DATABASE " + name);
    return url(name);
  }

  /// Runs one statement; throws when it fails.
  void sql(const std::string& database, const std::string& statement) const {
    PGconn* c = PQconnectdb(url(database).c_str());
    PGresult* r = PQexec(c, statement.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    std::string error = ok ? "" : PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error(statement + ": " + error);
  }

  /// Stops the server hard and starts it again on the same port (only a private one).
  void restart() { run("restart"); }
  /// Freezes (SIGSTOP) and thaws the server: it accepts connections and never answers.
  void pause() { run("pause"); }
  void resume() { run("resume"); }

 private:
  PgServer(std::string state, bool owned) : state_(std::move(state)), owned_(owned) {
    std::ifstream in(state_);
    std::string dir;
    in >> dir >> port_;
  }
  void run(const std::string& command) {
    if (std::system((script() + " " + command + " " + state_).c_str()) != 0) {
      throw std::runtime_error("tests/pg/pg.sh " + command + " failed");
    }
  }
  bool answers() const {
    PGconn* c = PQconnectdb(url("postgres").c_str());
    const bool ok = PQstatus(c) == CONNECTION_OK;
    PQfinish(c);
    return ok;
  }
  static std::string script() { return std::string(SLUICE_SOURCE_DIR) + "/tests/pg/pg.sh"; }

  std::string state_;
  bool owned_;
  int port_ = 0;
};

}  // namespace sluice::test
