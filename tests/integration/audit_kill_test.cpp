// The audit log against the real binary (issue #8): every acknowledged request is audited even
// across kill -9 (sequential and concurrent), command entries name their flows, and the
// --audit-retention-days option.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The audit log across kill -9

struct Sent {
  std::string method;
  std::string path;
  int status = 0;
  std::string token;                  // the token's name; "anonymous" without a valid one
  std::vector<std::string> flow_ids;  // checked when `check_ids`
  bool check_ids = false;
};

/// The audit as (method, path, status, token, flow_ids) keys, with how often each occurs.
std::string key(const std::string& method, const std::string& path, int status,
                const std::string& token, const std::string& ids) {
  return method + " " + path + " " + std::to_string(status) + " " + token + " " + ids;
}

std::string idsKey(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (const auto& i : ids) out += i + ",";
  return out + "]";
}

/// Every audit entry (paged through /audit), as keys with and without flow_ids.
struct AuditView {
  std::multiset<std::string> with_ids;
  std::multiset<std::string> without_ids;
  std::map<std::string, std::vector<std::vector<std::string>>> ids_by_method_path;
  size_t entries = 0;
};

AuditView readAudit(uint16_t port, const std::string& admin) {
  AuditView v;
  uint64_t after = 0;
  for (int page = 0; page < 100; ++page) {
    auto r = requestWith(port, "GET", "/audit?after=" + std::to_string(after) + "&limit=1000",
                         bearer(admin));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) break;
    auto doc = parseJson(r.body);
    if (!doc.IsArray() || doc.Empty()) break;
    for (const auto& e : doc.GetArray()) {
      std::vector<std::string> ids;
      for (const auto& id : e["flow_ids"].GetArray()) ids.emplace_back(id.GetString());
      const std::string method = e["method"].GetString();
      const std::string path = e["path"].GetString();
      const int status = e["status"].GetInt();
      const std::string token = e["token"].GetString();
      v.with_ids.insert(key(method, path, status, token, idsKey(ids)));
      v.without_ids.insert(key(method, path, status, token, "*"));
      v.ids_by_method_path[method + " " + path].push_back(ids);
      after = std::max<uint64_t>(after, e["seq"].GetUint64());
      ++v.entries;
    }
    if (doc.Size() < 1000) break;
  }
  return v;
}

