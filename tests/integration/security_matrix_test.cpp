// Security of the REST API against the real binary (issue #8): every endpoint x every role and
// every way of failing authentication, what a refusal leaves behind (nothing changed, one audit
// entry), revocation on an open keep-alive connection, the audit log of successful changes and
// its paging, tokens never listed with their secret, and the brute-force lockout per address.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <optional>
#include <set>

#include "fakes/api_fixture.hpp"
#include "fakes/raw_connection.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Helpers: the CLI, requests from another source address, JSON access that never throws.

struct CliResult {
  int exit_code = -1;
  std::string out;
};

/// Runs SLUICE_BINARY with `args`; returns its exit code and stdout (stderr is discarded).
CliResult runCli(const std::vector<std::string>& args) {
  CliResult res;
  int out[2];
  if (::pipe(out) != 0) return res;
  std::vector<std::string> all = {SLUICE_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 2);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(SLUICE_BINARY, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    res.out.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return res;
}

std::string trimLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

/// `sluice token create`; returns the secret it printed.
std::string cliCreateToken(const std::filesystem::path& data, const std::string& name,
                           const std::string& role, const std::string& expires = "") {
  std::vector<std::string> args = {"token", "create", "--name", name, "--role", role};
  if (!expires.empty()) {
    args.push_back("--expires");
    args.push_back(expires);
  }
  args.push_back("--data-dir");
  args.push_back(data.string());
  auto r = runCli(args);
  EXPECT_EQ(r.exit_code, 0) << "token create " << name;
  std::string secret = trimLine(r.out);
  EXPECT_EQ(secret.rfind("sluice_", 0), 0u) << r.out;
  return secret;
}

std::vector<std::string> bearer(const std::string& secret) {
  if (secret.empty()) return {};
  return {"Authorization: Bearer " + secret};
}

bool hasBody(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

/// One request with one extra header set, sent from a socket bound to `source` (e.g.
/// 127.0.0.2) to 127.0.0.1:port; Connection: close.
HttpResponse requestFrom(const char* source, uint16_t port, const std::string& method,
                         const std::string& path, const std::vector<std::string>& headers,
                         const std::string& body = "") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_port = 0;
  ::inet_pton(AF_INET, source, &src.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("cannot bind to ") + source);
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    ::close(fd);
    throw std::runtime_error("connect failed");
  }
  std::string raw = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) raw += h + "\r\n";
  if (hasBody(method)) {
    raw +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  raw += "\r\n" + body;
  size_t sent = 0;
  while (sent < raw.size()) {
    ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!RawConnection::completeResponse(in) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t used = 0;
  HttpResponse r = RawConnection::parseResponse(in, &used);
  if (used == 0) throw std::runtime_error("incomplete response: " + in);
  return r;
}

std::string strOf(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return "<not an object>";
  auto it = v.FindMember(key);
  if (it == v.MemberEnd()) return "<missing>";
  if (!it->value.IsString()) return "<not a string>";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

/// Every string anywhere in `v` (values and member names).
void collectStrings(const rapidjson::Value& v, std::vector<std::string>& out) {
  if (v.IsString()) {
    out.emplace_back(v.GetString(), v.GetStringLength());
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) collectStrings(e, out);
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      out.emplace_back(m.name.GetString(), m.name.GetStringLength());
      collectStrings(m.value, out);
    }
  }
}

/// One row of GET /audit.
struct AuditRow {
  int64_t seq = -1;
  std::string time, token, role, remote, method, path;
  std::vector<std::string> flow_ids;
  int status = 0;
  bool error_null = true;
  std::string error;
};

std::ostream& operator<<(std::ostream& os, const AuditRow& a) {
  os << "{seq " << a.seq << ", " << a.token << "/" << a.role << " from " << a.remote << ", "
     << a.method << " " << a.path << ", flow_ids [";
  for (const auto& f : a.flow_ids) os << f << " ";
  os << "], status " << a.status << ", error " << (a.error_null ? "null" : "\"" + a.error + "\"")
     << "}";
  return os;
}

