// Integration fixture: the real sluice binary on port 0 with the bundled and test plugins.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "core/model/json.hpp"
#include "fakes/http_client.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {

inline rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document doc;
  json::ParseError err;
  if (!json::parse(text, doc, &err)) ADD_FAILURE() << "not JSON: " << err.message << ": " << text;
  return doc;
}

/// True when a and b are the same JSON value (object member order ignored).
inline bool jsonEqual(const std::string& a, const std::string& b) {
  return parseJson(a) == parseJson(b);
}

/// A member of an object as text, for assertions: its string, "<null>", "<absent>" or
/// "<not a string>".
inline std::string memberText(const rapidjson::Value& v, const char* key) {
  auto m = v.FindMember(key);
  if (m == v.MemberEnd()) return "<absent>";
  if (m->value.IsNull()) return "<null>";
  return m->value.IsString() ? m->value.GetString() : "<not a string>";
}

/// A JSON error answer: `status`, application/json, an object with a non-empty "error" string.
inline void expectJsonError(const HttpResponse& r, int status, const std::string& what = "") {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json") << what;
  auto doc = parseJson(r.body);
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("error") && doc["error"].IsString())
      << what << ": " << r.body;
  EXPECT_GT(doc["error"].GetStringLength(), 0u) << what;
}

/// A 400 whose body names the JSON pointer `pointer` and says `text`.
inline void expectRefused(const HttpResponse& r, const std::string& pointer,
                          const std::string& text) {
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find(pointer), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(text), std::string::npos) << r.body;
}

class ApiFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("api-" +
         std::string(::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    startServer();
  }
  void startServer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "--log-level",
                                     "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(SLUICE_BINARY, dir_ / "data", args,
                                              (dir_ / "sluice.log").string());
  }
  HttpResponse get(const std::string& path) { return request(server_->port(), "GET", path); }
  HttpResponse post(const std::string& path, const std::string& body) {
    return request(server_->port(), "POST", path, body, true);
  }
  HttpResponse put(const std::string& path, const std::string& body) {
    return request(server_->port(), "PUT", path, body, true);
  }
  HttpResponse patch(const std::string& body) {
    return request(server_->port(), "PATCH", "/flows/commands", body, true);
  }
  HttpResponse del(const std::string& path) { return request(server_->port(), "DELETE", path); }

  std::string statusOf(const std::string& id) {
    auto r = get("/flows/status/" + id);
    if (r.status != 200) return "http " + std::to_string(r.status);
    auto doc = parseJson(r.body);
    return doc["status"].GetString();
  }
  /// The status document of flow `id` (another answer than 200 fails the test).
  rapidjson::Document statusDoc(const std::string& id) {
    auto r = get("/flows/status/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return parseJson(r.body);
  }
  int64_t metric(const std::string& id, const char* name) {
    auto r = get("/flows/status/" + id);
    auto doc = parseJson(r.body);
    auto m = doc["metrics"].FindMember(name);
    return m == doc["metrics"].MemberEnd() ? -1 : m->value.GetInt64();
  }

  std::filesystem::path dir_;
  std::unique_ptr<ServerProcess> server_;
};

}  // namespace sluice::test
