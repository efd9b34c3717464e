// Issue 13: the web console's files and /whoami, served by the real binary: the redirect from
// `/`, the compiled-in page and its headers, names that must not reach the file system,
// --ui-dir, and who the caller is for each role and on an open server.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakes/api_fixture.hpp"
#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using ConsoleServing = ApiFixture;

TEST_F(ConsoleServing, RootRedirectsToTheConsole) {
  auto r = get("/");
  EXPECT_EQ(r.status, 302) << r.body;
  EXPECT_EQ(r.header("location"), "/ui/");
  EXPECT_TRUE(jsonEqual(r.body, R"({"location":"/ui/"})")) << r.body;
}

TEST_F(ConsoleServing, ServesTheCompiledInPageWithItsHeaders) {
  for (const char* path : {"/ui/", "/ui", "/ui/index.html"}) {
    auto r = get(path);
    ASSERT_EQ(r.status, 200) << path << " " << r.body;
    EXPECT_EQ(r.header("content-type"), "text/html; charset=utf-8") << path;
    EXPECT_NE(r.body.find("<html"), std::string::npos) << path;
    EXPECT_NE(r.header("content-security-policy").find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.header("cache-control"), "no-cache");
    ASSERT_FALSE(r.header("etag").empty());
    auto again = requestWith(server_->port(), "GET", path, {"If-None-Match: " + r.header("etag")});
    EXPECT_EQ(again.status, 304) << path;
    EXPECT_TRUE(again.body.empty());
  }
  // Every script the page loads is served, as JavaScript.
  auto page = get("/ui/");
  size_t pos = 0;
  int scripts = 0;
  while ((pos = page.body.find("src=\"", pos)) != std::string::npos) {
    pos += 5;
    const std::string src = page.body.substr(pos, page.body.find('"', pos) - pos);
    auto js = get(src.front() == '/' ? src : "/ui/" + src);
    EXPECT_EQ(js.status, 200) << src;
    EXPECT_EQ(js.header("content-type"), "text/javascript; charset=utf-8") << src;
    ++scripts;
  }
  EXPECT_GT(scripts, 0) << page.body;
}

TEST_F(ConsoleServing, UnknownOrForbiddenNamesAre404AndMethodsOtherThanGet405) {
  for (const char* path :
       {"/ui/nope.js", "/ui/.hidden", "/ui/..%2Fdata", "/ui/%2Fetc%2Fpasswd", "/ui/a%20b"}) {
    auto r = get(path);
    EXPECT_EQ(r.status, 404) << path << " " << r.body;
    EXPECT_NE(parseJson(r.body).FindMember("error"), parseJson(r.body).MemberEnd()) << path;
  }
  EXPECT_EQ(get("/ui/a/b").status, 404);
  auto r = post("/ui/", "{}");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET");
  EXPECT_EQ(del("/").status, 405);
}

TEST_F(ConsoleServing, WhoAmIOnAnOpenServerIsAnAnonymousAdmin) {
  auto r = get("/whoami");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(jsonEqual(r.body, R"({"token":"anonymous","role":"admin","auth":"open"})")) << r.body;
}

TEST_F(ConsoleServing, UiDirServesTheFilesOfADirectoryAsTheyChange) {
  const auto ui = dir_ / "ui";
  std::filesystem::create_directories(ui);
  std::ofstream(ui / "index.html") << "<html>one</html>";
  server_.reset();
  startServer({"--ui-dir", ui.string()});
  EXPECT_EQ(get("/ui/").body, "<html>one</html>");
  std::ofstream(ui / "index.html") << "<html>two</html>";
  std::ofstream(ui / "extra.css") << "body{}";
  EXPECT_EQ(get("/ui/").body, "<html>two</html>");
  auto css = get("/ui/extra.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.header("content-type"), "text/css; charset=utf-8");
  std::filesystem::create_directories(ui / "sub");
  EXPECT_EQ(get("/ui/sub").status, 404);
  EXPECT_EQ(get("/ui/sub/x").status, 404);
}

class ConsoleAuth : public SecureServer {};

TEST_F(ConsoleAuth, FilesNeedNoTokenAndWhoAmINamesEachRole) {
  admin_ = cliToken("root", "admin");
  std::map<std::string, std::string> secrets = {{"admin", admin_}};
  for (const char* role : {"viewer", "operator", "editor"}) {
    secrets[role] = cliToken(std::string("t-") + role, role);
  }
  startServer();
  EXPECT_EQ(requestWith(port(), "GET", "/ui/", {}).status, 200);
  EXPECT_EQ(requestWith(port(), "GET", "/", {}).status, 302);
  auto anonymous = requestWith(port(), "GET", "/whoami", {});
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_EQ(call("sluice_" + std::string(64, '0'), "GET", "/whoami").status, 401);
  for (const auto& [role, secret] : secrets) {
    auto r = call(secret, "GET", "/whoami");
    ASSERT_EQ(r.status, 200) << role << " " << r.body;
    auto doc = parseJson(r.body);
    EXPECT_EQ(memberText(doc, "role"), role);
    EXPECT_EQ(memberText(doc, "token"), role == "admin" ? "root" : "t-" + role);
    EXPECT_EQ(memberText(doc, "auth"), "required");
  }
  // A read: an admitted /whoami leaves no audit entry (refused ones do, like every refusal).
  for (const auto& a : newAudit()) EXPECT_FALSE(a.path == "/whoami" && a.status == 200) << a;
}

}  // namespace
}  // namespace sluice::test