std::vector<AuditRow> parseAudit(const std::string& body) {
  std::vector<AuditRow> rows;
  auto doc = parseJson(body);
  if (!doc.IsArray()) {
    ADD_FAILURE() << "GET /audit is not an array: " << body;
    return rows;
  }
  for (const auto& e : doc.GetArray()) {
    AuditRow a;
    if (!e.IsObject()) {
      ADD_FAILURE() << "audit entry is not an object: " << body;
      continue;
    }
    for (const char* key : {"seq", "time", "token", "role", "remote", "method", "path", "flow_ids",
                            "status", "error"}) {
      EXPECT_TRUE(e.HasMember(key)) << "audit entry without \"" << key << "\": " << body;
    }
    if (e.HasMember("seq") && e["seq"].IsInt64()) a.seq = e["seq"].GetInt64();
    a.time = strOf(e, "time");
    a.token = strOf(e, "token");
    a.role = strOf(e, "role");
    a.remote = strOf(e, "remote");
    a.method = strOf(e, "method");
    a.path = strOf(e, "path");
    if (e.HasMember("flow_ids") && e["flow_ids"].IsArray()) {
      for (const auto& f : e["flow_ids"].GetArray()) {
        a.flow_ids.push_back(f.IsString() ? f.GetString() : "<not a string>");
      }
    } else {
      ADD_FAILURE() << "flow_ids is not an array: " << body;
    }
    if (e.HasMember("status") && e["status"].IsInt()) a.status = e["status"].GetInt();
    if (e.HasMember("error") && e["error"].IsString()) {
      a.error_null = false;
      a.error = e["error"].GetString();
    } else {
      EXPECT_TRUE(e.HasMember("error") && e["error"].IsNull()) << body;
    }
    rows.push_back(std::move(a));
  }
  return rows;
}

/// The 401 every authentication failure answers.
void expect401(const HttpResponse& r, const std::string& what) {
  EXPECT_EQ(r.status, 401) << what << ": " << r.body;
  EXPECT_EQ(r.header("www-authenticate"), "Bearer realm=\"sluice\"") << what;
  EXPECT_EQ(r.header("content-type"), "application/json") << what;
  auto doc = parseJson(r.body);
  EXPECT_TRUE(doc.IsObject() && doc.HasMember("error") && doc["error"].IsString() &&
              doc["error"].GetStringLength() > 0)
      << what << ": " << r.body;
}

/// The 403 of a valid token without the role `needed`.
void expect403(const HttpResponse& r, const std::string& needed, const std::string& what) {
  EXPECT_EQ(r.status, 403) << what << ": " << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json") << what;
  EXPECT_EQ(r.header("www-authenticate"), "") << what;
  auto doc = parseJson(r.body);
  EXPECT_EQ(strOf(doc, "required_role"), needed) << what << ": " << r.body;
  EXPECT_NE(strOf(doc, "error").find("needs the role " + needed), std::string::npos)
      << what << ": " << r.body;
}

// ---------------------------------------------------------------------------------------------
// The fixture: a server whose data directory already holds tokens when it starts.

class SecureServer : public ::testing::Test {
 public:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(SLUICE_TEST_TMP) /
           ("security-" + std::string(info->test_suite_name()) + "-" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(data());
  }

  std::filesystem::path data() const { return dir_ / "data"; }

  void startServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "--log-level",
                                     "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_.reset();
    server_ = std::make_unique<ServerProcess>(SLUICE_BINARY, data(), args,
                                              (dir_ / "sluice.log").string());
  }
  uint16_t port() const { return server_->port(); }

  HttpResponse call(const std::string& secret, const std::string& method, const std::string& path,
                    const std::string& body = "") {
    return requestWith(port(), method, path, bearer(secret), body, hasBody(method));
  }
  HttpResponse asAdmin(const std::string& method, const std::string& path,
                       const std::string& body = "") {
    return call(admin_, method, path, body);
  }

  /// Audit entries after the cursor (read as admin, page by page); moves the cursor past them.
  std::vector<AuditRow> newAudit() {
    std::vector<AuditRow> out;
    for (;;) {
      auto r = asAdmin("GET", "/audit?after=" + std::to_string(cursor_) + "&limit=1000");
      if (r.status != 200) {
        ADD_FAILURE() << "GET /audit: " << r.status << " " << r.body;
        return out;
      }
      auto page = parseAudit(r.body);
      for (auto& a : page) {
        cursor_ = std::max<int64_t>(cursor_, a.seq);
        out.push_back(std::move(a));
      }
      if (page.size() < 1000) return out;
    }
  }
  void skipAudit() { (void)newAudit(); }

  /// id -> status of every flow.
  std::map<std::string, std::string> statuses() {
    std::map<std::string, std::string> out;
    auto r = asAdmin("GET", "/flows/status");
    EXPECT_EQ(r.status, 200) << r.body;
    auto doc = parseJson(r.body);
    if (!doc.IsObject()) return out;
    for (const auto& m : doc.GetObject()) out[m.name.GetString()] = strOf(m.value, "status");
    return out;
  }

  std::string flowStatus(const std::string& id) {
    auto r = asAdmin("GET", "/flows/status/" + id);
    if (r.status != 200) return "http " + std::to_string(r.status);
    return strOf(parseJson(r.body), "status");
  }

  std::filesystem::path dir_;
  std::unique_ptr<ServerProcess> server_;
  std::string admin_;  // an admin token's secret
  int64_t cursor_ = 0;
};

