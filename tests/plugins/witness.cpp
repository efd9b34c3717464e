// Test plugin `witness` (issue 10): records each run interval of a flow in PostgreSQL, so that a
// checker can prove that no flow ever ran twice at once in a cluster.
//
// It writes over a connection of its own (libpq; the URL in the SLUICE_WITNESS_STORE
// environment variable of the engine process), not through the engine's state API: the
// engine's epoch check on state writes must not be able to hide a run. On start it reads the
// flow's fencing epoch from `flow_owners` and inserts a row into `witness_runs`
//   (flow_id, node, epoch, pid, start_ms, end_ms)
// and every step (interval_ms, default 50) moves `end_ms` to now. <node> is the
// SLUICE_WITNESS_NODE environment variable (the test sets it per node). A write that fails is
// counted (`unrecorded`).
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <sluice/sdk/flow.hpp>
#include <string>
#include <vector>

namespace {

using sluice::sdk::Status;

// One connection per engine process, shared by its witness flows.
class Recorder {
 public:
  static Recorder& get() {
    static Recorder r;
    return r;
  }
  // Runs one statement; the first row's first column, or "" (and false) on failure.
  bool exec(const std::string& sql, const std::vector<std::string>& params, std::string* first) {
    std::lock_guard lock(mu_);
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      if (conn_ != nullptr) PQfinish(conn_);
      const char* url = std::getenv("SLUICE_WITNESS_STORE");
      conn_ = PQconnectdb(url != nullptr ? url : "");
      if (PQstatus(conn_) != CONNECTION_OK) return false;
      PGresult* r = PQexec(conn_,
                           "CREATE TABLE IF NOT EXISTS witness_runs (flow_id TEXT, node TEXT, "
                           "epoch BIGINT, pid INTEGER, start_ms BIGINT, end_ms BIGINT, "
                           "PRIMARY KEY (flow_id, node, pid, start_ms))");
      PQclear(r);
    }
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    const auto status = PQresultStatus(r);
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (ok && first != nullptr && PQntuples(r) > 0) *first = PQgetvalue(r, 0, 0);
    PQclear(r);
    return ok;
  }

 private:
  Recorder() = default;
  std::mutex mu_;
  PGconn* conn_ = nullptr;
};

class WitnessFlow : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "witness";
  static constexpr const char* kDescription = "Records its run intervals in PostgreSQL.";
  static constexpr const char* kConfigSchema =
      R"({"type":"object","properties":{"interval_ms":{"type":"integer","minimum":1}}})";

  WitnessFlow(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host), interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", 50))) {
    const char* node = std::getenv("SLUICE_WITNESS_NODE");
    node_ = node != nullptr ? node : "unnamed";
  }

  Status start() override {
    flow_ = std::string(host().flowId());
    start_ms_ = std::to_string(host().nowMs());
    std::string epoch = "0";
    Recorder::get().exec("SELECT epoch FROM flow_owners WHERE flow_id = $1", {flow_}, &epoch);
    if (!Recorder::get().exec(
            "INSERT INTO witness_runs VALUES ($1, $2, $3::bigint, $4::int, $5::bigint, "
            "$5::bigint)",
            {flow_, node_, epoch, std::to_string(::getpid()), start_ms_}, nullptr)) {
      host().counterAdd("unrecorded");
    }
    return Status::ok();
  }

  Status step(sluice::sdk::StepControl& control) override {
    if (!Recorder::get().exec(
            "UPDATE witness_runs SET end_ms = $5::bigint WHERE flow_id = $1 AND node = $2 AND "
            "pid = $3::int AND start_ms = $4::bigint",
            {flow_, node_, std::to_string(::getpid()), start_ms_, std::to_string(host().nowMs())},
            nullptr)) {
      host().counterAdd("unrecorded");
    }
    host().counterAdd("steps");
    control.nextIn(interval_ms_);
    return Status::ok();
  }

 private:
  uint32_t interval_ms_;
  std::string node_;
  std::string flow_;
  std::string start_ms_;
};

}  // namespace

SLUICE_PLUGIN("witness", "0.1.0", WitnessFlow)
