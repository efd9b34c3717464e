// The bundled `http` flow type (plugins/http), loaded from its .so by the test harness and run
// against a local HTTP server (tests/fakes/http_test_server.hpp).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sluice/testing/harness.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fakes/http_test_server.hpp"

namespace {

using namespace std::chrono_literals;
using sluice::test::CannedResponse;
using sluice::test::HttpTestServer;
using sluice::testing::Harness;
using sluice::testing::Problem;
using sluice::testing::Stop;

// Checks `done` every 10 ms until it holds or `limit` passed.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The problem reported at `path`, if any.
const Problem* problemAt(const std::vector<Problem>& problems, const std::string& path) {
  for (const auto& p : problems) {
    if (p.path == path) return &p;
  }
  return nullptr;
}

using sluice::test::closedPort;

class HttpPluginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // libcurl honours proxies from the environment: the local server is reached directly.
    for (const char* name :
         {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(name);
    }
  }

  // Creates and starts the flow with `config`, then waits for its run to end.
  sluice::testing::Outcome runOnce(const std::string& config) {
    auto created = h.create(config);
    if (!created) return created;
    auto started = h.start();
    if (!started) return started;
    if (!eventually([&] { return h.runEnded(); })) return {false, "run did not end in 10 s", 0};
    return *h.runOutcome();
  }

  std::string urlConfig(const std::string& path, const std::string& more = "") {
    return R"({"url": ")" + server.url(path) + "\"" + (more.empty() ? "" : ", " + more) + "}";
  }

  HttpTestServer server;  // declared first: outlives the flow
  Harness h = Harness::load(HTTP_PLUGIN_PATH, "http");
};

// ---- validation

TEST_F(HttpPluginTest, DeclaresADedicatedThreadTypeWithASchema) {
  EXPECT_NE(h.type().flags & SLUICE_FLOW_DEDICATED_THREAD, 0u);
  ASSERT_NE(h.type().config_schema, nullptr);
  EXPECT_TRUE(h.validate(urlConfig("/x")).empty());
  EXPECT_TRUE(h.validate(R"({"url": "https://example.com/hook?x=1", "method": "POST",
      "headers": {"X-Token": "abc", "Content-Type": "application/json", "X-Empty": ""},
      "body": "{}", "timeout": "500ms", "expect_status": [200, 201, 302],
      "output": "responses/hook.json"})")
                  .empty());
}

TEST_F(HttpPluginTest, RefusesAMissingUrl) {
  auto problems = h.validate(R"({"method": "GET"})");
  ASSERT_NE(problemAt(problems, "/url"), nullptr) << ::testing::PrintToString(problems);
  EXPECT_TRUE(contains(problemAt(problems, "/url")->message, "required"));
}