// ---------------------------------------------------------------------------------------------
// 1. The matrix.

const std::vector<std::string> kRoles = {"viewer", "operator", "editor", "admin"};

int roleRank(const std::string& role) {
  for (size_t i = 0; i < kRoles.size(); ++i) {
    if (kRoles[i] == role) return static_cast<int>(i);
  }
  return -1;
}

/// One request of the matrix, prepared for one case.
struct Call {
  std::string method, path, body;
  // What its audit entry must name; nullopt: not checked.
  std::optional<std::vector<std::string>> flow_ids;
};

class MatrixTest : public SecureServer {};

struct Endpoint {
  std::string label;
  std::string needs;  // the role it needs
  int ok_status;      // its answer when admitted
  std::function<Call(MatrixTest&, const std::string& tag)> prepare;
};

struct Caller {
  std::string label;
  std::string secret;       // empty: no Authorization header
  std::string role;         // the role of a valid token; empty for the 401 callers
  std::string audit_token;  // what its audit entries name
  std::string audit_role;
};

TEST_F(MatrixTest, EveryEndpointTimesEveryRoleAndEveryAuthFailure) {
  // Tokens exist before the server starts: authentication is required from the start.
  std::map<std::string, std::string> secret;
  for (const auto& role : kRoles) secret[role] = cliCreateToken(data(), "t-" + role, role);
  admin_ = secret["admin"];
  const std::string revoked = cliCreateToken(data(), "t-revoked", "admin");
  ASSERT_EQ(runCli({"token", "revoke", "t-revoked", "--data-dir", data().string()}).exit_code, 0);
  const std::string expired = cliCreateToken(data(), "t-expired", "admin", "1s");
  // Refusals come by the dozen here: the lockout has its own test.
  startServer({"--auth-max-failures", "0"});

  // Flows the cases work on: f1 takes commands, p1 takes PUTs.
  ASSERT_EQ(asAdmin("POST", "/flows", R"([{"flow_id":"f1"},{"flow_id":"p1","name":"p"}])").status,
            201);

  // The expiring token is refused once its second has passed (GET /tokens says so first).
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = asAdmin("GET", "/tokens");
        return r.body.find(R"("name":"t-expired")") != std::string::npos &&
               r.body.find(R"("expired":true)") != std::string::npos;
      },
      10s))
      << asAdmin("GET", "/tokens").body;
  ASSERT_TRUE(waitFor([&] { return call(expired, "GET", "/flows").status == 401; }, 10s));

  auto stopF1 = [](MatrixTest& t) {
    auto r = t.asAdmin("PATCH", "/flows/commands", R"({"command":"stop","flow_ids":["f1"]})");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(t.flowStatus("f1"), "stopped");
  };

  const std::vector<Endpoint> endpoints = {
      {"GET /flows", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows", "", std::vector<std::string>{}};
       }},
      {"GET /flows/ID", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows/f1", "", std::nullopt};
       }},
      {"GET /flows/status", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows/status", "", std::vector<std::string>{}};
       }},
      {"GET /flows/status/ID", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows/status/f1", "", std::nullopt};
       }},
      {"GET /plugins", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/plugins", "", std::vector<std::string>{}};
       }},
      {"PATCH /flows/commands", "operator", 200,
       [stopF1](MatrixTest& t, const std::string&) {
         stopF1(t);
         return Call{"PATCH", "/flows/commands", R"({"command":"start","flow_ids":["f1"]})",
                     std::vector<std::string>{"f1"}};
       }},
      {"POST /flows", "editor", 201,
       [](MatrixTest&, const std::string& tag) {
         return Call{"POST", "/flows",
                     R"([{"flow_id":"new-)" + tag + R"(a"},{"flow_id":"new-)" + tag + R"(b"}])",
                     std::vector<std::string>{"new-" + tag + "a", "new-" + tag + "b"}};
       }},
      {"PUT /flows/ID", "editor", 200,
       [](MatrixTest&, const std::string& tag) {
         return Call{"PUT", "/flows/p1", R"({"flow_id":"p1","name":"put-)" + tag + R"("})",
                     std::vector<std::string>{"p1"}};
       }},
      {"DELETE /flows/ID", "editor", 200,
       [](MatrixTest& t, const std::string& tag) {
         auto r = t.asAdmin("POST", "/flows", R"([{"flow_id":"del-)" + tag + R"("}])");
         EXPECT_EQ(r.status, 201) << r.body;
         return Call{"DELETE", "/flows/del-" + tag, "", std::vector<std::string>{"del-" + tag}};
       }},
      {"POST /flows/validate", "editor", 200,
       [](MatrixTest&, const std::string& tag) {
         // flow_ids of a validation are not specified: not checked.
         return Call{"POST", "/flows/validate", R"([{"flow_id":"val-)" + tag + R"("}])",
                     std::nullopt};
       }},
      {"GET /tokens", "admin", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/tokens", "", std::vector<std::string>{}};
       }},
      {"POST /tokens", "admin", 201,
       [](MatrixTest&, const std::string& tag) {
         return Call{"POST", "/tokens", R"({"name":"mk-)" + tag + R"(","role":"viewer"})",
                     std::vector<std::string>{}};
       }},
      {"DELETE /tokens/NAME", "admin", 200,
       [](MatrixTest& t, const std::string& tag) {
         auto r = t.asAdmin("POST", "/tokens", R"({"name":"vic-)" + tag + R"(","role":"viewer"})");
         EXPECT_EQ(r.status, 201) << r.body;
         return Call{"DELETE", "/tokens/vic-" + tag, "", std::vector<std::string>{}};
       }},
      {"GET /audit", "admin", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/audit", "", std::vector<std::string>{}};
       }},
  };

  std::vector<Caller> callers;
  for (const auto& role : kRoles) callers.push_back({role, secret[role], role, "t-" + role, role});
  callers.push_back({"no token", "", "", "anonymous", "anonymous"});
  callers.push_back(
      {"unknown token", "sluice_" + std::string(64, '0'), "", "anonymous", "anonymous"});
  callers.push_back({"expired token", expired, "", "t-expired", "admin"});
  callers.push_back({"revoked token", revoked, "", "t-revoked", "admin"});

  int n = 0;
  for (const auto& ep : endpoints) {
    for (const auto& who : callers) {
      const std::string tag = std::to_string(++n);
      const std::string what = ep.label + " as " + who.label;
      SCOPED_TRACE(what);
      Call c = ep.prepare(*this, tag);
      skipAudit();
      const std::string flows_before = asAdmin("GET", "/flows").body;
      const auto status_before = statuses();
      const std::string tokens_before = asAdmin("GET", "/tokens").body;

      auto r = call(who.secret, c.method, c.path, c.body);

      const bool authenticated = !who.role.empty();
      const bool allowed = authenticated && roleRank(who.role) >= roleRank(ep.needs);
      auto entries = newAudit();
      if (allowed) {
        EXPECT_EQ(r.status, ep.ok_status) << r.body;
        if (c.method == "GET") {
          EXPECT_TRUE(entries.empty()) << "a successful GET is not audited: " << entries[0];
        } else if (entries.size() != 1) {
          ADD_FAILURE() << entries.size() << " audit entries for one admitted change";
        } else {
          const auto& a = entries[0];
          EXPECT_EQ(a.status, ep.ok_status) << a;
          EXPECT_EQ(a.token, who.audit_token) << a;
          EXPECT_EQ(a.role, who.audit_role) << a;
          EXPECT_EQ(a.method, c.method) << a;
          EXPECT_EQ(a.path, c.path) << a;
          EXPECT_TRUE(a.error_null) << a;
          if (c.flow_ids) {
            EXPECT_EQ(a.flow_ids, *c.flow_ids) << a;
          }
        }
        continue;
      }
      // A refusal: the right answer, nothing changed, and exactly one audit entry.
      if (authenticated) {
        expect403(r, ep.needs, what);
      } else {
        expect401(r, what);
      }
      EXPECT_EQ(asAdmin("GET", "/flows").body, flows_before);
      EXPECT_EQ(statuses(), status_before);
      EXPECT_EQ(asAdmin("GET", "/tokens").body, tokens_before);
      if (entries.size() != 1) {
        ADD_FAILURE() << entries.size() << " audit entries for one refusal";
        for (const auto& a : entries) ADD_FAILURE() << a;
        continue;
      }
      const auto& a = entries[0];
      EXPECT_EQ(a.status, r.status) << a;
      EXPECT_EQ(a.method, c.method) << a;
      EXPECT_EQ(a.path, c.path) << a;
      EXPECT_EQ(a.token, who.audit_token) << a;
      EXPECT_EQ(a.role, who.audit_role) << a;
      EXPECT_EQ(a.remote, "127.0.0.1") << a;
      EXPECT_FALSE(a.error_null) << a;
      EXPECT_FALSE(a.error.empty()) << a;
      EXPECT_EQ(a.error, strOf(parseJson(r.body), "error")) << a;
      if (c.flow_ids) {
        EXPECT_EQ(a.flow_ids, *c.flow_ids) << a;
      }
    }
  }
  // The server took all of it and still answers.
  EXPECT_EQ(asAdmin("GET", "/flows/status").status, 200);
}

