// The REST contract of ../shared/seed/flows-api.txt and issue #2, against the real binary.
#include <map>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using ApiTest = ApiFixture;

TEST_F(ApiTest, EmptyListAndContentType) {
  auto r = get("/flows");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.body, "[]");
  r = get("/flows/status");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{}");
}

TEST_F(ApiTest, CreateGetListInCreationOrder) {
  auto r = post("/flows", R"([{"flow_id":"flow2","name":"second","tags":["a",{"b":null}],"n":1.5},
                              {"flow_id":"flow1","type":"ticker","config":{"interval_ms":1000}}])");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto created = parseJson(r.body);
  ASSERT_TRUE(created["flow_ids"].IsArray());
  EXPECT_STREQ(created["flow_ids"][0].GetString(), "flow2");
  EXPECT_STREQ(created["flow_ids"][1].GetString(), "flow1");
  r = post("/flows", R"([{"flow_id":"flow0"}])");
  ASSERT_EQ(r.status, 201);

  r = get("/flows");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(
      jsonEqual(r.body, R"([{"flow_id":"flow2","name":"second","tags":["a",{"b":null}],"n":1.5},
                                    {"flow_id":"flow1","type":"ticker","config":{"interval_ms":1000}},
                                    {"flow_id":"flow0"}])"))
      << r.body;
  r = get("/flows/flow1");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(
      jsonEqual(r.body, R"({"flow_id":"flow1","type":"ticker","config":{"interval_ms":1000}})"));
  expectJsonError(get("/flows/nope"), 404);
}

TEST_F(ApiTest, PostValidationIsAtomicAndListsEveryProblem) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"exists"}])").status, 201);
  auto r = post("/flows", R"([{"flow_id":"ok1"},
                              {"flow_id":"exists"},
                              {"flow_id":"dup"},{"flow_id":"dup"},
                              {"type":"noop"},
                              {"flow_id":"t","type":"no-such-type"},
                              {"flow_id":"bad id"},
                              {"flow_id":"status"},
                              {"flow_id":"tk","type":"ticker","config":{"interval_ms":0}},
                              {"flow_id":"tk2","type":"ticker","config":{"interval_ms":"1"}},
                              {"flow_id":"cfg","config":[1]},
                              {"flow_id":"rt","runtime":{"nope":1}},
                              {"flow_id":"p","type":"../../etc/passwd"},
                              "not an object"])");
  expectJsonError(r, 400);
  auto doc = parseJson(r.body);
  ASSERT_TRUE(doc["details"].IsArray());
  std::vector<int> indexes;
  for (const auto& d : doc["details"].GetArray()) {
    indexes.push_back(d["index"].GetInt());
    EXPECT_TRUE(d["message"].IsString());
  }
  EXPECT_EQ(indexes, (std::vector<int>{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13})) << r.body;
  // nothing was added
  EXPECT_TRUE(jsonEqual(get("/flows").body, R"([{"flow_id":"exists"}])"));
  expectJsonError(get("/flows/ok1"), 404);
}

TEST_F(ApiTest, PostRejectsNonArraysAndMalformedJson) {
  expectJsonError(post("/flows", R"({"flow_id":"a"})"), 400);
  expectJsonError(post("/flows", R"("x")"), 400);
  auto r = post("/flows", R"([{"flow_id":"a"},])");
  expectJsonError(r, 400);
  EXPECT_TRUE(parseJson(r.body).HasMember("offset"));
  expectJsonError(post("/flows", ""), 400);
  expectJsonError(post("/flows", R"([{"flow_id":"a","flow_id":"b"}])"), 400);  // duplicate key
  expectJsonError(post("/flows", R"([{"flow_id":"a"}] trailing)"), 400);
  expectJsonError(post("/flows", "[{\"flow_id\":\"\xff\"}]"), 400);
  expectJsonError(post("/flows", std::string(100000, '[')), 400);
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "{\"a\":";
  expectJsonError(post("/flows", deep), 400);
  expectJsonError(post("/flows", std::string("[{\"flow_id\":\"a\"}]\0[]", 19)), 400);
  // Found by the fuzzers (docs/fuzzing.md): these answered 500 once.
  for (const char* bad :
       {R"([{"flow_id":"a","name":"\udc00"}])", R"([{"flow_id":"a","config":{"x":1.8e308}}])"}) {
    expectJsonError(post("/flows", bad), 400);
    expectJsonError(post("/flows/validate", bad), 400);
    expectJsonError(put("/flows/a", std::string(bad).substr(1, std::string(bad).size() - 2)), 400);
  }
  const std::string nul_word = R"([{"flow_id":"a","runtime":{"isolation":"process\u0000x"}}])";
  expectJsonError(post("/flows", nul_word), 400);
  EXPECT_NE(post("/flows/validate", nul_word).body.find(R"("valid":false)"), std::string::npos);
  // still up, nothing added
  EXPECT_EQ(get("/flows").body, "[]");
  // an empty array adds nothing and succeeds
  EXPECT_EQ(post("/flows", "[]").status, 201);
}

