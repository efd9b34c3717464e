// The `sluice token` CLI against the real binary (issue #8): create, list and revoke, their
// errors, tokens stored only as SHA-256 hashes, and the CLI beside a running server.
#include <sqlite3.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string sha256Hex(const std::string& text) {
  std::string out = shell("printf %s '" + text + "' | sha256sum");
  return out.substr(0, out.find(' '));
}

TEST(TokenCli, CreatePrintsOneSecretAndListNeverShowsIt) {
  const fs::path dir = testDir("ops");
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
  const fs::path dir = testDir("ops");
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
  const fs::path dir = testDir("ops");
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

TEST(TokenCli, TheTopLevelDataDirCountsToo) {
  const fs::path dir = testDir("ops");
  const std::string data = (dir / "data").string();
  auto c =
      runSluice({"--data-dir", data, "token", "create", "--name", "top", "--role", "viewer"}, dir);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto l = runSluice({"token", "list", "--data-dir", data}, dir);
  EXPECT_NE(l.out.find("top\t"), std::string::npos) << l.out;
  auto too_long = runSluice({"token", "create", "--name", "forever", "--role", "viewer",
                             "--expires", "99999999d", "--data-dir", data},
                            dir);
  EXPECT_NE(too_long.exit_code, 0) << "a lifetime past 36500 days is refused";
}

TEST(TokenCli, StoredOnlyAsSha256Hash) {
  const fs::path dir = testDir("ops");
  const fs::path data = dir / "data";
  const std::string cli_secret = createToken(data, "root", "admin", dir);
  ASSERT_TRUE(isSecret(cli_secret));

  // And one issued by the server, checked while it still runs (its WAL is live).
  ServerProcess server(SLUICE_BINARY, data, serverArgs(), (dir / "sluice.log").string());
  auto r = requestWith(server.port(), "POST", "/tokens", bearer(cli_secret),
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
  EXPECT_EQ(requestWith(again.port(), "GET", "/flows", bearer(api_secret)).status, 200);
  EXPECT_EQ(requestWith(again.port(), "GET", "/tokens", bearer(cli_secret)).status, 200);
}

TEST(TokenCli, WorksBesideARunningServer) {
  const fs::path dir = testDir("ops");
  const fs::path data = dir / "data";
  const std::string admin = createToken(data, "adm", "admin", dir);
  ServerProcess server(SLUICE_BINARY, data, serverArgs(), (dir / "sluice.log").string());
  ASSERT_EQ(requestWith(server.port(), "GET", "/flows", bearer(admin)).status, 200);

  // Created while the server runs: the server takes it on its next request.
  const std::string viewer = createToken(data, "viewer1", "viewer", dir);
  auto r = requestWith(server.port(), "GET", "/flows", bearer(viewer));
  EXPECT_EQ(r.status, 200) << r.body;
  auto l = runSluice({"token", "list", "--data-dir", data.string()}, dir);
  EXPECT_EQ(l.exit_code, 0);
  EXPECT_NE(l.out.find("viewer1"), std::string::npos) << l.out;

  // Revoked while the server runs: refused from the next request on.
  auto rv = runSluice({"token", "revoke", "viewer1", "--data-dir", data.string()}, dir);
  ASSERT_EQ(rv.exit_code, 0) << rv.err;
  r = requestWith(server.port(), "GET", "/flows", bearer(viewer));
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(requestWith(server.port(), "GET", "/flows", bearer(admin)).status, 200);

  // The token the server issued shows in the CLI's list, without its secret.
  r = requestWith(server.port(), "POST", "/tokens", bearer(admin),
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
  const fs::path dir = testDir("ops");
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

}  // namespace
}  // namespace sluice::test