// ---------------------------------------------------------------------------------------------
// 2. Revocation reaches a connection that is already open.

class RevocationTest : public SecureServer {};

std::string keepAliveGet(const std::string& path, const std::string& secret) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n" +
         "Authorization: Bearer " + secret + "\r\n\r\n";
}

TEST_F(RevocationTest, RevokedOverRestRefusedOnTheSameKeepAliveConnection) {
  admin_ = cliCreateToken(data(), "root", "admin");
  const std::string t = cliCreateToken(data(), "T", "viewer");
  startServer();

  RawConnection conn(port());
  conn.send(keepAliveGet("/flows", t));
  auto r = conn.readResponse(10s);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(lower(r.header("connection")), "keep-alive");
  ASSERT_FALSE(conn.closed());

  auto revoked = asAdmin("DELETE", "/tokens/T");  // another connection
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_TRUE(jsonEqual(revoked.body, R"({"status":"Token revoked","name":"T"})")) << revoked.body;

  ASSERT_FALSE(conn.closed()) << "the server closed the keep-alive connection";
  conn.send(keepAliveGet("/flows", t));
  r = conn.readResponse(10s);
  expect401(r, "GET /flows with T revoked, same connection");
  EXPECT_NE(strOf(parseJson(r.body), "error").find("revoked"), std::string::npos) << r.body;

  // The refusal is audited under the revoked token's name.
  auto entries = parseAudit(asAdmin("GET", "/audit?limit=1000").body);
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back().status, 401) << entries.back();
  EXPECT_EQ(entries.back().token, "T") << entries.back();
  EXPECT_EQ(entries.back().role, "viewer") << entries.back();
  EXPECT_EQ(entries.back().method, "GET") << entries.back();
  EXPECT_EQ(entries.back().path, "/flows") << entries.back();
}