TEST_F(ApiTest, SeedCommandExamples) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"flow1"},{"flow_id":"flow2"}])").status, 201);
  auto r = patch(R"({"command": "start", "flow_ids": ["flow1", "flow2"]})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(jsonEqual(r.body, R"({"status": "Flows started", "details": [
      {"flow_id": "flow1", "status": "running"}, {"flow_id": "flow2", "status": "running"}]})"))
      << r.body;
  r = patch(R"({"command": "pause", "flow_ids": ["flow1", "flow2"]})");
  EXPECT_TRUE(jsonEqual(r.body, R"({"status": "Flows paused", "details": [
      {"flow_id": "flow1", "status": "paused"}, {"flow_id": "flow2", "status": "paused"}]})"))
      << r.body;
  r = patch(R"({"command": "resume", "flow_ids": ["flow1", "flow2"]})");
  EXPECT_TRUE(jsonEqual(r.body, R"({"status": "Flows resumed", "details": [
      {"flow_id": "flow1", "status": "running"}, {"flow_id": "flow2", "status": "running"}]})"))
      << r.body;
  r = patch(R"({"command": "stop", "flow_ids": ["flow1", "flow2"], "type": 0})");
  EXPECT_TRUE(jsonEqual(r.body, R"({"status": "Flows stopped", "details": [
      {"flow_id": "flow1", "status": "stopped"}, {"flow_id": "flow2", "status": "stopped"}]})"))
      << r.body;
  // hard stop
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["flow1"]})").status, 200);
  r = patch(R"({"command":"stop","flow_ids":["flow1"],"type":1})");
  EXPECT_TRUE(jsonEqual(
      r.body, R"({"status":"Flows stopped","details":[{"flow_id":"flow1","status":"stopped"}]})"));
}

TEST_F(ApiTest, CommandDetailsFollowFlowIdsOrderAndOmittedMeansAll) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"a"},{"flow_id":"b"},{"flow_id":"c"}])").status, 201);
  auto r = patch(R"({"command":"start","flow_ids":["c","a"]})");
  EXPECT_TRUE(jsonEqual(
      r.body,
      R"({"status":"Flows started","details":[{"flow_id":"c","status":"running"},{"flow_id":"a","status":"running"}]})"));
  EXPECT_EQ(statusOf("b"), "stopped");
  r = patch(R"({"command":"start"})");
  EXPECT_TRUE(jsonEqual(
      r.body,
      R"({"status":"Flows started","details":[{"flow_id":"a","status":"running"},{"flow_id":"b","status":"running"},{"flow_id":"c","status":"running"}]})"));
  r = patch(R"({"command":"stop","flow_ids":[]})");
  EXPECT_TRUE(jsonEqual(r.body, R"({"status":"Flows stopped","details":[]})"));
  EXPECT_EQ(statusOf("a"), "running");
}

TEST_F(ApiTest, CommandValidation) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"a"},{"flow_id":"b"}])").status, 201);
  expectJsonError(patch(R"({"flow_ids":["a"]})"), 400);
  expectJsonError(patch(R"({"command":"explode","flow_ids":["a"]})"), 400);
  expectJsonError(patch(R"({"command":1,"flow_ids":["a"]})"), 400);
  expectJsonError(patch(R"({"command":"start","flow_ids":"a"})"), 400);
  expectJsonError(patch(R"({"command":"start","flow_ids":["a",1]})"), 400);
  expectJsonError(patch(R"({"command":"stop","flow_ids":["a"],"type":2})"), 400);
  expectJsonError(patch(R"({"command":"stop","flow_ids":["a"],"type":"1"})"), 400);
  expectJsonError(patch(R"({"command":"stop","flow_ids":["a"],"type":0.5})"), 400);
  expectJsonError(patch(R"(["start"])"), 400);
  expectJsonError(patch(R"({"command":)"), 400);
  // unknown id: atomic, nothing started
  auto r = patch(R"({"command":"start","flow_ids":["a","ghost"]})");
  expectJsonError(r, 400);
  EXPECT_NE(r.body.find("ghost"), std::string::npos);
  EXPECT_EQ(statusOf("a"), "stopped");
  // illegal transitions
  expectJsonError(patch(R"({"command":"pause","flow_ids":["a"]})"), 400);
  expectJsonError(patch(R"({"command":"resume","flow_ids":["a"]})"), 400);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["a"]})").status, 200);
  r = patch(R"({"command":"pause","flow_ids":["a","b"]})");  // b is stopped
  expectJsonError(r, 400);
  EXPECT_EQ(statusOf("a"), "running");
  // legal no-ops
  EXPECT_EQ(patch(R"({"command":"resume","flow_ids":["a"]})").status, 200);
  EXPECT_EQ(patch(R"({"command":"stop","flow_ids":["b"]})").status, 200);
  ASSERT_EQ(patch(R"({"command":"pause","flow_ids":["a"]})").status, 200);
  EXPECT_EQ(patch(R"({"command":"pause","flow_ids":["a"]})").status, 200);
  // start on a paused flow resumes it
  r = patch(R"({"command":"start","flow_ids":["a"]})");
  EXPECT_TRUE(jsonEqual(
      r.body, R"({"status":"Flows started","details":[{"flow_id":"a","status":"running"}]})"));
}