/// Checks that every acknowledged request has its own entry (counting duplicates).
void expectAudited(const std::vector<Sent>& acked, const AuditView& audit) {
  std::multiset<std::string> need_with, need_without;
  for (const auto& s : acked) {
    if (s.check_ids) {
      need_with.insert(key(s.method, s.path, s.status, s.token, idsKey(s.flow_ids)));
    } else {
      need_without.insert(key(s.method, s.path, s.status, s.token, "*"));
    }
  }
  size_t missing = 0;
  for (auto it = need_with.begin(); it != need_with.end(); it = need_with.upper_bound(*it)) {
    const size_t want = need_with.count(*it);
    const size_t have = audit.with_ids.count(*it);
    if (have < want) {
      ++missing;
      if (missing <= 20) ADD_FAILURE() << "not audited (" << have << " of " << want << "): " << *it;
    }
  }
  for (auto it = need_without.begin(); it != need_without.end();
       it = need_without.upper_bound(*it)) {
    const size_t want = need_without.count(*it);
    const size_t have = audit.without_ids.count(*it);
    if (have < want) {
      ++missing;
      if (missing <= 20) ADD_FAILURE() << "not audited (" << have << " of " << want << "): " << *it;
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged requests; the audit holds "
                         << audit.entries << " entries";
}

class AuditKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testDir("ops");
    data_ = dir_ / "data";
    admin_ = createToken(data_, "adm", "admin", dir_);
    editor_ = createToken(data_, "ed", "editor", dir_);
    operator_ = createToken(data_, "op", "operator", dir_);
    viewer_ = createToken(data_, "vw", "viewer", dir_);
  }
  void start(const std::string& log) {
    // No lockout: the deliberate 401s must all be answered (and audited) as 401s.
    server_ = std::make_unique<ServerProcess>(
        SLUICE_BINARY, data_, serverArgs({"--auth-max-failures", "0"}), (dir_ / log).string());
  }
  /// Sends one request; records it in `acked` when its response arrived in full.
  bool send(std::vector<Sent>* acked, std::mutex* mu, const std::string& method,
            const std::string& path, const std::string& token_name, const std::string& secret,
            const std::string& body, std::vector<std::string> ids, bool check_ids) {
    HttpResponse r;
    try {
      r = requestWith(server_->port(), method, path, bearer(secret), body, !body.empty(), 10000);
    } catch (const std::exception&) {
      return false;
    }
    Sent s{method, path, r.status, token_name, std::move(ids), check_ids};
    std::unique_lock<std::mutex> lock;
    if (mu != nullptr) lock = std::unique_lock<std::mutex>(*mu);
    acked->push_back(std::move(s));
    return true;
  }

  fs::path dir_, data_;
  std::string admin_, editor_, operator_, viewer_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(AuditKillTest, EveryAcknowledgedRequestIsAuditedAfterKillNine) {
  start("sluice.log");
  std::vector<Sent> acked;
  const std::string bad = "sluice_" + std::string(64, '0');
  for (int i = 0; i < 60; ++i) {
    const std::string id = "q" + std::to_string(i - i % 10);  // created at i % 10 == 0
    const std::string own = "q" + std::to_string(i);
    switch (i % 10) {
      case 0:
        send(&acked, nullptr, "POST", "/flows", "ed", editor_,
             R"([{"flow_id":")" + id + R"(","type":"ticker","config":{"interval_ms":20}}])", {id},
             true);
        break;
      case 1:
        send(&acked, nullptr, "PUT", "/flows/" + id, "ed", editor_,
             R"({"type":"ticker","config":{"interval_ms":30}})", {id}, true);
        break;
      case 2:
        // flow_ids of a command are checked by CommandEntryNamesItsFlows.
        send(&acked, nullptr, "PATCH", "/flows/commands", "op", operator_,
             R"({"command":"start","flow_ids":[")" + id + R"("]})", {}, false);
        break;
      case 3:
        send(&acked, nullptr, "PATCH", "/flows/commands", "op", operator_,
             R"({"command":"stop","flow_ids":[")" + id + R"("]})", {}, false);
        break;
      case 4:
        send(&acked, nullptr, "POST", "/flows", "ed", editor_,
             R"([{"flow_id":")" + own + R"("},{"flow_id":")" + own + R"(b"}])", {own, own + "b"},
             true);
        break;
      case 5:
        send(&acked, nullptr, "POST", "/flows", "anonymous", "",
             R"([{"flow_id":")" + own + R"("}])", {}, false);
        break;
      case 6:
        send(&acked, nullptr, "PUT", "/flows/" + id, "vw", viewer_, R"({"name":"no"})", {id}, true);
        break;
      case 7:
        send(&acked, nullptr, "DELETE", "/flows/" + id, "op", operator_, "", {id}, true);
        break;
      case 8:
        send(&acked, nullptr, "DELETE", "/flows/" + id, "anonymous", bad, "", {id}, true);
        break;
      case 9:
        send(&acked, nullptr, "DELETE", "/flows/" + id, "ed", editor_, "", {id}, true);
        break;
    }
  }
  ASSERT_EQ(acked.size(), 60u) << "every request of the sequential run was answered";
  // The statuses are what the roles allow: the audit must record these exact answers.
  std::map<int, int> expected_status = {{0, 201}, {1, 200}, {2, 200}, {3, 200}, {4, 201},
                                        {5, 401}, {6, 403}, {7, 403}, {8, 401}, {9, 200}};
  for (size_t i = 0; i < acked.size(); ++i) {
    EXPECT_EQ(acked[i].status, expected_status[static_cast<int>(i % 10)])
        << i << ": " << acked[i].method << " " << acked[i].path;
  }
  server_->kill(SIGKILL);
  start("sluice2.log");
  expectAudited(acked, readAudit(server_->port(), admin_));
}

TEST_F(AuditKillTest, ConcurrentRequestsAcknowledgedBeforeKillNineAreAudited) {
  start("sluice.log");
  std::vector<Sent> acked;
  std::mutex mu;
  std::atomic<int> answered{0};
  std::atomic<bool> killed{false};
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;  // bounded by count; the kill comes well before the end
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int failures_after_kill = 0;
      for (int k = 0; k < kPerThread; ++k) {
        const std::string id = "c" + std::to_string(t) + "_" + std::to_string(k - k % 5);
        bool ok = false;
        switch (k % 5) {
          case 0:
            ok = send(&acked, &mu, "POST", "/flows", "ed", editor_,
                      R"([{"flow_id":")" + id + R"("}])", {id}, true);
            break;
          case 1:
            ok = send(&acked, &mu, "PUT", "/flows/" + id, "ed", editor_, R"({"v":1})", {id}, true);
            break;
          case 2:
            ok = send(&acked, &mu, "PATCH", "/flows/commands", "op", operator_,
                      R"({"command":"start","flow_ids":[")" + id + R"("]})", {}, false);
            break;
          case 3:
            ok = send(&acked, &mu, "DELETE", "/flows/" + id, "vw", viewer_, "", {id}, true);
            break;
          case 4:
            ok = send(&acked, &mu, "DELETE", "/flows/" + id, "ed", editor_, "", {id}, true);
            break;
        }
        if (ok) ++answered;
        if (!ok && killed && ++failures_after_kill >= 3) return;
      }
    });
  }
  // Kill while the threads are still sending.
  const bool enough = waitFor([&] { return answered.load() >= 200; }, 30s);
  const int at_kill = answered.load();
  killed = true;
  server_->kill(SIGKILL);
  for (auto& th : threads) th.join();
  EXPECT_TRUE(enough) << "only " << answered.load() << " answers";
  EXPECT_LT(at_kill, kThreads * kPerThread) << "the kill came after every request was answered";
  start("sluice2.log");
  std::vector<Sent> copy;
  {
    std::lock_guard lock(mu);
    copy = acked;
  }
  ASSERT_FALSE(copy.empty());
  RecordProperty("answered_at_kill", at_kill);
  RecordProperty("acknowledged", static_cast<int>(copy.size()));
  const AuditView audit = readAudit(server_->port(), admin_);
  expectAudited(copy, audit);
  // And each acknowledged creation is there after the restart too, unless a DELETE of it was
  // done (acknowledged, or in flight at the kill and committed: then the audit has it).
  for (const auto& s : copy) {
    if (s.method == "POST" && s.status == 201) {
      const auto& id = s.flow_ids[0];
      const bool deleted =
          audit.with_ids.count(key("DELETE", "/flows/" + id, 200, "ed", idsKey({id}))) > 0;
      if (!deleted) {
        EXPECT_EQ(requestWith(server_->port(), "GET", "/flows/" + id, bearer(admin_)).status, 200)
            << id;
      }
    }
  }
}

