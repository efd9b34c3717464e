// Security operations against the real binary (issue #8): the `sluice token` CLI and how tokens
// are stored, the start-up decision on authentication (open on loopback, refused elsewhere), the
// switch from open to required at the first token, HTTPS, and the audit log across kill -9.
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Helpers

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// A fresh directory for the current test under SLUICE_TEST_TMP.
fs::path testDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(SLUICE_TEST_TMP) /
                 ("ops-" + std::string(info->test_suite_name()) + "-" + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or did not finish in time
  std::string out;
  std::string err;
};

/// Runs SLUICE_BINARY with `args` to completion (bounded by `deadline`), capturing its output.
RunResult runSluice(const std::vector<std::string>& args, const fs::path& capture_dir,
                    std::chrono::milliseconds deadline = 20s) {
  static std::atomic<int> counter{0};
  const int n = counter++;
  fs::create_directories(capture_dir);
  const fs::path out_file = capture_dir / ("run" + std::to_string(n) + ".out");
  const fs::path err_file = capture_dir / ("run" + std::to_string(n) + ".err");
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
std::string shell(const std::string& cmd, int* rc = nullptr) {
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

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string sha256Hex(const std::string& text) {
  std::string out = shell("printf %s '" + text + "' | sha256sum");
  return out.substr(0, out.find(' '));
}

bool isSecret(const std::string& s) {
  static const std::regex re("^sluice_[0-9a-f]{64}$");
  return std::regex_match(s, re);
}

/// `sluice token create`; returns the secret (fails the test when it is not printed).
std::string createToken(const fs::path& data_dir, const std::string& name, const std::string& role,
                        const fs::path& capture_dir) {
  auto r = runSluice(
      {"token", "create", "--name", name, "--role", role, "--data-dir", data_dir.string()},
      capture_dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string secret = trim(r.out);
  EXPECT_TRUE(isSecret(secret)) << "stdout: " << r.out;
  return secret;
}

std::string bearer(const std::string& secret) { return "Authorization: Bearer " + secret; }

std::vector<std::string> serverArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "--log-level", "debug"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

size_t countOccurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) {
    ++n;
  }
  return n;
}

/// A sluice server started with exactly the arguments given (for listen addresses other than
/// the 127.0.0.1:0 that ServerProcess passes). Reads "listening on HOST:PORT" from stdout.
class RawServer {
 public:
  RawServer(const std::vector<std::string>& args, const fs::path& log) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv_s = {SLUICE_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (logfd >= 0) ::dup2(logfd, 2);
      ::close(out[0]);
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(SLUICE_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    std::string line;
    auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char c;
      if (::read(out_, &c, 1) != 1) break;  // exited without listening
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      if (line.rfind("listening on ", 0) == 0) {
        listening_line_ = line;
        auto pos = line.rfind(':');
        port_ = static_cast<uint16_t>(std::stoi(line.substr(pos + 1)));
        return;
      }
      line.clear();
    }
  }
  ~RawServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;
  uint16_t port() const { return port_; }
  const std::string& listeningLine() const { return listening_line_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  uint16_t port_ = 0;
  std::string listening_line_;
};

// ---------------------------------------------------------------------------------------------
// The token CLI and how tokens are stored

TEST(TokenCli, CreatePrintsOneSecretAndListNeverShowsIt) {
  const fs::path dir = testDir();
  const fs::path data = dir / "data";
  auto r = runSluice(
      {"token", "create", "--name", "alice", "--role", "admin", "--data-dir", data.string()}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string secret = trim(r.out);
  EXPECT_TRUE(isSecret(secret)) << "stdout must be the secret alone: " << r.out;
  EXPECT_EQ(r.err.find(secret), std::string::npos) << "the secret is printed once, on stdout";

  auto j = runSluice({"token", "create", "--name", "bob", "--role", "viewer", "--expires", "30d",
                      "--data-dir", data.string(), "--json"},
                     dir);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = parseJson(j.out);
  ASSERT_TRUE(doc.IsObject()) << j.out;
  EXPECT_STREQ(doc["name"].GetString(), "bob");
  EXPECT_STREQ(doc["role"].GetString(), "viewer");
  ASSERT_TRUE(doc.HasMember("token"));
  const std::string bob_secret = doc["token"].GetString();
  EXPECT_TRUE(isSecret(bob_secret)) << j.out;
  EXPECT_NE(bob_secret, secret);
  ASSERT_TRUE(doc.HasMember("expires"));
  EXPECT_TRUE(doc["expires"].IsString()) << "--expires 30d gives an expiry: " << j.out;

  auto l = runSluice({"token", "list", "--data-dir", data.string()}, dir);
  ASSERT_EQ(l.exit_code, 0) << l.err;
  std::istringstream lines(l.out);
  std::string header;
  std::getline(lines, header);
  for (const char* col : {"NAME", "ROLE", "CREATED", "EXPIRES"}) {
    EXPECT_NE(header.find(col), std::string::npos) << "header: " << header;
  }
  EXPECT_NE(l.out.find("alice"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("bob"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("admin"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("viewer"), std::string::npos) << l.out;
  for (const auto& s : {secret, bob_secret}) {
    EXPECT_EQ(l.out.find(s), std::string::npos) << "list shows a secret";
    EXPECT_EQ(l.out.find(s.substr(7)), std::string::npos) << "list shows a secret";
  }

  auto lj = runSluice({"token", "list", "--data-dir", data.string(), "--json"}, dir);
  ASSERT_EQ(lj.exit_code, 0) << lj.err;
  auto arr = parseJson(lj.out);
  ASSERT_TRUE(arr.IsArray()) << lj.out;
  EXPECT_EQ(arr.Size(), 2u);
  for (const auto& t : arr.GetArray()) {
    EXPECT_FALSE(t.HasMember("token")) << lj.out;
    EXPECT_TRUE(t.HasMember("name"));
    EXPECT_TRUE(t.HasMember("role"));
  }
  EXPECT_EQ(lj.out.find(secret.substr(7)), std::string::npos);
  EXPECT_EQ(lj.out.find(bob_secret.substr(7)), std::string::npos);
}

TEST(TokenCli, ErrorsDuplicateBadRoleUnknownRevoke) {
  const fs::path dir = testDir();
  const std::string data = (dir / "data").string();
  createToken(data, "ops", "operator", dir);

  auto dup =
      runSluice({"token", "create", "--name", "ops", "--role", "admin", "--data-dir", data}, dir);
  EXPECT_EQ(dup.exit_code, 1) << dup.out << dup.err;
  EXPECT_NE(dup.err.find("ops"), std::string::npos) << dup.err;
  EXPECT_NE(dup.err.find("exists"), std::string::npos) << dup.err;
  EXPECT_EQ(trim(dup.out), "") << "no secret for a refused token";

  auto role =
      runSluice({"token", "create", "--name", "x", "--role", "root", "--data-dir", data}, dir);
  EXPECT_NE(role.exit_code, 0);
  EXPECT_NE(role.exit_code, -1);
  EXPECT_NE(role.err.find("role"), std::string::npos) << role.err;
  EXPECT_EQ(trim(role.out), "");

  auto unknown = runSluice({"token", "revoke", "nobody", "--data-dir", data}, dir);
  EXPECT_EQ(unknown.exit_code, 1) << unknown.err;
  EXPECT_NE(unknown.err.find("nobody"), std::string::npos) << unknown.err;

  // Nothing of that changed the book: only "ops" is there.
  auto l = runSluice({"token", "list", "--data-dir", data, "--json"}, dir);
  ASSERT_EQ(l.exit_code, 0);
  auto arr = parseJson(l.out);
  ASSERT_TRUE(arr.IsArray());
  ASSERT_EQ(arr.Size(), 1u) << l.out;
  EXPECT_STREQ(arr[0]["name"].GetString(), "ops");
  EXPECT_STREQ(arr[0]["role"].GetString(), "operator");
}

TEST(TokenCli, RevokeRemovesFromListAndFreesTheName) {
  const fs::path dir = testDir();
  const std::string data = (dir / "data").string();
  const std::string first = createToken(data, "ci", "editor", dir);
  auto rv = runSluice({"token", "revoke", "ci", "--data-dir", data}, dir);
  EXPECT_EQ(rv.exit_code, 0) << rv.err;
  auto l = runSluice({"token", "list", "--data-dir", data}, dir);
  EXPECT_EQ(l.out.find("ci\t"), std::string::npos) << l.out;
  auto again = runSluice({"token", "revoke", "ci", "--data-dir", data}, dir);
  EXPECT_EQ(again.exit_code, 1) << "a revoked token cannot be revoked again";
  // A revoked name is no longer live: it may be issued again, with a new secret.
  const std::string second = createToken(data, "ci", "viewer", dir);
  EXPECT_NE(first, second);
}

TEST(TokenCli, StoredOnlyAsSha256Hash) {
  const fs::path dir = testDir();
  const fs::path data = dir / "data";
  const std::string cli_secret = createToken(data, "root", "admin", dir);
  ASSERT_TRUE(isSecret(cli_secret));

  // And one issued by the server, checked while it still runs (its WAL is live).
  ServerProcess server(SLUICE_BINARY, data, serverArgs(), (dir / "sluice.log").string());
  auto r = requestWith(server.port(), "POST", "/tokens", {bearer(cli_secret)},
                       R"({"name":"web","role":"viewer"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto doc = parseJson(r.body);
  ASSERT_TRUE(doc.HasMember("token"));
  const std::string api_secret = doc["token"].GetString();
  ASSERT_TRUE(isSecret(api_secret)) << r.body;

  auto dbBytes = [&] {
    std::string all;
    for (const auto& e : fs::directory_iterator(data)) {
      if (e.path().filename().string().rfind("sluice.db", 0) == 0) all += readFile(e.path());
    }
    return all;
  };
  auto check = [&](const char* when) {
    const std::string bytes = dbBytes();
    ASSERT_FALSE(bytes.empty());
    for (const auto& s : {cli_secret, api_secret}) {
      EXPECT_EQ(bytes.find(s), std::string::npos) << when << ": the secret is in the database";
      EXPECT_EQ(bytes.find(s.substr(7)), std::string::npos)
          << when << ": the secret's random part is in the database";
      const std::string h = sha256Hex(s);
      ASSERT_EQ(h.size(), 64u);
      EXPECT_NE(bytes.find(h), std::string::npos) << when << ": sha256 " << h << " not stored";
    }
  };
  check("server running");
  server.kill(SIGTERM);
  check("server stopped");
  // Nor is a secret ever logged.
  const std::string log = readFile(dir / "sluice.log");
  for (const auto& s : {cli_secret, api_secret}) {
    EXPECT_EQ(log.find(s.substr(7)), std::string::npos) << "the server logged a secret";
  }
  // Both tokens work on the next start, from their hashes.
  ServerProcess again(SLUICE_BINARY, data, serverArgs(), (dir / "sluice2.log").string());
  EXPECT_EQ(requestWith(again.port(), "GET", "/flows", {bearer(api_secret)}).status, 200);
  EXPECT_EQ(requestWith(again.port(), "GET", "/tokens", {bearer(cli_secret)}).status, 200);
}

TEST(TokenCli, WorksBesideARunningServer) {
  const fs::path dir = testDir();
  const fs::path data = dir / "data";
  const std::string admin = createToken(data, "adm", "admin", dir);
  ServerProcess server(SLUICE_BINARY, data, serverArgs(), (dir / "sluice.log").string());
  ASSERT_EQ(requestWith(server.port(), "GET", "/flows", {bearer(admin)}).status, 200);

  // Created while the server runs: the server takes it on its next request.
  const std::string viewer = createToken(data, "viewer1", "viewer", dir);
  auto r = requestWith(server.port(), "GET", "/flows", {bearer(viewer)});
  EXPECT_EQ(r.status, 200) << r.body;
  auto l = runSluice({"token", "list", "--data-dir", data.string()}, dir);
  EXPECT_EQ(l.exit_code, 0);
  EXPECT_NE(l.out.find("viewer1"), std::string::npos) << l.out;

  // Revoked while the server runs: refused from the next request on.
  auto rv = runSluice({"token", "revoke", "viewer1", "--data-dir", data.string()}, dir);
  ASSERT_EQ(rv.exit_code, 0) << rv.err;
  r = requestWith(server.port(), "GET", "/flows", {bearer(viewer)});
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(requestWith(server.port(), "GET", "/flows", {bearer(admin)}).status, 200);

  // The token the server issued shows in the CLI's list, without its secret.
  r = requestWith(server.port(), "POST", "/tokens", {bearer(admin)},
                  R"({"name":"from-api","role":"operator"})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string api_secret = parseJson(r.body)["token"].GetString();
  l = runSluice({"token", "list", "--data-dir", data.string()}, dir);
  EXPECT_NE(l.out.find("from-api"), std::string::npos) << l.out;
  EXPECT_EQ(l.out.find(api_secret.substr(7)), std::string::npos);
}

// The CLI opens the same SQLite database as the server; a brief lock held by another connection
// (the server's checkpoint when it closes, a write in progress) must be waited for (the store's
// busy timeout), not fail at once with "database is locked".
TEST(TokenCli, WaitsForABriefDatabaseLockInsteadOfFailing) {
  const fs::path dir = testDir();
  const fs::path data = dir / "data";
  createToken(data, "first", "admin", dir);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((data / "sluice.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; "
                         "SELECT count(*) FROM tokens;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  // Release the lock after a second, while the CLI is (should be) waiting for it.
  std::thread release([db] {
    std::this_thread::sleep_for(1s);
    sqlite3_exec(db, "COMMIT;", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  });
  auto r = runSluice(
      {"token", "create", "--name", "second", "--role", "viewer", "--data-dir", data.string()},
      dir);
  release.join();
  EXPECT_EQ(r.exit_code, 0) << "sluice token create failed while another connection held the "
                               "database for one second: "
                            << r.err;
  EXPECT_TRUE(isSecret(trim(r.out))) << r.out;
}

// ---------------------------------------------------------------------------------------------
// Start-up: open on loopback, refused elsewhere, switched to required by the first token

TEST(AuthMode, OpenOnLoopbackWithoutTokensLogsItOnce) {
  const fs::path dir = testDir();
  const fs::path log = dir / "sluice.log";
  ServerProcess server(SLUICE_BINARY, dir / "data", serverArgs(), log.string());
  // The seed's curl examples work as they are: no Authorization header.
  auto r = request(server.port(), "POST", "/flows", R"([{"flow_id":"open1"}])");
  EXPECT_EQ(r.status, 201) << r.body;
  r = request(server.port(), "GET", "/flows");
  EXPECT_EQ(r.status, 200) << r.body;
  r = request(server.port(), "PATCH", "/flows/commands", R"({"command":"start"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(request(server.port(), "GET", "/flows/status/open1").status, 200);
  EXPECT_EQ(countOccurrences(readFile(log), "without authentication"), 1u) << readFile(log);
}

TEST(AuthMode, FirstTokenFromTheApiSwitchesToRequired) {
  const fs::path dir = testDir();
  ServerProcess server(SLUICE_BINARY, dir / "data", serverArgs(), (dir / "sluice.log").string());
  EXPECT_EQ(request(server.port(), "GET", "/flows").status, 200);
  auto r = request(server.port(), "POST", "/tokens", R"({"name":"root","role":"admin"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto doc = parseJson(r.body);
  ASSERT_TRUE(doc.HasMember("token")) << r.body;
  const std::string secret = doc["token"].GetString();
  EXPECT_TRUE(isSecret(secret));

  r = request(server.port(), "GET", "/flows");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.header("www-authenticate").find("Bearer"), std::string::npos);
  EXPECT_EQ(request(server.port(), "POST", "/flows", R"([{"flow_id":"x"}])").status, 401);
  EXPECT_EQ(request(server.port(), "POST", "/tokens", R"({"name":"sneaky","role":"admin"})").status,
            401);
  EXPECT_EQ(requestWith(server.port(), "GET", "/flows", {bearer(secret)}).status, 200);
  EXPECT_EQ(requestWith(server.port(), "GET", "/flows", {bearer("sluice_" + std::string(64, '0'))})
                .status,
            401);

  // Restarted: a token exists, so authentication is required from the start.
  server.kill(SIGTERM);
  ServerProcess again(SLUICE_BINARY, dir / "data", serverArgs(), (dir / "sluice2.log").string());
  EXPECT_EQ(request(again.port(), "GET", "/flows").status, 401);
  EXPECT_EQ(requestWith(again.port(), "GET", "/flows", {bearer(secret)}).status, 200);
  EXPECT_EQ(readFile(dir / "sluice2.log").find("without authentication"), std::string::npos);
}

TEST(AuthMode, FirstTokenFromTheCliSwitchesARunningServerToRequired) {
  const fs::path dir = testDir();
  const fs::path data = dir / "data";
  ServerProcess server(SLUICE_BINARY, data, serverArgs(), (dir / "sluice.log").string());
  EXPECT_EQ(request(server.port(), "GET", "/flows").status, 200);
  EXPECT_EQ(request(server.port(), "POST", "/flows", R"([{"flow_id":"before"}])").status, 201);
  const std::string secret = createToken(data, "root", "admin", dir);
  auto r = request(server.port(), "GET", "/flows");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(request(server.port(), "DELETE", "/flows/before").status, 401);
  r = requestWith(server.port(), "GET", "/flows", {bearer(secret)});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("before"), std::string::npos) << r.body;
  // Revoking the only token does not reopen the server.
  ASSERT_EQ(runSluice({"token", "revoke", "root", "--data-dir", data.string()}, dir).exit_code, 0);
  EXPECT_EQ(request(server.port(), "GET", "/flows").status, 401);
}

TEST(AuthMode, RequiredWithoutTokensRefusesEveryRequest) {
  const fs::path dir = testDir();
  ServerProcess server(SLUICE_BINARY, dir / "data", serverArgs({"--auth", "required"}),
                       (dir / "sluice.log").string());
  EXPECT_EQ(request(server.port(), "GET", "/flows").status, 401);
  EXPECT_EQ(request(server.port(), "POST", "/tokens", R"({"name":"r","role":"admin"})").status,
            401);
}

TEST(AuthMode, NonLoopbackWithoutTokensRefusesToStart) {
  const fs::path dir = testDir();
  auto r = runSluice({"--listen", "0.0.0.0:0", "--data-dir", (dir / "data").string(),
                      "--plugin-dir", SLUICE_TEST_PLUGIN_DIR},
                     dir);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("refusing to listen on 0.0.0.0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--auth none"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
}

TEST(AuthMode, NonLoopbackWithAuthNoneServesWithoutTokens) {
  const fs::path dir = testDir();
  RawServer server({"--listen", "0.0.0.0:0", "--data-dir", (dir / "data").string(), "--plugin-dir",
                    SLUICE_TEST_PLUGIN_DIR, "--auth", "none"},
                   dir / "sluice.log");
  ASSERT_NE(server.port(), 0) << readFile(dir / "sluice.log");
  EXPECT_EQ(server.listeningLine().rfind("listening on 0.0.0.0:", 0), 0u) << server.listeningLine();
  EXPECT_EQ(request(server.port(), "POST", "/flows", R"([{"flow_id":"a"}])").status, 201);
  EXPECT_EQ(request(server.port(), "GET", "/flows/a").status, 200);
  EXPECT_NE(readFile(dir / "sluice.log").find("without authentication"), std::string::npos);
}

TEST(AuthMode, NonLoopbackWithATokenStartsAndRequiresIt) {
  const fs::path dir = testDir();
  const fs::path data = dir / "data";
  const std::string secret = createToken(data, "root", "admin", dir);
  RawServer server({"--listen", "0.0.0.0:0", "--data-dir", data.string(), "--plugin-dir",
                    SLUICE_TEST_PLUGIN_DIR},
                   dir / "sluice.log");
  ASSERT_NE(server.port(), 0) << readFile(dir / "sluice.log");
  auto r = request(server.port(), "GET", "/flows");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(requestWith(server.port(), "GET", "/flows", {bearer(secret)}).status, 200);
}

// ---------------------------------------------------------------------------------------------
// TLS

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = fs::path(SLUICE_TEST_TMP) / "ops-tls-certs";
    fs::remove_all(certs_);
    fs::create_directories(certs_);
    int rc = 0;
    shell("cd '" + certs_.string() +
              "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
              "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
              "2>openssl.err && openssl genrsa -out other-key.pem 2048 2>>openssl.err",
          &rc);
    ASSERT_EQ(rc, 0) << readFile(certs_ / "openssl.err");
    std::ofstream(certs_ / "garbage.pem") << "this is not a certificate\n";
  }
  static fs::path cert() { return certs_ / "cert.pem"; }
  static fs::path key() { return certs_ / "key.pem"; }
  std::vector<std::string> tlsArgs(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"--tls-cert", cert().string(), "--tls-key", key().string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return serverArgs(a);
  }
  /// curl over HTTPS; returns "<status>\n<body>" pieces.
  struct Curl {
    int status = 0;
    std::string body;
    std::string all;  // with -i: the head too
  };
  static Curl curl(uint16_t port, const std::string& path, const std::string& opts = "",
                   bool with_head = false) {
    int rc = 0;
    std::string out = shell("curl -sS --max-time 20 --cacert '" + cert().string() + "' " +
                                (with_head ? "-i " : "") + opts +
                                " -w '\\n%{http_code}' 'https://127.0.0.1:" + std::to_string(port) +
                                path + "' 2>&1",
                            &rc);
    Curl c;
    auto nl = out.rfind('\n');
    if (nl != std::string::npos) {
      try {
        c.status = std::stoi(out.substr(nl + 1));
      } catch (...) {
      }
      c.all = out.substr(0, nl);
    }
    auto head_end = c.all.find("\r\n\r\n");
    c.body = (with_head && head_end != std::string::npos) ? c.all.substr(head_end + 4) : c.all;
    return c;
  }
  static inline fs::path certs_;
};

TEST_F(TlsTest, ServesHttpsOnly) {
  const fs::path dir = testDir();
  ServerProcess server(SLUICE_BINARY, dir / "data", tlsArgs(), (dir / "sluice.log").string());
  auto c = curl(server.port(), "/flows");
  EXPECT_EQ(c.status, 200) << c.all;
  EXPECT_EQ(c.body, "[]");
  // Plain HTTP to the TLS port never gets an answer of 200.
  int plain_status = 0;
  try {
    plain_status = request(server.port(), "GET", "/flows", "", false, 5000).status;
  } catch (const std::exception&) {
    plain_status = -1;  // closed or not HTTP: fine
  }
  EXPECT_NE(plain_status, 200);
  int rc = 0;
  std::string out =
      shell("curl -sS --max-time 10 -o /dev/null -w '%{http_code}' 'http://127.0.0.1:" +
                std::to_string(server.port()) + "/flows' 2>/dev/null",
            &rc);
  EXPECT_NE(out, "200");
  // The HTTPS side still works after the plain attempt.
  EXPECT_EQ(curl(server.port(), "/flows").status, 200);
}

TEST_F(TlsTest, TokensOverHttpsAndWwwAuthenticateOn401) {
  const fs::path dir = testDir();
  const fs::path data = dir / "data";
  const std::string admin = createToken(data, "adm", "admin", dir);
  const std::string viewer = createToken(data, "view", "viewer", dir);
  ServerProcess server(SLUICE_BINARY, data, tlsArgs(), (dir / "sluice.log").string());

  auto c = curl(server.port(), "/flows", "", true);
  EXPECT_EQ(c.status, 401) << c.all;
  EXPECT_NE(lower(c.all).find("www-authenticate: bearer"), std::string::npos) << c.all;

  c = curl(server.port(), "/flows", "-H 'Authorization: Bearer " + admin + "'");
  EXPECT_EQ(c.status, 200) << c.all;
  EXPECT_EQ(c.body, "[]");

  c = curl(server.port(), "/flows",
           "-X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer " + admin +
               "' --data '[{\"flow_id\":\"tls1\",\"type\":\"ticker\",\"config\":{\"interval_ms\":"
               "50}}]'");
  EXPECT_EQ(c.status, 201) << c.all;

  c = curl(server.port(), "/flows/status/tls1", "-H 'Authorization: Bearer " + viewer + "'");
  EXPECT_EQ(c.status, 200) << c.all;
  auto doc = parseJson(c.body);
  ASSERT_TRUE(doc.IsObject()) << c.body;
  ASSERT_TRUE(doc.HasMember("status")) << c.body;
  EXPECT_STREQ(doc["status"].GetString(), "stopped");

  // The viewer may not change anything, over TLS too.
  c = curl(server.port(), "/flows/tls1", "-X DELETE -H 'Authorization: Bearer " + viewer + "'");
  EXPECT_EQ(c.status, 403) << c.all;
  // A wrong token is a 401 with the challenge.
  c = curl(server.port(), "/flows/status/tls1",
           "-H 'Authorization: Bearer sluice_" + std::string(64, 'f') + "'", true);
  EXPECT_EQ(c.status, 401) << c.all;
  EXPECT_NE(lower(c.all).find("www-authenticate: bearer"), std::string::npos) << c.all;
}

TEST_F(TlsTest, BadCertificateRefusesToStart) {
  const fs::path dir = testDir();
  auto start = [&](const fs::path& c, const fs::path& k) {
    return runSluice(
        {"--listen", "127.0.0.1:0", "--data-dir", (dir / "data").string(), "--plugin-dir",
         SLUICE_TEST_PLUGIN_DIR, "--tls-cert", c.string(), "--tls-key", k.string()},
        dir);
  };
  auto garbage = start(certs_ / "garbage.pem", key());
  EXPECT_NE(garbage.exit_code, 0);
  EXPECT_NE(garbage.exit_code, -1);
  EXPECT_NE(garbage.err.find("cannot use the TLS certificate"), std::string::npos) << garbage.err;
  EXPECT_EQ(garbage.out.find("listening on"), std::string::npos);

  auto garbage_key = start(cert(), certs_ / "garbage.pem");
  EXPECT_NE(garbage_key.exit_code, 0);
  EXPECT_NE(garbage_key.exit_code, -1);
  EXPECT_NE(garbage_key.err.find("cannot use the TLS certificate"), std::string::npos)
      << garbage_key.err;

  auto mismatch = start(cert(), certs_ / "other-key.pem");
  EXPECT_NE(mismatch.exit_code, 0);
  EXPECT_NE(mismatch.exit_code, -1);
  EXPECT_NE(mismatch.err.find("cannot use the TLS certificate"), std::string::npos) << mismatch.err;
  EXPECT_EQ(mismatch.out.find("listening on"), std::string::npos);
}

TEST_F(TlsTest, IncompleteOrMissingFilesAreUsageErrors) {
  const fs::path dir = testDir();
  const std::string data = (dir / "data").string();
  auto only_cert = runSluice(
      {"--listen", "127.0.0.1:0", "--data-dir", data, "--tls-cert", cert().string()}, dir);
  EXPECT_EQ(only_cert.exit_code, 2) << only_cert.err;
  EXPECT_NE(only_cert.err.find("--tls-key"), std::string::npos) << only_cert.err;
  auto only_key =
      runSluice({"--listen", "127.0.0.1:0", "--data-dir", data, "--tls-key", key().string()}, dir);
  EXPECT_EQ(only_key.exit_code, 2) << only_key.err;
  auto missing = runSluice({"--listen", "127.0.0.1:0", "--data-dir", data, "--tls-cert",
                            (dir / "nope.pem").string(), "--tls-key", key().string()},
                           dir);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.exit_code, -1);
  EXPECT_NE(missing.err.find("nope.pem"), std::string::npos) << missing.err;
  EXPECT_EQ(missing.out.find("listening on"), std::string::npos);
}

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
                         {bearer(admin)});
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
    dir_ = testDir();
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
      std::vector<std::string> headers;
      if (!secret.empty()) headers.push_back(bearer(secret));
      r = requestWith(server_->port(), method, path, headers, body, !body.empty(), 10000);
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
        EXPECT_EQ(requestWith(server_->port(), "GET", "/flows/" + id, {bearer(admin_)}).status, 200)
            << id;
      }
    }
  }
}

// A command's audit entry names the flows it addressed, whether they were listed in flow_ids or
// implied (no flow_ids: every flow).
TEST_F(AuditKillTest, CommandEntryNamesItsFlows) {
  start("sluice.log");
  auto r = requestWith(server_->port(), "POST", "/flows", {bearer(editor_)},
                       R"([{"flow_id":"m1"},{"flow_id":"m2"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  r = requestWith(server_->port(), "PATCH", "/flows/commands", {bearer(operator_)},
                  R"({"command":"start","flow_ids":["m1"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = requestWith(server_->port(), "PATCH", "/flows/commands", {bearer(operator_)},
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
  const fs::path dir = testDir();
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