TEST_F(ApiTest, FailingHookGivesFailedDetailAnd200) {
  ASSERT_EQ(
      post(
          "/flows",
          R"([{"flow_id":"bad","type":"probe","config":{"fail":"start"}},{"flow_id":"good","type":"probe"}])")
          .status,
      201);
  auto r = patch(R"({"command":"start","flow_ids":["bad","good"]})");
  ASSERT_EQ(r.status, 200);
  auto doc = parseJson(r.body);
  EXPECT_STREQ(doc["details"][0]["status"].GetString(), "failed");
  EXPECT_NE(std::string(doc["details"][0]["error"].GetString()).find("injected failure in start"),
            std::string::npos);
  EXPECT_STREQ(doc["details"][1]["status"].GetString(), "running");
  auto s = parseJson(get("/flows/status/bad").body);
  EXPECT_STREQ(s["status"].GetString(), "failed");
  EXPECT_STREQ(s["desired"].GetString(), "running");
  EXPECT_TRUE(s["error"].IsString());
  // stop clears the failure
  r = patch(R"({"command":"stop","flow_ids":["bad"]})");
  EXPECT_TRUE(jsonEqual(
      r.body, R"({"status":"Flows stopped","details":[{"flow_id":"bad","status":"stopped"}]})"));
  EXPECT_FALSE(parseJson(get("/flows/status/bad").body).HasMember("error"));
}

TEST_F(ApiTest, StatusShape) {
  ASSERT_EQ(post("/flows",
                 R"([{"flow_id":"t","type":"ticker","config":{"interval_ms":10}},{"flow_id":"n"}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["t"]})").status, 200);
  ASSERT_TRUE(waitFor([&] { return metric("t", "ticks") >= 3; }, 10s));
  auto r = get("/flows/status/t");
  ASSERT_EQ(r.status, 200);
  auto s = parseJson(r.body);
  EXPECT_STREQ(s["flow_id"].GetString(), "t");
  EXPECT_STREQ(s["status"].GetString(), "running");
  EXPECT_STREQ(s["desired"].GetString(), "running");
  EXPECT_STREQ(s["type"].GetString(), "ticker");
  std::string since = s["since"].GetString();
  EXPECT_EQ(since.size(), 24u) << since;  // 2026-11-28T04:01:06.931Z
  EXPECT_EQ(since.back(), 'Z');
  EXPECT_TRUE(s["metrics"].IsObject());
  auto all = parseJson(get("/flows/status").body);
  ASSERT_TRUE(all.IsObject());
  EXPECT_STREQ(all["t"]["status"].GetString(), "running");
  EXPECT_STREQ(all["n"]["status"].GetString(), "stopped");
  EXPECT_STREQ(all["n"]["type"].GetString(), "noop");
  expectJsonError(get("/flows/status/ghost"), 404);
}

TEST_F(ApiTest, TickerCountsOnlyWhileRunning) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"t","type":"ticker","config":{"interval_ms":5}},
                               {"flow_id":"clock","type":"ticker","config":{"interval_ms":5}}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  ASSERT_TRUE(waitFor([&] { return metric("t", "ticks") >= 5; }, 10s));
  ASSERT_EQ(patch(R"({"command":"pause","flow_ids":["t"]})").status, 200);
  int64_t paused_at = metric("t", "ticks");
  int64_t clock = metric("clock", "ticks");
  ASSERT_TRUE(waitFor([&] { return metric("clock", "ticks") > clock + 20; }, 20s));
  EXPECT_EQ(metric("t", "ticks"), paused_at);
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["t"]})").status, 200);
  int64_t stopped_at = metric("t", "ticks");
  clock = metric("clock", "ticks");
  ASSERT_TRUE(waitFor([&] { return metric("clock", "ticks") > clock + 20; }, 20s));
  EXPECT_EQ(metric("t", "ticks"), stopped_at);
}

