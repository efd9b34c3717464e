// Several real sluice nodes on one PostgreSQL store (issue 10), and the witness checker: every
// run interval the `witness` test plugin recorded, and the proof that no flow ran twice at once.
#pragma once

#include <libpq-fe.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fakes/api_fixture.hpp"
#include "fakes/pg_server.hpp"
#include "fakes/security_fixture.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {

/// One run of a witness flow: [start, end] in ms, by node, epoch and process.
struct RunInterval {
  std::string flow_id;
  std::string node;
  int64_t epoch = 0;
  long pid = 0;
  int64_t start = 0;
  int64_t end = 0;
};

class TestCluster {
 public:
  /// `extra`: more arguments for every node (a shared --files-root, ...).
  TestCluster(std::string url, std::filesystem::path dir, std::string ttl,
              std::vector<std::string> extra = {})
      : url_(std::move(url)),
        dir_(std::move(dir)),
        ttl_(std::move(ttl)),
        extra_(std::move(extra)) {}

  /// Starts (or starts again) node `i`, named n<i>, with its own data directory.
  void start(size_t i) {
    if (nodes_.size() <= i) nodes_.resize(i + 1);
    const std::string name = "n" + std::to_string(i);
    ::setenv("SLUICE_WITNESS_NODE", name.c_str(), 1);  // inherited by the child only
    ::setenv("SLUICE_WITNESS_STORE", url_.c_str(), 1);
    nodes_[i] = std::make_unique<ServerProcess>(SLUICE_BINARY, dir_ / name, serverArgs(args(name)),
                                                (dir_ / (name + ".log")).string());
    ::unsetenv("SLUICE_WITNESS_NODE");
    ::unsetenv("SLUICE_WITNESS_STORE");
  }
  std::vector<std::string> args(const std::string& name) const {
    std::vector<std::string> out = {"--store", url_, "--node-id", name, "--lease-ttl", ttl_};
    out.insert(out.end(), extra_.begin(), extra_.end());
    return out;
  }
  void startAll(size_t n) {
    for (size_t i = 0; i < n; ++i) start(i);
  }
  ServerProcess& node(size_t i) { return *nodes_.at(i); }
  uint16_t port(size_t i) { return nodes_.at(i)->port(); }
  bool running(size_t i) const { return i < nodes_.size() && nodes_[i] != nullptr; }
  /// Ends node i with `sig` and forgets it.
  void stop(size_t i, int sig) {
    nodes_.at(i)->kill(sig);
    nodes_[i].reset();
  }
  size_t size() const { return nodes_.size(); }
  const std::string& url() const { return url_; }

  /// GET /cluster on node i, parsed (an empty object when it does not answer 200).
  rapidjson::Document cluster(size_t i) {
    auto r = request(port(i), "GET", "/cluster");
    rapidjson::Document d;
    if (r.status != 200) {
      d.SetObject();
      return d;
    }
    return parseJson(r.body);
  }
  /// The alive nodes that node i's /cluster lists, and its leader ("" when none).
  std::set<std::string> alive(size_t i, std::string* leader = nullptr) {
    auto d = cluster(i);
    std::set<std::string> out;
    if (leader) leader->clear();
    if (!d.IsObject() || !d.HasMember("nodes")) return out;
    if (leader && d["leader"].IsString()) *leader = d["leader"].GetString();
    for (const auto& n : d["nodes"].GetArray()) {
      if (n["alive"].GetBool()) out.insert(n["node_id"].GetString());
    }
    return out;
  }

  /// flow id -> (status, node) from GET /flows/status on node i.
  std::map<std::string, std::pair<std::string, std::string>> statuses(size_t i) {
    std::map<std::string, std::pair<std::string, std::string>> out;
    auto r = request(port(i), "GET", "/flows/status");
    if (r.status != 200) return out;
    auto d = parseJson(r.body);
    if (!d.IsObject()) return out;
    for (const auto& m : d.GetObject()) {
      const auto& s = m.value;
      out[m.name.GetString()] = {
          s["status"].GetString(),
          s.HasMember("node") && s["node"].IsString() ? s["node"].GetString() : ""};
    }
    return out;
  }
  /// Whether node i shows every flow of `ids` running, none on `not_on`.
  bool allRunning(size_t i, const std::vector<std::string>& ids, const std::string& not_on = "") {
    auto all = statuses(i);
    for (const auto& id : ids) {
      auto it = all.find(id);
      if (it == all.end() || it->second.first != "running" || it->second.second.empty() ||
          it->second.second == not_on) {
        return false;
      }
    }
    return true;
  }

  /// Every run interval the witness flows recorded.
  std::vector<RunInterval> intervals() const {
    std::vector<RunInterval> out;
    PGconn* c = PQconnectdb(url_.c_str());
    PGresult* r = PQexec(c, "SELECT flow_id, node, epoch, pid, start_ms, end_ms FROM witness_runs");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
      for (int i = 0; i < PQntuples(r); ++i) {
        out.push_back({PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), std::stoll(PQgetvalue(r, i, 2)),
                       std::stol(PQgetvalue(r, i, 3)), std::stoll(PQgetvalue(r, i, 4)),
                       std::stoll(PQgetvalue(r, i, 5))});
      }
    }
    PQclear(r);
    PQfinish(c);
    return out;
  }

  /// Pairs of intervals of one flow that overlap, described; empty when none does.
  static std::vector<std::string> overlaps(std::vector<RunInterval> runs) {
    std::sort(runs.begin(), runs.end(), [](const RunInterval& a, const RunInterval& b) {
      return a.flow_id != b.flow_id ? a.flow_id < b.flow_id : a.start < b.start;
    });
    std::vector<std::string> out;
    for (size_t i = 1; i < runs.size(); ++i) {
      const auto& a = runs[i - 1];
      const auto& b = runs[i];
      if (a.flow_id == b.flow_id && b.start <= a.end) {
        out.push_back(a.flow_id + ": " + a.node + " epoch " + std::to_string(a.epoch) + " [" +
                      std::to_string(a.start) + ", " + std::to_string(a.end) + "] and " + b.node +
                      " epoch " + std::to_string(b.epoch) + " [" + std::to_string(b.start) + ", " +
                      std::to_string(b.end) + "]");
      }
    }
    return out;
  }

 private:
  std::string url_;
  std::filesystem::path dir_;
  std::string ttl_;
  std::vector<std::string> extra_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

/// A POST /flows body of `n` flows of `type` named prefix0..prefix<n-1>.
inline std::string flowsBody(const std::string& prefix, size_t n, const std::string& type,
                             const std::string& config, std::vector<std::string>* ids) {
  std::string body = "[";
  for (size_t i = 0; i < n; ++i) {
    const std::string id = prefix + std::to_string(i);
    if (ids) ids->push_back(id);
    if (i > 0) body += ',';
    body += R"({"flow_id":")" + id + R"(","type":")" + type + R"(","config":)" + config + "}";
  }
  return body + "]";
}

}  // namespace sluice::test
