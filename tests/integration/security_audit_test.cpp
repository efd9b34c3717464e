// Security of the REST API against the real binary (issue #8), beyond the role matrix: revocation
// on an open keep-alive connection, the audit log of successful changes and its paging, tokens
// never listed with their secret, and the brute-force lockout per source address.
#include <string>
#include <vector>

#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Revocation reaches a connection that is already open.

class RevocationTest : public SecureServer {};

std::string keepAliveGet(const std::string& path, const std::string& secret) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n" +
         "Authorization: Bearer " + secret + "\r\n\r\n";
}

TEST_F(RevocationTest, RevokedOverRestRefusedOnTheSameKeepAliveConnection) {
  admin_ = cliToken("root", "admin");
  const std::string t = cliToken("T", "viewer");
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
  admin_ = cliToken("root", "admin");
  const std::string t = cliToken("T2", "editor");
  startServer();

  RawConnection conn(port());
  conn.send(keepAliveGet("/flows", t));
  auto r = conn.readResponse(10s);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_FALSE(conn.closed());

  // The CLI writes to the running server's database.
  ASSERT_EQ(runSluice({"token", "revoke", "T2", "--data-dir", data().string()}, dir_).exit_code, 0);

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
// Successful changes are audited with their status and who made them; GETs are not.

class AuditTest : public SecureServer {};

TEST_F(AuditTest, SuccessfulChangesAreAuditedAndGetsAreNot) {
  admin_ = cliToken("boss", "admin");
  const std::string editor = cliToken("ed", "editor");
  const std::string op = cliToken("ops", "operator");
  const std::string viewer = cliToken("eye", "viewer");
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
  EXPECT_EQ(lastAudit().detail, "token new (viewer)") << "which token an admin created";
  expectOne(call(admin_, "DELETE", "/tokens/new"), 200, "boss", "admin", "DELETE", "/tokens/new",
            {});
  EXPECT_EQ(lastAudit().detail, "token new");

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
// Secrets are shown once, never listed; an issued token works at once.

TEST_F(AuditTest, TokenSecretsAreShownOnceAndNeverListed) {
  admin_ = cliToken("root", "admin");
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
  auto cli = runSluice({"token", "list", "--json", "--data-dir", data().string()}, dir_);
  EXPECT_EQ(cli.exit_code, 0);
  noSecrets(trim(cli.out), "token list --json");
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
// Paging the audit log.

TEST_F(AuditTest, PagingWithAfterLimitAndLink) {
  admin_ = cliToken("root", "admin");
  const std::string editor = cliToken("ed", "editor");
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
// Brute force: an address is locked out after 20 failures; other addresses are not.

class LockoutTest : public SecureServer {};

TEST_F(LockoutTest, TwentyFailuresLockOutThatAddressOnly) {
  admin_ = cliToken("root", "admin");
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
  admin_ = cliToken("root", "admin");
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
  admin_ = cliToken("root", "admin");
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