TEST_F(HttpPluginTest, RefusesSchemesOtherThanHttpAndHttps) {
  for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://h/", "localhost/x",
                          "http://", "http://h:99999/", "http://a b/"}) {
    auto problems = h.validate(std::string(R"({"url": ")") + url + "\"}");
    ASSERT_NE(problemAt(problems, "/url"), nullptr)
        << url << ": " << ::testing::PrintToString(problems);
  }
  auto problems = h.validate(R"({"url": "file:///etc/passwd"})");
  EXPECT_TRUE(contains(problems[0].message, "'file' is not allowed")) << problems[0];
  EXPECT_TRUE(h.validate(R"({"url": "HTTPS://example.com"})").empty());
}

TEST_F(HttpPluginTest, RefusesAnUnknownMethod) {
  for (const char* method : {"FETCH", "get", "CONNECT", ""}) {
    auto problems = h.validate(urlConfig("/x", std::string(R"("method": ")") + method + "\""));
    EXPECT_NE(problemAt(problems, "/method"), nullptr)
        << method << ": " << ::testing::PrintToString(problems);
  }
}

TEST_F(HttpPluginTest, RefusesBadHeaders) {
  auto problems = h.validate(urlConfig("/x", R"("headers": {"Bad Name": "v"})"));
  ASSERT_NE(problemAt(problems, "/headers/Bad Name"), nullptr)
      << ::testing::PrintToString(problems);

  problems = h.validate(urlConfig("/x", R"("headers": {"X-Foo": "a\r\nX-Injected: 1"})"));
  ASSERT_NE(problemAt(problems, "/headers/X-Foo"), nullptr) << ::testing::PrintToString(problems);
  EXPECT_TRUE(contains(problemAt(problems, "/headers/X-Foo")->message, "CR"));

  problems = h.validate(urlConfig("/x", R"("headers": {"X-Foo": "line\nbreak"})"));
  EXPECT_NE(problemAt(problems, "/headers/X-Foo"), nullptr) << ::testing::PrintToString(problems);

  problems = h.validate(urlConfig("/x", R"("headers": {"X-Num": 1})"));
  EXPECT_NE(problemAt(problems, "/headers/X-Num"), nullptr) << ::testing::PrintToString(problems);

  problems = h.validate(urlConfig("/x", R"("headers": {"a/b": "v"})"));
  EXPECT_NE(problemAt(problems, "/headers/a~1b"), nullptr) << ::testing::PrintToString(problems);

  problems = h.validate(urlConfig("/x", R"("headers": {"Content-Length": "3"})"));
  EXPECT_NE(problemAt(problems, "/headers/Content-Length"), nullptr)
      << ::testing::PrintToString(problems);
}

TEST_F(HttpPluginTest, RefusesABadTimeout) {
  for (const char* timeout : {"10 seconds", "10", "s", "0ms", "2d", "-1s"}) {
    auto problems = h.validate(urlConfig("/x", std::string(R"("timeout": ")") + timeout + "\""));
    ASSERT_NE(problemAt(problems, "/timeout"), nullptr)
        << timeout << ": " << ::testing::PrintToString(problems);
  }
  EXPECT_TRUE(h.validate(urlConfig("/x", R"("timeout": "1d")")).empty());
  EXPECT_NE(problemAt(h.validate(urlConfig("/x", R"("timeout": 30)")), "/timeout"), nullptr);
}

TEST_F(HttpPluginTest, RefusesBadExpectedStatuses) {
  EXPECT_NE(problemAt(h.validate(urlConfig("/x", R"("expect_status": [600])")), "/expect_status/0"),
            nullptr);
  EXPECT_NE(
      problemAt(h.validate(urlConfig("/x", R"("expect_status": [200, 99])")), "/expect_status/1"),
      nullptr);
  EXPECT_NE(problemAt(h.validate(urlConfig("/x", R"("expect_status": [])")), "/expect_status"),
            nullptr);
  EXPECT_NE(
      problemAt(h.validate(urlConfig("/x", R"("expect_status": ["200"])")), "/expect_status/0"),
      nullptr);
  EXPECT_NE(problemAt(h.validate(urlConfig("/x", R"("expect_status": 200)")), "/expect_status"),
            nullptr);
}

TEST_F(HttpPluginTest, RefusesAnOutputOutsideTheFilesRoot) {
  for (const char* output : {"../x", "/tmp/x", "a/../../x", "dir/"}) {
    auto problems = h.validate(urlConfig("/x", std::string(R"("output": ")") + output + "\""));
    ASSERT_NE(problemAt(problems, "/output"), nullptr)
        << output << ": " << ::testing::PrintToString(problems);
  }
}

TEST_F(HttpPluginTest, RefusesUnknownMembers) {
  auto problems = h.validate(urlConfig("/x", R"("retries": 3, "expect": [200])"));
  ASSERT_NE(problemAt(problems, "/retries"), nullptr) << ::testing::PrintToString(problems);
  EXPECT_TRUE(contains(problemAt(problems, "/retries")->message, "unknown member 'retries'"));
  EXPECT_NE(problemAt(problems, "/expect"), nullptr);
}

TEST_F(HttpPluginTest, CreateRefusesAConfigThatBypassedValidation) {
  auto created = h.create(R"({"url": "file:///etc/passwd"})");
  EXPECT_FALSE(created);
  EXPECT_TRUE(contains(created.error, "/url")) << created;
}

// ---- requests and their results

TEST_F(HttpPluginTest, GetWithExpectedStatusCompletesTheRun) {
  server.setResponse("/ping", {200, "hello"});
  auto outcome = runOnce(urlConfig("/ping?from=test"));
  EXPECT_TRUE(outcome.ok && outcome.done) << outcome;
  EXPECT_EQ(h.counter("requests"), 1);
  EXPECT_EQ(h.counter("bytes_in"), 5);
  EXPECT_EQ(h.gauge("last_status"), 200.0);

  ASSERT_EQ(server.requestCount(), 1u);
  const auto req = server.requests()[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/ping?from=test");
  EXPECT_EQ(req.header("User-Agent").value_or(""), "sluice-http/1.0.0");
  EXPECT_EQ(req.body, "");
  EXPECT_TRUE(h.stop(Stop::kSoft));
}

TEST_F(HttpPluginTest, PostSendsItsHeadersAndBodyAsTheyAre) {
  const std::string body = R"({"event": "done", "n": 1})";
  auto outcome = runOnce(urlConfig("/hook", R"("method": "POST", "headers": {"X-Token": "s3cr3t",
      "Content-Type": "application/json", "X-Empty": ""}, "body": "{\"event\": \"done\", \"n\": 1}")"));
  EXPECT_TRUE(outcome.done) << outcome;
  ASSERT_EQ(server.requestCount(), 1u);
  const auto req = server.requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path(), "/hook");
  EXPECT_EQ(req.body, body);
  EXPECT_EQ(req.header("X-Token").value_or(""), "s3cr3t");
  EXPECT_EQ(req.header("Content-Type").value_or(""), "application/json");
  EXPECT_EQ(req.header("X-Empty"), std::optional<std::string>(""));
  EXPECT_EQ(req.header("Content-Length").value_or(""), std::to_string(body.size()));
  EXPECT_FALSE(req.header("Expect").has_value());
}

TEST_F(HttpPluginTest, BodiesAreSentWithoutAContentTypeOfTheirOwn) {
  const std::string big(5000, 'b');  // past libcurl's threshold for Expect: 100-continue
  auto outcome = runOnce(urlConfig("/put", R"("method": "PUT", "body": ")" + big + "\""));
  EXPECT_TRUE(outcome.done) << outcome;
  ASSERT_EQ(server.requestCount(), 1u);
  const auto req = server.requests()[0];
  EXPECT_EQ(req.method, "PUT");
  EXPECT_EQ(req.body, big);
  EXPECT_FALSE(req.header("Content-Type").has_value());
  EXPECT_FALSE(req.header("Expect").has_value());
}

TEST_F(HttpPluginTest, EveryMethodIsSentAsConfigured) {
  for (const std::string method : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}) {
    server.clearRequests();
    server.setDefault({200, "body of " + method});
    auto outcome = runOnce(urlConfig("/m", R"("method": ")" + method + "\""));
    EXPECT_TRUE(outcome.done) << method << ": " << outcome;
    ASSERT_EQ(server.requestCount(), 1u) << method;
    EXPECT_EQ(server.requests()[0].method, method);
    if (method == "POST" || method == "PUT" || method == "PATCH") {
      EXPECT_EQ(server.requests()[0].header("Content-Length").value_or(""), "0") << method;
    }
  }
  // A body with GET, DELETE or HEAD is sent too.
  for (const std::string method : {"GET", "DELETE", "HEAD"}) {
    server.clearRequests();
    auto outcome = runOnce(urlConfig("/m", R"("method": ")" + method + R"(", "body": "q=1")"));
    EXPECT_TRUE(outcome.done) << method << ": " << outcome;
    ASSERT_EQ(server.requestCount(), 1u) << method;
    EXPECT_EQ(server.requests()[0].method, method);
    EXPECT_EQ(server.requests()[0].body, "q=1") << method;
  }
}