// A command's audit entry names the flows it addressed, whether they were listed in flow_ids or
// implied (no flow_ids: every flow).
TEST_F(AuditKillTest, CommandEntryNamesItsFlows) {
  start("sluice.log");
  auto r = requestWith(server_->port(), "POST", "/flows", bearer(editor_),
                       R"([{"flow_id":"m1"},{"flow_id":"m2"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  r = requestWith(server_->port(), "PATCH", "/flows/commands", bearer(operator_),
                  R"({"command":"start","flow_ids":["m1"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = requestWith(server_->port(), "PATCH", "/flows/commands", bearer(operator_),
                  R"({"command":"stop"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto audit = readAudit(server_->port(), admin_);
  const auto& patches = audit.ids_by_method_path["PATCH /flows/commands"];
  ASSERT_EQ(patches.size(), 2u);
  EXPECT_EQ(patches[0], (std::vector<std::string>{"m1"}))
      << "PATCH start flow_ids [m1] recorded flow_ids " << idsKey(patches[0]);
  EXPECT_EQ(patches[1], (std::vector<std::string>{"m1", "m2"}))
      << "PATCH stop (all) recorded flow_ids " << idsKey(patches[1]);
}

// ---------------------------------------------------------------------------------------------
// Retention option

TEST(AuditRetention, OptionParses) {
  const fs::path dir = testDir("ops");
  for (const char* days : {"0", "30"}) {
    ServerProcess server(SLUICE_BINARY, dir / (std::string("data") + days),
                         serverArgs({"--audit-retention-days", days}),
                         (dir / (std::string("sluice") + days + ".log")).string());
    EXPECT_EQ(request(server.port(), "GET", "/flows").status, 200) << days;
    EXPECT_EQ(request(server.port(), "POST", "/flows", R"([{"flow_id":"a"}])").status, 201);
  }
  auto r = runSluice({"--listen", "127.0.0.1:0", "--data-dir", (dir / "neg").string(),
                      "--audit-retention-days", "-1"},
                     dir);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1);
  EXPECT_NE(r.err.find("--audit-retention-days"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("listening on"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
