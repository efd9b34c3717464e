// Security integration helpers: the sluice CLI (token create/list/revoke), bearer headers, audit
// rows from GET /audit, requests from another source address, and a server started with tokens.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "fakes/api_fixture.hpp"
#include "fakes/raw_connection.hpp"

namespace sluice::test {

// ---------------------------------------------------------------------------------------------
// Files, processes and the CLI

inline std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// A fresh directory for the current test: SLUICE_TEST_TMP/<prefix>-<suite>-<test>.
inline std::filesystem::path testDir(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(SLUICE_TEST_TMP) /
                              (prefix + "-" + info->test_suite_name() + "-" + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or did not finish in time
  std::string out;
  std::string err;
};

/// Runs SLUICE_BINARY with `args` to completion (bounded by `deadline`), capturing its output
/// in files under `capture_dir`.
inline RunResult runSluice(const std::vector<std::string>& args,
                           const std::filesystem::path& capture_dir,
                           std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  static std::atomic<int> counter{0};
  const int n = counter++;
  std::filesystem::create_directories(capture_dir);
  const std::filesystem::path out_file = capture_dir / ("run" + std::to_string(n) + ".out");
  const std::filesystem::path err_file = capture_dir / ("run" + std::to_string(n) + ".err");
  std::vector<std::string> argv_s = {SLUICE_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o >= 0) ::dup2(o, 1);
    if (e >= 0) ::dup2(e, 2);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(SLUICE_BINARY, argv.data());
    ::_exit(127);
  }
  RunResult r;
  int status = 0;
  const bool done = waitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, deadline);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    ADD_FAILURE() << "sluice did not finish within the deadline";
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  }
  r.out = readFile(out_file);
  r.err = readFile(err_file);
  return r;
}

/// Runs a shell command with popen; returns its stdout, and its exit status in *rc.
inline std::string shell(const std::string& cmd, int* rc = nullptr) {
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int status = ::pclose(f);
  if (rc != nullptr) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

inline bool isSecret(const std::string& s) {
  static const std::regex re("^sluice_[0-9a-f]{64}$");
  return std::regex_match(s, re);
}

/// `sluice token create`; returns the secret (fails the test when it is not printed).
inline std::string createToken(const std::filesystem::path& data_dir, const std::string& name,
                               const std::string& role, const std::filesystem::path& capture_dir,
                               const std::string& expires = "") {
  std::vector<std::string> args = {"token", "create", "--name", name, "--role", role};
  if (!expires.empty()) {
    args.push_back("--expires");
    args.push_back(expires);
  }
  args.push_back("--data-dir");
  args.push_back(data_dir.string());
  auto r = runSluice(args, capture_dir);
  EXPECT_EQ(r.exit_code, 0) << "token create " << name << ": " << r.err;
  std::string secret = trim(r.out);
  EXPECT_TRUE(isSecret(secret)) << "stdout: " << r.out;
  return secret;
}

/// The server's usual arguments (test plugins, debug log) followed by `extra`.
inline std::vector<std::string> serverArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "--log-level", "debug"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// ---------------------------------------------------------------------------------------------
// Requests

/// The Authorization header of `secret`; none for an empty secret.
inline std::vector<std::string> bearer(const std::string& secret) {
  if (secret.empty()) return {};
  return {"Authorization: Bearer " + secret};
}

inline bool hasBody(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

/// One request with extra headers, sent from a socket bound to `source` (e.g. 127.0.0.2) to
/// 127.0.0.1:port; Connection: close.
inline HttpResponse requestFrom(const char* source, uint16_t port, const std::string& method,
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
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
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

// ---------------------------------------------------------------------------------------------
// JSON access that never throws, and the audit log

inline std::string strOf(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return "<not an object>";
  auto it = v.FindMember(key);
  if (it == v.MemberEnd()) return "<missing>";
  if (!it->value.IsString()) return "<not a string>";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

/// Every string anywhere in `v` (values and member names).
inline void collectStrings(const rapidjson::Value& v, std::vector<std::string>& out) {
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
  std::string detail;  // empty when null
};

inline std::ostream& operator<<(std::ostream& os, const AuditRow& a) {
  os << "{seq " << a.seq << ", " << a.token << "/" << a.role << " from " << a.remote << ", "
     << a.method << " " << a.path << ", flow_ids [";
  for (const auto& f : a.flow_ids) os << f << " ";
  os << "], status " << a.status << ", error " << (a.error_null ? "null" : "\"" + a.error + "\"")
     << "}";
  return os;
}

inline std::vector<AuditRow> parseAudit(const std::string& body) {
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
    if (e.HasMember("detail") && e["detail"].IsString()) a.detail = e["detail"].GetString();
    rows.push_back(std::move(a));
  }
  return rows;
}

/// The 401 every authentication failure answers.
inline void expect401(const HttpResponse& r, const std::string& what) {
  EXPECT_EQ(r.status, 401) << what << ": " << r.body;
  EXPECT_EQ(r.header("www-authenticate"), "Bearer realm=\"sluice\"") << what;
  EXPECT_EQ(r.header("content-type"), "application/json") << what;
  auto doc = parseJson(r.body);
  EXPECT_TRUE(doc.IsObject() && doc.HasMember("error") && doc["error"].IsString() &&
              doc["error"].GetStringLength() > 0)
      << what << ": " << r.body;
}

/// The 403 of a valid token without the role `needed`.
inline void expect403(const HttpResponse& r, const std::string& needed, const std::string& what) {
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
    dir_ = testDir("security");
    std::filesystem::create_directories(data());
  }

  std::filesystem::path data() const { return dir_ / "data"; }

  /// `sluice token create` in data(); returns the secret.
  std::string cliToken(const std::string& name, const std::string& role,
                       const std::string& expires = "") {
    return createToken(data(), name, role, dir_, expires);
  }

  void startServer(std::vector<std::string> extra = {}) {
    server_.reset();
    server_ = std::make_unique<ServerProcess>(SLUICE_BINARY, data(), serverArgs(std::move(extra)),
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
  /// The entry at the cursor: the last one newAudit() returned.
  AuditRow lastAudit() {
    auto r = asAdmin("GET", "/audit?after=" + std::to_string(cursor_ - 1) + "&limit=1");
    auto rows = parseAudit(r.body);
    if (rows.size() != 1) {
      ADD_FAILURE() << "GET /audit at " << cursor_ << ": " << r.body;
      return {};
    }
    return rows[0];
  }

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

}  // namespace sluice::test