TEST_F(RevocationTest, RevokedByTheCliRefusedOnTheSameKeepAliveConnection) {
  admin_ = cliCreateToken(data(), "root", "admin");
  const std::string t = cliCreateToken(data(), "T2", "editor");
  startServer();

  RawConnection conn(port());
  conn.send(keepAliveGet("/flows", t));
  auto r = conn.readResponse(10s);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_FALSE(conn.closed());

  // The CLI writes to the running server's database.
  ASSERT_EQ(runCli({"token", "revoke", "T2", "--data-dir", data().string()}).exit_code, 0);

  ASSERT_FALSE(conn.closed()) << "the server closed the keep-alive connection";
  conn.send(keepAliveGet("/flows", t));
  r = conn.readResponse(10s);
  expect401(r, "GET /flows with T2 revoked by the CLI, same connection");

  // And on a new connection, and for a change it would have been allowed before.
  expect401(call(t, "POST", "/flows", R"([{"flow_id":"x"}])"), "POST /flows with T2 revoked");
  EXPECT_EQ(asAdmin("GET", "/flows").body, "[]");
  // The admin token still works.
  EXPECT_EQ(asAdmin("GET", "/flows").status, 200);
}

// ---------------------------------------------------------------------------------------------
// 3. Successful changes are audited with their status and who made them; GETs are not.

class AuditTest : public SecureServer {};