TEST_F(ApiTest, PutReplacesConfig) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"a","name":"one"}])").status, 201);
  auto r = put("/flows/a", R"({"name":"two","type":"ticker","config":{"interval_ms":50}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(jsonEqual(
      r.body, R"({"flow_id":"a","name":"two","type":"ticker","config":{"interval_ms":50}})"));
  EXPECT_TRUE(jsonEqual(get("/flows/a").body, r.body));
  r = put("/flows/a", R"({"flow_id":"a","name":"three"})");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(jsonEqual(get("/flows/a").body, R"({"flow_id":"a","name":"three"})"));
  // errors: nothing changes
  expectJsonError(put("/flows/a", R"({"flow_id":"b"})"), 400);
  expectJsonError(put("/flows/a", R"([])"), 400);
  expectJsonError(put("/flows/a", R"({"type":"ticker","config":{"interval_ms":-1}})"), 400);
  expectJsonError(put("/flows/a", R"({"type":"nope"})"), 400);
  expectJsonError(put("/flows/a", R"({"runtime":{"x":1}})"), 400);
  expectJsonError(put("/flows/a", R"({bad json)"), 400);
  expectJsonError(put("/flows/ghost", R"({"name":"x"})"), 400);
  EXPECT_TRUE(jsonEqual(get("/flows/a").body, R"({"flow_id":"a","name":"three"})"));
  expectJsonError(get("/flows/ghost"), 404);
}

TEST_F(ApiTest, PutOnRunningFlowRestartsItAndKeepsState) {
  ASSERT_EQ(
      post("/flows", R"([{"flow_id":"p","type":"probe"},{"flow_id":"q","type":"probe"}])").status,
      201);
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  ASSERT_EQ(patch(R"({"command":"pause","flow_ids":["q"]})").status, 200);
  ASSERT_EQ(put("/flows/p", R"({"type":"probe","config":{"interval_ms":3}})").status, 200);
  ASSERT_EQ(put("/flows/q", R"({"type":"probe","config":{"interval_ms":3}})").status, 200);
  EXPECT_EQ(statusOf("p"), "running");
  EXPECT_EQ(statusOf("q"), "paused");
  EXPECT_EQ(metric("p", "calls.start"), 2);
  // a config that cannot start: 400, previous config restored
  auto r = put("/flows/p", R"({"type":"probe","config":{"fail":"start"}})");
  expectJsonError(r, 400);
  EXPECT_EQ(statusOf("p"), "running");
  EXPECT_TRUE(jsonEqual(get("/flows/p").body,
                        R"({"flow_id":"p","type":"probe","config":{"interval_ms":3}})"));
}

TEST_F(ApiTest, DeleteStopsAndRemoves) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"d","type":"probe"},{"flow_id":"k"}])").status, 201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["d"]})").status, 200);
  auto r = del("/flows/d");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_TRUE(parseJson(r.body).IsObject());
  expectJsonError(get("/flows/d"), 404);
  expectJsonError(get("/flows/status/d"), 404);
  expectJsonError(del("/flows/d"), 400);
  EXPECT_TRUE(jsonEqual(get("/flows").body, R"([{"flow_id":"k"}])"));
  // the id can be used again
  EXPECT_EQ(post("/flows", R"([{"flow_id":"d"}])").status, 201);
}