TEST_F(HttpPluginTest, ExpectStatusDecidesTheOutcome) {
  server.setResponse("/created", {201, "made"});
  auto outcome = runOnce(urlConfig("/created", R"("expect_status": [201])"));
  EXPECT_TRUE(outcome.done) << outcome;

  server.setResponse("/ok", {200, "fine"});
  outcome = runOnce(urlConfig("/ok", R"("expect_status": [201, 202])"));
  EXPECT_FALSE(outcome.ok);
  EXPECT_TRUE(contains(outcome.error, "unexpected status 200")) << outcome;
  EXPECT_TRUE(contains(outcome.error, "(expected 201, 202)")) << outcome;
  EXPECT_EQ(h.gauge("last_status"), 200.0);
}

TEST_F(HttpPluginTest, AServerErrorFailsTheRunWithTheStartOfTheBody) {
  server.setResponse("/x", {500, "boom\nline2\x01 and more"});
  auto outcome = runOnce(urlConfig("/x", R"("method": "POST")"));
  EXPECT_FALSE(outcome.ok);
  EXPECT_FALSE(outcome.done);
  EXPECT_TRUE(contains(outcome.error, "unexpected status 500 from POST " + server.url("/x") +
                                          " (expected 2xx); body: boom\\nline2\\x01 and more"))
      << outcome;

  const std::string long_body(1000, 'z');
  server.setResponse("/long", {503, long_body});
  outcome = runOnce(urlConfig("/long"));
  EXPECT_TRUE(contains(outcome.error, "body: " + std::string(200, 'z') + "...")) << outcome;
  EXPECT_FALSE(contains(outcome.error, std::string(201, 'z'))) << outcome;
}