TEST_F(AuditTest, SuccessfulChangesAreAuditedAndGetsAreNot) {
  admin_ = cliCreateToken(data(), "boss", "admin");
  const std::string editor = cliCreateToken(data(), "ed", "editor");
  const std::string op = cliCreateToken(data(), "ops", "operator");
  const std::string viewer = cliCreateToken(data(), "eye", "viewer");
  startServer();
  skipAudit();  // the CLI's own entries

  auto expectOne = [&](const HttpResponse& r, int status, const std::string& token,
                       const std::string& role, const std::string& method, const std::string& path,
                       const std::vector<std::string>& flow_ids) {
    EXPECT_EQ(r.status, status) << method << " " << path << ": " << r.body;
    auto entries = newAudit();
    ASSERT_EQ(entries.size(), 1u) << method << " " << path;
    const auto& a = entries[0];
    EXPECT_EQ(a.status, status) << a;
    EXPECT_EQ(a.token, token) << a;
    EXPECT_EQ(a.role, role) << a;
    EXPECT_EQ(a.method, method) << a;
    EXPECT_EQ(a.path, path) << a;
    EXPECT_EQ(a.flow_ids, flow_ids) << a;
    EXPECT_EQ(a.remote, "127.0.0.1") << a;
    EXPECT_TRUE(a.error_null) << a;
    EXPECT_EQ(a.time.size(), 24u) << a;  // 2026-11-29T02:49:20.123Z
    EXPECT_EQ(a.time.back(), 'Z') << a;
  };

  expectOne(call(editor, "POST", "/flows", R"([{"flow_id":"a1"},{"flow_id":"a2"}])"), 201, "ed",
            "editor", "POST", "/flows", {"a1", "a2"});
  expectOne(call(editor, "PUT", "/flows/a1", R"({"flow_id":"a1","name":"renamed"})"), 200, "ed",
            "editor", "PUT", "/flows/a1", {"a1"});
  expectOne(call(op, "PATCH", "/flows/commands", R"({"command":"start","flow_ids":["a2"]})"), 200,
            "ops", "operator", "PATCH", "/flows/commands", {"a2"});
  EXPECT_EQ(flowStatus("a2"), "running");
  expectOne(call(admin_, "PATCH", "/flows/commands", R"({"command":"stop","flow_ids":["a2"]})"),
            200, "boss", "admin", "PATCH", "/flows/commands", {"a2"});
  expectOne(call(editor, "DELETE", "/flows/a2"), 200, "ed", "editor", "DELETE", "/flows/a2",
            {"a2"});
  expectOne(call(admin_, "POST", "/tokens", R"({"name":"new","role":"viewer"})"), 201, "boss",
            "admin", "POST", "/tokens", {});
  expectOne(call(admin_, "DELETE", "/tokens/new"), 200, "boss", "admin", "DELETE", "/tokens/new",
            {});

  // Reads by every role leave nothing.
  for (const auto& s : {viewer, op, editor, admin_}) {
    for (const char* path :
         {"/flows", "/flows/a1", "/flows/status", "/flows/status/a1", "/plugins"}) {
      EXPECT_EQ(call(s, "GET", path).status, 200) << path;
    }
  }
  EXPECT_EQ(call(admin_, "GET", "/tokens").status, 200);
  EXPECT_EQ(call(admin_, "GET", "/audit").status, 200);
  auto after_gets = newAudit();
  EXPECT_TRUE(after_gets.empty()) << after_gets.size() << " entries, first " << after_gets[0];

  // A change that fails after admission is audited with its failure.
  auto r = call(editor, "DELETE", "/flows/nope");
  auto entries = newAudit();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].status, r.status) << entries[0];
  EXPECT_GE(r.status, 400);
  EXPECT_FALSE(entries[0].error.empty()) << entries[0];
  EXPECT_EQ(entries[0].flow_ids, std::vector<std::string>{"nope"}) << entries[0];
}

// ---------------------------------------------------------------------------------------------
// 4. Secrets are shown once, never listed; an issued token works at once.