TEST_F(ApiTest, RoutesMethodsAndPercentDecoding) {
  expectJsonError(get("/nope"), 404);
  expectJsonError(get("/flows/a/b/c"), 404);
  EXPECT_EQ(get("/").status, 302);  // to the console, /ui/ (issue 13)
  auto r = request(server_->port(), "DELETE", "/flows");
  expectJsonError(r, 405);
  EXPECT_NE(r.header("allow").find("GET"), std::string::npos);
  EXPECT_NE(r.header("allow").find("POST"), std::string::npos);
  r = request(server_->port(), "POST", "/flows/status", "{}");
  expectJsonError(r, 405);
  EXPECT_EQ(r.header("allow"), "GET");
  r = request(server_->port(), "GET", "/flows/commands");
  expectJsonError(r, 405);
  EXPECT_EQ(r.header("allow"), "PATCH");
  expectJsonError(request(server_->port(), "PATCH", "/flows/x", "{}"), 405);
  ASSERT_EQ(post("/flows", R"([{"flow_id":"my.flow-1"}])").status, 201);
  r = get("/flows/my%2Eflow%2d1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(get("/flows/status/my%2eflow-1").status, 200);
  expectJsonError(get("/flows/%zz"), 400);
  // query strings are ignored
  EXPECT_EQ(get("/flows?x=1").status, 200);
}

TEST_F(ApiTest, BodyLimit) {
  server_.reset();
  startServer({"--max-body-bytes", "4096"});
  std::string big = "[" + std::string(5000, ' ') + "]";
  expectJsonError(post("/flows", big), 413);
  EXPECT_EQ(post("/flows", "[" + std::string(3000, ' ') + "]").status, 201);
  EXPECT_EQ(get("/flows").status, 200);
}

TEST_F(ApiTest, BulkPostOfManyConfigs) {
  std::string body = "[";
  for (int i = 0; i < 10000; ++i) {
    if (i) body += ",";
    body += R"({"flow_id":"f)" + std::to_string(i) + R"(","name":"flow number )" +
            std::to_string(i) + R"("})";
  }
  body += "]";
  auto r = post("/flows", body);
  ASSERT_EQ(r.status, 201);
  r = get("/flows");
  ASSERT_EQ(r.status, 200);
  auto doc = parseJson(r.body);
  ASSERT_EQ(doc.Size(), 10000u);
  EXPECT_STREQ(doc[9999]["flow_id"].GetString(), "f9999");
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

TEST_F(ApiTest, PluginsListsTypesWithSchemas) {
  auto r = get("/plugins");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto doc = parseJson(r.body);
  std::map<std::string, const rapidjson::Value*> types;
  for (const auto& p : doc["plugins"].GetArray()) {
    EXPECT_TRUE(p["version"].IsString());
    EXPECT_TRUE(p["file"].IsString());
    // The minimum engine ABI each needs: the C++ SDK needs nothing past 1.0, unless the
    // plugin says otherwise (probe and http return Status::done(), which needs 1.3; exec
    // also writes its child's output to the flow's log, host function `output` of 1.4).
    const std::map<std::string, std::string> needs = {
        {"probe", "1.3"}, {"http", "1.3"}, {"exec", "1.4"}};
    const auto need = needs.find(p["name"].GetString());
    EXPECT_STREQ(p["abi"].GetString(), need == needs.end() ? "1.0" : need->second.c_str())
        << p["name"].GetString();
    EXPECT_FALSE(p["retired"].GetBool());
    for (const auto& t : p["flow_types"].GetArray()) {
      types[t["name"].GetString()] = &t;
      EXPECT_TRUE(t["version"].IsString());
      EXPECT_TRUE(t["flows"].IsArray());
    }
  }
  for (const char* name :
       {"noop", "ticker", "line-pipe", "probe", "probe-thread", "probe-reconf"}) {
    ASSERT_TRUE(types.count(name)) << name;
  }
  EXPECT_TRUE((*types["ticker"])["config_schema"].IsObject());
  EXPECT_GT((*types["ticker"])["description"].GetStringLength(), 0u);
  EXPECT_TRUE((*types["probe"])["config_schema"].IsNull());
  EXPECT_TRUE(doc["refused"].IsArray());
}

TEST_F(ApiTest, ValidateStoresNothing) {
  auto r =
      post("/flows/validate", R"([{"flow_id":"a","type":"ticker","config":{"interval_ms":5}}])");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(jsonEqual(r.body, R"({"valid":true,"details":[]})"));
  r = post(
      "/flows/validate",
      R"([{"flow_id":"a","type":"ticker","config":{"interval_ms":0}},{"flow_id":"b","type":"zzz"},{"x":1}])");
  ASSERT_EQ(r.status, 200);
  auto doc = parseJson(r.body);
  EXPECT_FALSE(doc["valid"].GetBool());
  ASSERT_EQ(doc["details"].Size(), 3u);
  EXPECT_STREQ(doc["details"][0]["path"].GetString(), "/config/interval_ms");
  EXPECT_STREQ(doc["details"][1]["path"].GetString(), "/type");
  EXPECT_STREQ(doc["details"][2]["path"].GetString(), "/flow_id");
  EXPECT_EQ(get("/flows").body, "[]");
  expectJsonError(post("/flows/validate", "{}"), 400);
  expectJsonError(post("/flows/validate", "[oops"), 400);
  // "validate" is reserved as a flow id
  expectJsonError(post("/flows", R"([{"flow_id":"validate"}])"), 400);
}

}  // namespace
}  // namespace sluice::test
