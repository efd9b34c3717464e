// The start-up decision on authentication against the real binary (issue #8): open on loopback
// without tokens, refused elsewhere unless --auth none, and switched to required by the first
// token whether it comes from the API or the CLI.
#include <string>
#include <vector>

#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

size_t countOccurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) {
    ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Start-up: open on loopback, refused elsewhere, switched to required by the first token

TEST(AuthMode, OpenOnLoopbackWithoutTokensLogsItOnce) {
  const fs::path dir = testDir("ops");
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
  const fs::path dir = testDir("ops");
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
  EXPECT_EQ(requestWith(server.port(), "GET", "/flows", bearer(secret)).status, 200);
  EXPECT_EQ(
      requestWith(server.port(), "GET", "/flows", bearer("sluice_" + std::string(64, '0'))).status,
      401);

  // Restarted: a token exists, so authentication is required from the start.
  server.kill(SIGTERM);
  ServerProcess again(SLUICE_BINARY, dir / "data", serverArgs(), (dir / "sluice2.log").string());
  EXPECT_EQ(request(again.port(), "GET", "/flows").status, 401);
  EXPECT_EQ(requestWith(again.port(), "GET", "/flows", bearer(secret)).status, 200);
  EXPECT_EQ(readFile(dir / "sluice2.log").find("without authentication"), std::string::npos);
}

TEST(AuthMode, FirstTokenFromTheCliSwitchesARunningServerToRequired) {
  const fs::path dir = testDir("ops");
  const fs::path data = dir / "data";
  ServerProcess server(SLUICE_BINARY, data, serverArgs(), (dir / "sluice.log").string());
  EXPECT_EQ(request(server.port(), "GET", "/flows").status, 200);
  EXPECT_EQ(request(server.port(), "POST", "/flows", R"([{"flow_id":"before"}])").status, 201);
  const std::string secret = createToken(data, "root", "admin", dir);
  auto r = request(server.port(), "GET", "/flows");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(request(server.port(), "DELETE", "/flows/before").status, 401);
  r = requestWith(server.port(), "GET", "/flows", bearer(secret));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("before"), std::string::npos) << r.body;
  // Revoking the only token does not reopen the server, nor does a restart after it.
  ASSERT_EQ(runSluice({"token", "revoke", "root", "--data-dir", data.string()}, dir).exit_code, 0);
  EXPECT_EQ(request(server.port(), "GET", "/flows").status, 401);
  server.kill(SIGTERM);
  ServerProcess again(SLUICE_BINARY, data, serverArgs(), (dir / "sluice2.log").string());
  EXPECT_EQ(request(again.port(), "GET", "/flows").status, 401);
  EXPECT_EQ(request(again.port(), "POST", "/tokens", R"({"name":"x","role":"admin"})").status, 401);
}

TEST(AuthMode, ALockoutOfZeroIsRefused) {
  const fs::path dir = testDir("ops");
  auto r = runSluice(
      {"--listen", "127.0.0.1:0", "--data-dir", (dir / "data").string(), "--auth-lockout", "0s"},
      dir);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--auth-lockout"), std::string::npos) << r.err;
}

TEST(AuthMode, RequiredWithoutTokensRefusesEveryRequest) {
  const fs::path dir = testDir("ops");
  ServerProcess server(SLUICE_BINARY, dir / "data", serverArgs({"--auth", "required"}),
                       (dir / "sluice.log").string());
  EXPECT_EQ(request(server.port(), "GET", "/flows").status, 401);
  EXPECT_EQ(request(server.port(), "POST", "/tokens", R"({"name":"r","role":"admin"})").status,
            401);
}

TEST(AuthMode, NonLoopbackWithoutTokensRefusesToStart) {
  const fs::path dir = testDir("ops");
  auto r = runSluice({"--listen", "0.0.0.0:0", "--data-dir", (dir / "data").string(),
                      "--plugin-dir", SLUICE_TEST_PLUGIN_DIR},
                     dir);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("refusing to listen on 0.0.0.0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--auth none"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("listening on"), std::string::npos) << r.out;
}

TEST(AuthMode, NonLoopbackWithAuthNoneServesWithoutTokens) {
  const fs::path dir = testDir("ops");
  ServerProcess server(ServerProcess::ExactArgs{}, SLUICE_BINARY,
                       {"--listen", "0.0.0.0:0", "--data-dir", (dir / "data").string(),
                        "--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "--auth", "none"},
                       (dir / "sluice.log").string());
  ASSERT_NE(server.port(), 0) << readFile(dir / "sluice.log");
  EXPECT_EQ(server.listeningLine().rfind("listening on 0.0.0.0:", 0), 0u) << server.listeningLine();
  EXPECT_EQ(request(server.port(), "POST", "/flows", R"([{"flow_id":"a"}])").status, 201);
  EXPECT_EQ(request(server.port(), "GET", "/flows/a").status, 200);
  EXPECT_NE(readFile(dir / "sluice.log").find("without authentication"), std::string::npos);
}

TEST(AuthMode, NonLoopbackWithATokenStartsAndRequiresIt) {
  const fs::path dir = testDir("ops");
  const fs::path data = dir / "data";
  const std::string secret = createToken(data, "root", "admin", dir);
  ServerProcess server(ServerProcess::ExactArgs{}, SLUICE_BINARY,
                       {"--listen", "0.0.0.0:0", "--data-dir", data.string(), "--plugin-dir",
                        SLUICE_TEST_PLUGIN_DIR},
                       (dir / "sluice.log").string());
  ASSERT_NE(server.port(), 0) << readFile(dir / "sluice.log");
  auto r = request(server.port(), "GET", "/flows");
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(requestWith(server.port(), "GET", "/flows", bearer(secret)).status, 200);
}

}  // namespace
}  // namespace sluice::test