TEST_F(AuditTest, TokenSecretsAreShownOnceAndNeverListed) {
  admin_ = cliCreateToken(data(), "root", "admin");
  startServer();

  auto created = asAdmin("POST", "/tokens", R"({"name":"ci","role":"viewer","expires":"1h"})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto doc = parseJson(created.body);
  EXPECT_EQ(strOf(doc, "name"), "ci");
  EXPECT_EQ(strOf(doc, "role"), "viewer");
  EXPECT_NE(strOf(doc, "created").find('T'), std::string::npos) << created.body;
  EXPECT_NE(strOf(doc, "expires").find('T'), std::string::npos) << created.body;
  ASSERT_TRUE(doc.HasMember("expired"));
  EXPECT_TRUE(doc["expired"].IsFalse());
  const std::string secret = strOf(doc, "token");
  ASSERT_EQ(secret.rfind("sluice_", 0), 0u) << created.body;
  EXPECT_EQ(secret.size(), 7u + 64u);

  // It works at once, with its role.
  EXPECT_EQ(call(secret, "GET", "/flows").status, 200);
  expect403(call(secret, "POST", "/flows", R"([{"flow_id":"x"}])"), "editor", "viewer POST");

  auto noSecrets = [&](const std::string& body, const std::string& what) {
    auto list = parseJson(body);
    ASSERT_TRUE(list.IsArray()) << what << ": " << body;
    for (const auto& t : list.GetArray()) {
      EXPECT_FALSE(t.HasMember("token")) << what << ": " << body;
      EXPECT_FALSE(t.HasMember("hash")) << what << ": " << body;
    }
    std::vector<std::string> strings;
    collectStrings(list, strings);
    for (const auto& s : strings) {
      EXPECT_NE(s.rfind("sluice_", 0), 0u) << what << " shows a secret: " << body;
    }
    EXPECT_EQ(body.find(secret), std::string::npos) << what;
    EXPECT_EQ(body.find(admin_), std::string::npos) << what;
    EXPECT_EQ(body.find(secret.substr(7)), std::string::npos) << what;
  };

  auto list = asAdmin("GET", "/tokens");
  ASSERT_EQ(list.status, 200);
  noSecrets(list.body, "GET /tokens");
  EXPECT_NE(list.body.find(R"("name":"ci")"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find(R"("name":"root")"), std::string::npos) << list.body;

  // A duplicate live name is refused, and still shows nothing.
  auto dup = asAdmin("POST", "/tokens", R"({"name":"ci","role":"admin"})");
  EXPECT_EQ(dup.status, 409) << dup.body;
  EXPECT_EQ(dup.body.find("sluice_"), std::string::npos) << dup.body;
  noSecrets(asAdmin("GET", "/tokens").body, "GET /tokens after the duplicate");

  // Nor does the CLI's list, nor the audit log.
  auto cli = runCli({"token", "list", "--json", "--data-dir", data().string()});
  EXPECT_EQ(cli.exit_code, 0);
  noSecrets(trimLine(cli.out), "token list --json");
  auto audit = asAdmin("GET", "/audit?limit=1000");
  EXPECT_EQ(audit.body.find("sluice_"), std::string::npos) << audit.body;

  // Revoked: gone from the list, refused at once; unknown names are 404.
  auto del = asAdmin("DELETE", "/tokens/ci");
  EXPECT_EQ(del.status, 200) << del.body;
  EXPECT_TRUE(jsonEqual(del.body, R"({"status":"Token revoked","name":"ci"})")) << del.body;
  expect401(call(secret, "GET", "/flows"), "revoked ci");
  EXPECT_EQ(asAdmin("GET", "/tokens").body.find(R"("name":"ci")"), std::string::npos);
  EXPECT_EQ(asAdmin("DELETE", "/tokens/nope").status, 404);
}

// ---------------------------------------------------------------------------------------------
// 5. Paging the audit log.

TEST_F(AuditTest, PagingWithAfterLimitAndLink) {
  admin_ = cliCreateToken(data(), "root", "admin");
  const std::string editor = cliCreateToken(data(), "ed", "editor");
  startServer();
  // 105 entries: validations are audited like any POST.
  for (int i = 0; i < 105; ++i) {
    ASSERT_EQ(call(editor, "POST", "/flows/validate", R"([{"flow_id":"v"}])").status, 200);
  }

  auto all_r = asAdmin("GET", "/audit?limit=1000");
  ASSERT_EQ(all_r.status, 200);
  EXPECT_EQ(all_r.header("link"), "") << "a page that is not full has no next";
  auto all = parseAudit(all_r.body);
  ASSERT_GE(all.size(), 105u);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].seq, all[i].seq);

  // The default page: 100 entries and a link to the next.
  auto first = asAdmin("GET", "/audit");
  ASSERT_EQ(first.status, 200);
  auto rows = parseAudit(first.body);
  ASSERT_EQ(rows.size(), 100u);
  EXPECT_EQ(rows.front().seq, all.front().seq);
  EXPECT_EQ(first.header("link"),
            "</audit?after=" + std::to_string(rows.back().seq) + "&limit=100>; rel=\"next\"");

  // Following the links with limit=7 walks the whole log once, in order.
  std::vector<int64_t> walked;
  std::string next = "/audit?limit=7";
  int pages = 0;
  while (!next.empty() && pages < 100) {
    ++pages;
    auto r = asAdmin("GET", next);
    ASSERT_EQ(r.status, 200) << next << ": " << r.body;
    auto page = parseAudit(r.body);
    EXPECT_LE(page.size(), 7u);
    for (const auto& a : page) walked.push_back(a.seq);
    const std::string link = r.header("link");
    if (page.size() == 7) {
      EXPECT_EQ(link,
                "</audit?after=" + std::to_string(page.back().seq) + "&limit=7>; rel=\"next\"");
    } else {
      EXPECT_EQ(link, "") << next;
    }
    next.clear();
    auto lt = link.find('<');
    auto gt = link.find('>');
    if (lt != std::string::npos && gt != std::string::npos && gt > lt) {
      next = link.substr(lt + 1, gt - lt - 1);
    }
  }
  std::vector<int64_t> expected;
  for (const auto& a : all) expected.push_back(a.seq);
  EXPECT_EQ(walked, expected);

  // after= skips up to and including that sequence number.
  auto r = asAdmin("GET", "/audit?after=" + std::to_string(all[4].seq) + "&limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  rows = parseAudit(r.body);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].seq, all[5].seq);
  EXPECT_EQ(rows[1].seq, all[6].seq);
  r = asAdmin("GET", "/audit?after=" + std::to_string(all.back().seq));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[]");
  EXPECT_EQ(r.header("link"), "");

  // The largest page is 1000; anything else is a 400 with a JSON error.
  EXPECT_EQ(asAdmin("GET", "/audit?limit=1000").status, 200);
  for (const char* bad : {"/audit?limit=0", "/audit?limit=abc", "/audit?after=-1",
                          "/audit?limit=1001", "/audit?after=abc", "/audit?limit=-5"}) {
    auto b = asAdmin("GET", bad);
    EXPECT_EQ(b.status, 400) << bad << ": " << b.body;
    EXPECT_NE(strOf(parseJson(b.body), "error").find_first_not_of(' '), std::string::npos)
        << bad << ": " << b.body;
  }
  // Paging is the admin's: an editor gets 403.
  expect403(call(editor, "GET", "/audit?limit=5"), "admin", "editor GET /audit");
}

// ---------------------------------------------------------------------------------------------
// 6. Brute force: an address is locked out after 20 failures; other addresses are not.

class LockoutTest : public SecureServer {};

TEST_F(LockoutTest, TwentyFailuresLockOutThatAddressOnly) {
  admin_ = cliCreateToken(data(), "root", "admin");
  startServer();  // the default limit: 20 failures within 10 s, locked for 30 s

  // Make sure 127.0.0.2 reaches the server at all before relying on it.
  auto other = requestFrom("127.0.0.2", port(), "GET", "/flows", bearer(admin_));
  ASSERT_EQ(other.status, 200) << other.body;

  for (int i = 0; i < 20; ++i) {
    auto r = call(i % 2 == 0 ? "" : "sluice_" + std::string(64, 'f'), "GET", "/flows");
    expect401(r, "failure " + std::to_string(i + 1));
  }
  auto locked = call("", "GET", "/flows");
  EXPECT_EQ(locked.status, 429) << locked.body;
  const std::string retry = locked.header("retry-after");
  ASSERT_FALSE(retry.empty());
  EXPECT_GT(std::stoi(retry), 0);
  EXPECT_LE(std::stoi(retry), 30);
  EXPECT_FALSE(strOf(parseJson(locked.body), "error").empty()) << locked.body;
  // A valid token from the locked address is refused too, while the lockout lasts.
  auto valid = call(admin_, "GET", "/flows");
  EXPECT_EQ(valid.status, 429) << valid.body;
  EXPECT_FALSE(valid.header("retry-after").empty());

  // Another source address is unaffected: admitted with a token, 401 (not 429) without.
  other = requestFrom("127.0.0.2", port(), "GET", "/flows", bearer(admin_));
  EXPECT_EQ(other.status, 200) << other.body;
  expect401(requestFrom("127.0.0.2", port(), "GET", "/flows", {}), "127.0.0.2 without a token");

  // The 401s are audited, the 429s are not.
  auto audit = requestFrom("127.0.0.2", port(), "GET", "/audit?limit=1000", bearer(admin_));
  ASSERT_EQ(audit.status, 200) << audit.body;
  int refused_here = 0, refused_there = 0;
  for (const auto& a : parseAudit(audit.body)) {
    EXPECT_NE(a.status, 429) << a;
    if (a.status == 401 && a.remote == "127.0.0.1") ++refused_here;
    if (a.status == 401 && a.remote == "127.0.0.2") ++refused_there;
  }
  EXPECT_EQ(refused_here, 20);
  EXPECT_EQ(refused_there, 1);
}

TEST_F(LockoutTest, LockedAddressRecoversAfterTheLockout) {
  admin_ = cliCreateToken(data(), "root", "admin");
  startServer({"--auth-lockout", "1s"});

  for (int i = 0; i < 20; ++i) expect401(call("", "GET", "/flows"), "failure " + std::to_string(i));
  auto locked = call(admin_, "GET", "/flows");
  ASSERT_EQ(locked.status, 429) << locked.body;
  EXPECT_EQ(locked.header("retry-after"), "1");

  // Admitted again once the second has passed.
  EXPECT_TRUE(waitFor([&] { return call(admin_, "GET", "/flows").status == 200; }, 10s));
  // The count starts over: one more failure is a 401, not a 429.
  expect401(call("", "GET", "/flows"), "a failure after the lockout");
  EXPECT_EQ(call(admin_, "GET", "/flows").status, 200);
}

TEST_F(LockoutTest, TheLimitIsConfigurable) {
  admin_ = cliCreateToken(data(), "root", "admin");
  startServer({"--auth-max-failures", "3"});
  for (int i = 0; i < 3; ++i) expect401(call("", "GET", "/flows"), "failure " + std::to_string(i));
  EXPECT_EQ(call("", "GET", "/flows").status, 429);

  // 0 disables the lockout.
  server_.reset();
  startServer({"--auth-max-failures", "0"});
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(call("", "GET", "/flows").status, 401) << "failure " << i + 1;
  }
  EXPECT_EQ(call(admin_, "GET", "/flows").status, 200);
}

}  // namespace
}  // namespace sluice::test
