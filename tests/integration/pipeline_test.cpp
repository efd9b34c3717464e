// samples/pipeline (issue #12): the nightly pipeline the sample ships, as a user runs it:
// `exec` extract on a schedule -> `exec` transform after it -> `http` notify to a local server,
// with the schedule's clock injected (--schedule-clock) and the sample's own files.
#include <fstream>
#include <sstream>
#include <string>

#include "fakes/api_fixture.hpp"
#include "fakes/http_test_server.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

class Pipeline : public ApiFixture {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(SLUICE_TEST_TMP) / "pipeline";
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(files() / "pipeline");
    setClock("2026-11-30T00:59:00Z");  // 01:59 in Berlin: the nightly run is due at 02:00
    startServer({"--schedule-clock", (dir_ / "clock").string(), "--files-root", files().string(),
                 "--exec-allow", jobs().string() + ",/bin"});
  }
  std::filesystem::path files() const { return dir_ / "files"; }
  static std::filesystem::path sample() {
    return std::filesystem::path(SLUICE_SOURCE_DIR) / "samples" / "pipeline";
  }
  static std::filesystem::path jobs() { return sample() / "jobs"; }
  void setClock(const std::string& t) {
    std::ofstream(dir_ / "clock.new") << t << "\n";
    std::filesystem::rename(dir_ / "clock.new", dir_ / "clock");
  }
  uint64_t runs(const std::string& id) { return statusDoc(id)["runs"].GetUint64(); }
};

TEST_F(Pipeline, TheNightlySampleRunsExtractTransformNotify) {
  HttpTestServer hook;
  hook.setDefault({204, ""});
  std::string flows = readFile(sample() / "flows.json");
  ASSERT_FALSE(flows.empty());
  replaceAll(flows, "@JOBS@", jobs().string());
  replaceAll(flows, "@NOTIFY_URL@", hook.url("/hooks/nightly"));
  auto r = post("/flows", flows);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(memberText(statusDoc("extract"), "next_run_at"), "2026-11-30T01:00:00.000Z");
  EXPECT_EQ(runs("transform"), 0u);

  setClock("2026-11-30T01:00:00Z");  // 02:00 in Berlin
  ASSERT_TRUE(hook.waitForRequests(1, 60s)) << "notify never called";
  ASSERT_TRUE(waitFor([&] { return statusOf("notify") == "completed"; }, 30s));
  for (const char* id : {"extract", "transform", "notify"}) {
    EXPECT_EQ(statusOf(id), "completed") << id;
    EXPECT_EQ(runs(id), 1u) << id;
  }
  EXPECT_EQ(runs("alert"), 0u) << "the failure branch did not run";
  const auto req = hook.requests().at(0);
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path(), "/hooks/nightly");
  EXPECT_EQ(req.body, R"({"pipeline": "nightly", "result": "succeeded"})");
  EXPECT_EQ(readFile(files() / "pipeline" / "report.txt"), "rows=4 total=1800\n");
  EXPECT_NE(get("/flows/extract/logs").body.find("extracted 4 rows into raw.csv"),
            std::string::npos);
  EXPECT_NE(get("/flows/transform/logs").body.find("rows=4 total=1800"), std::string::npos);
  EXPECT_EQ(memberText(statusDoc("extract"), "next_run_at"), "2026-12-01T01:00:00.000Z");

  // The next night the source has nothing (extract succeeds, writes no raw.csv): transform
  // fails naming why, notify is held back, and alert (after transform failed) calls the hook.
  std::filesystem::remove(files() / "pipeline" / "raw.csv");
  r = put("/flows/extract",
          R"({"flow_id":"extract","type":"exec","config":{"argv":["/bin/true"],"cwd":"pipeline"},)"
          R"("runtime":{"schedule":{"cron":"0 2 * * *","timezone":"Europe/Berlin"}}})");
  ASSERT_EQ(r.status, 200) << r.body;
  setClock("2026-12-01T01:00:00Z");
  ASSERT_TRUE(hook.waitForRequests(2, 60s)) << "alert never called";
  ASSERT_TRUE(waitFor([&] { return statusOf("alert") == "completed"; }, 30s));
  EXPECT_EQ(statusOf("transform"), "failed");
  EXPECT_NE(memberText(statusDoc("transform"), "error").find("exited with code 2"),
            std::string::npos);
  EXPECT_NE(get("/flows/transform/logs").body.find("raw.csv is missing"), std::string::npos);
  EXPECT_EQ(hook.requests().at(1).body, R"({"pipeline": "nightly", "result": "failed"})");
  EXPECT_EQ(runs("notify"), 1u);
  auto waits = statusDoc("notify");
  ASSERT_TRUE(waits["waiting_for"].IsArray());
  ASSERT_EQ(waits["waiting_for"].Size(), 1u);
  EXPECT_EQ(memberText(waits["waiting_for"][0], "last_result"), "failed");
}

// The `http` type in the real binary: a run per start, the expected status completes it (and
// appends the body under the files root), another one fails it naming the status.
class HttpFlow : public ApiFixture {};

TEST_F(HttpFlow, ARunSendsOneRequestAndJudgesItsStatus) {
  HttpTestServer server;
  server.setResponse("/ok", {200, "pong\n"});
  server.setResponse("/broken", {500, "database down"});
  auto flow = [&](const std::string& id, const std::string& path, const std::string& more) {
    return R"({"flow_id":")" + id + R"(","type":"http","config":{"url":")" + server.url(path) +
           "\"" + more + "}}";
  };
  auto r = post("/flows", "[" + flow("ping", "/ok", R"(,"output":"pings.log")") + "," +
                              flow("hook", "/broken", R"(,"method":"POST","body":"x")") + "]");
  ASSERT_EQ(r.status, 201) << r.body;
  for (int run = 1; run <= 2; ++run) {
    ASSERT_EQ(patch(R"({"command":"start","flow_ids":["ping"]})").status, 200);
    ASSERT_TRUE(waitFor(
        [&] {
          return statusOf("ping") == "completed" &&
                 statusDoc("ping")["runs"].GetUint64() == static_cast<uint64_t>(run);
        },
        30s));
  }
  EXPECT_EQ(readFile(dir_ / "data" / "files" / "pings.log"), "pong\npong\n");
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["hook"]})").status, 200);
  ASSERT_TRUE(waitFor([&] { return statusOf("hook") == "failed"; }, 30s));
  const std::string error = memberText(statusDoc("hook"), "error");
  EXPECT_NE(error.find("unexpected status 500"), std::string::npos) << error;
  EXPECT_NE(error.find("database down"), std::string::npos) << error;
  EXPECT_EQ(memberText(statusDoc("hook")["last_run"], "result"), "failed");
  EXPECT_EQ(server.requestCount(), 3u);
  // A scheme other than http(s) is refused at POST, naming the member.
  r = post("/flows", R"([{"flow_id":"x","type":"http","config":{"url":"file:///etc/passwd"}}])");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("/config/url"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace sluice::test