TEST_F(HttpPluginTest, RedirectsAreNotFollowed) {
  server.setResponse("/old", {302, "", {{"Location", server.url("/new")}}});
  auto outcome = runOnce(urlConfig("/old"));
  EXPECT_FALSE(outcome.ok);
  EXPECT_TRUE(contains(outcome.error, "unexpected status 302")) << outcome;
  outcome = runOnce(urlConfig("/old", R"("expect_status": [302])"));
  EXPECT_TRUE(outcome.done) << outcome;
  for (const auto& req : server.requests()) EXPECT_EQ(req.path(), "/old");
}

TEST_F(HttpPluginTest, MessagesHideThePasswordOfTheUrl) {
  server.setResponse("/x", {401, "who are you"});
  const std::string url = "http://alice:hunter2@127.0.0.1:" + std::to_string(server.port()) + "/x";
  auto outcome = runOnce(R"({"url": ")" + url + "\"}");
  EXPECT_FALSE(outcome.ok);
  EXPECT_TRUE(contains(outcome.error, "alice:***@127.0.0.1")) << outcome;
  EXPECT_FALSE(contains(outcome.error, "hunter2")) << outcome;
  ASSERT_EQ(server.requestCount(), 1u);
  EXPECT_TRUE(server.requests()[0].header("Authorization").has_value());  // sent, not shown
}

// ---- output

TEST_F(HttpPluginTest, OutputAppendsTheBodyOfEachExpectedResponse) {
  std::filesystem::create_directories(h.filesRoot() / "out");
  server.setResponse("/a", {200, "first\n"});
  server.setResponse("/b", {201, "second\n"});
  auto outcome = runOnce(urlConfig("/a", R"("output": "out/responses.txt")"));
  EXPECT_TRUE(outcome.done) << outcome;
  outcome = runOnce(urlConfig("/b", R"("output": "out/responses.txt")"));
  EXPECT_TRUE(outcome.done) << outcome;
  EXPECT_EQ(readFile(h.filesRoot() / "out/responses.txt"), "first\nsecond\n");
}

TEST_F(HttpPluginTest, OutputIsNotWrittenOnAnUnexpectedStatus) {
  server.setResponse("/fail", {500, "error page"});
  auto outcome = runOnce(urlConfig("/fail", R"("output": "responses.txt")"));
  EXPECT_FALSE(outcome.ok);
  EXPECT_FALSE(std::filesystem::exists(h.filesRoot() / "responses.txt"));
}

TEST_F(HttpPluginTest, OutputInAMissingDirectoryFailsBeforeTheRequest) {
  auto outcome = runOnce(urlConfig("/x", R"("output": "missing/dir/responses.txt")"));
  EXPECT_FALSE(outcome.ok);
  EXPECT_TRUE(contains(outcome.error, "does not exist")) << outcome;
  EXPECT_EQ(server.requestCount(), 0u);
  EXPECT_FALSE(std::filesystem::exists(h.filesRoot() / "missing"));
}

// ---- transport failures, timeouts, stops

TEST_F(HttpPluginTest, ConnectionRefusedFailsTheRun) {
  const std::string url = "http://127.0.0.1:" + std::to_string(closedPort()) + "/x";
  auto outcome = runOnce(R"({"url": ")" + url + "\"}");
  EXPECT_FALSE(outcome.ok);
  EXPECT_TRUE(contains(outcome.error, "GET " + url + " failed: Couldn't connect to server"))
      << outcome;
  EXPECT_EQ(h.counter("requests"), 0);
}

TEST_F(HttpPluginTest, TimeoutFailsTheRunLongBeforeASlowServerAnswers) {
  server.setResponse("/slow", {200, "late", {}, 5000ms});
  ASSERT_TRUE(h.create(urlConfig("/slow", R"("timeout": "300ms")")));
  ASSERT_TRUE(h.start());
  // The server answers after 5 s: the run must have ended well before.
  ASSERT_TRUE(eventually([&] { return h.runEnded(); }, 4000ms));
  auto outcome = *h.runOutcome();
  EXPECT_FALSE(outcome.ok);
  EXPECT_TRUE(contains(outcome.error, "timed out after 300ms")) << outcome;
  EXPECT_EQ(server.responsesSent(), 0u);
}

TEST_F(HttpPluginTest, SoftStopAbortsASlowRequestAndLeavesTheFlowStopped) {
  server.setResponse("/slow", {200, "late", {}, 5000ms});
  h.setStopTimeout(10s);  // no cancellation: the soft stop alone must end the request
  ASSERT_TRUE(h.create(urlConfig("/slow")));
  ASSERT_TRUE(h.start());
  ASSERT_TRUE(server.waitForRequests(1, 10s));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(h.stop(Stop::kSoft));
  ASSERT_TRUE(h.runEnded());
  EXPECT_LT(std::chrono::steady_clock::now() - before, 4000ms);  // before the server answered
  auto outcome = *h.runOutcome();
  EXPECT_TRUE(outcome.ok) << outcome;
  EXPECT_FALSE(outcome.done) << outcome;
  EXPECT_EQ(h.counter("requests"), 0);
}

TEST_F(HttpPluginTest, CancellationAbortsASlowRequest) {
  server.setResponse("/slow", {200, "late", {}, 5000ms});
  ASSERT_TRUE(h.create(urlConfig("/slow")));
  ASSERT_TRUE(h.start());
  ASSERT_TRUE(server.waitForRequests(1, 10s));
  h.cancel();
  ASSERT_TRUE(eventually([&] { return h.runEnded(); }, 4000ms));
  auto outcome = *h.runOutcome();
  EXPECT_TRUE(outcome.ok && !outcome.done) << outcome;
}

TEST_F(HttpPluginTest, APausedFlowWaitsAndAStopEndsItWithoutARequest) {
  ASSERT_TRUE(h.create(urlConfig("/x")));
  ASSERT_TRUE(h.pause());
  ASSERT_TRUE(h.start());
  EXPECT_FALSE(server.waitForRequests(1, 300ms));
  EXPECT_FALSE(h.runEnded());
  EXPECT_TRUE(h.stop(Stop::kSoft));
  auto outcome = *h.runOutcome();
  EXPECT_TRUE(outcome.ok && !outcome.done) << outcome;
  EXPECT_EQ(server.requestCount(), 0u);
}

TEST_F(HttpPluginTest, APausedFlowSendsItsRequestOnceResumed) {
  ASSERT_TRUE(h.create(urlConfig("/x")));
  ASSERT_TRUE(h.pause());
  ASSERT_TRUE(h.start());
  EXPECT_FALSE(server.waitForRequests(1, 200ms));
  ASSERT_TRUE(h.resume());
  ASSERT_TRUE(eventually([&] { return h.runEnded(); }));
  EXPECT_TRUE(h.runOutcome()->done) << *h.runOutcome();
  EXPECT_EQ(server.requestCount(), 1u);
}

}  // namespace
