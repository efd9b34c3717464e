// Engine behaviour through the real binary: many flows on a bounded pool, parallel hooks,
// deadlines that keep the API answering.
#include <dirent.h>

#include <atomic>
#include <thread>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using LifecycleTest = ApiFixture;

int threadCount(pid_t pid) {
  int n = 0;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

TEST_F(LifecycleTest, ThousandTickersOnFewerThan64Threads) {
  std::string body = "[";
  for (int i = 0; i < 1000; ++i) {
    if (i) body += ",";
    body += R"({"flow_id":"t)" + std::to_string(i) +
            R"(","type":"ticker","config":{"interval_ms":100}})";
  }
  body += "]";
  ASSERT_EQ(post("/flows", body).status, 201);
  auto r = patch(R"({"command":"start"})");
  ASSERT_EQ(r.status, 200);
  auto doc = parseJson(r.body);
  ASSERT_EQ(doc["details"].Size(), 1000u);
  for (const auto& d : doc["details"].GetArray()) EXPECT_STREQ(d["status"].GetString(), "running");
  EXPECT_TRUE(
      waitFor([&] { return metric("t999", "ticks") >= 2 && metric("t0", "ticks") >= 2; }, 20s));
  int threads = threadCount(server_->pid());
  EXPECT_GT(threads, 0);
  EXPECT_LT(threads, 64);
  auto all = parseJson(get("/flows/status").body);
  int running = 0;
  for (auto it = all.MemberBegin(); it != all.MemberEnd(); ++it) {
    running += std::string(it->value["status"].GetString()) == "running";
  }
  EXPECT_EQ(running, 1000);
  r = patch(R"({"command":"stop","type":1})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(parseJson(r.body)["details"].Size(), 1000u);
}

TEST_F(LifecycleTest, HooksOfDifferentFlowsRunInParallel) {
  // Four flows whose start takes 1500 ms each, on the default 8 workers: one command answers
  // once all four ran; in sequence that would be 6 s, past their 4 s start timeout.
  std::string body = "[";
  for (int i = 0; i < 4; ++i) {
    if (i) body += ",";
    body +=
        R"({"flow_id":"s)" + std::to_string(i) +
        R"(","type":"probe","config":{"block":"start","block_ms":1500},"runtime":{"start_timeout_ms":4000}})";
  }
  body += "]";
  ASSERT_EQ(post("/flows", body).status, 201);
  auto r = patch(R"({"command":"start"})");
  ASSERT_EQ(r.status, 200);
  auto doc = parseJson(r.body);
  for (const auto& d : doc["details"].GetArray()) {
    EXPECT_STREQ(d["status"].GetString(), "running") << r.body;
  }
}

TEST_F(LifecycleTest, GetsDoNotWaitOnHooks) {
  ASSERT_EQ(
      post(
          "/flows",
          R"([{"flow_id":"slow","type":"probe","config":{"block":"start","block_ms":3000,"ignore_cancel":true},"runtime":{"start_timeout_ms":5000}}])")
          .status,
      201);
  std::thread commander([&] { patch(R"({"command":"start","flow_ids":["slow"]})"); });
  ASSERT_TRUE(waitFor([&] { return statusOf("slow") == "starting"; }, 10s));
  // While the start hook blocks, reads answer and show the operation in progress.
  auto s = parseJson(get("/flows/status/slow").body);
  EXPECT_STREQ(s["operation"].GetString(), "start");
  EXPECT_TRUE(s["deadline"].IsString());
  EXPECT_EQ(get("/flows").status, 200);
  EXPECT_EQ(get("/flows/status").status, 200);
  commander.join();
  EXPECT_EQ(statusOf("slow"), "running");
}

TEST_F(LifecycleTest, HungHookTimesOutAndApiStaysUp) {
  ASSERT_EQ(
      post(
          "/flows",
          R"([{"flow_id":"hang","type":"probe","config":{"block":"step","block_ms":6000,"ignore_cancel":true}},
                               {"flow_id":"fine","type":"ticker","config":{"interval_ms":5}}])")
          .status,
      201);
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  ASSERT_TRUE(waitFor([&] { return metric("hang", "calls.step") >= 1; }, 10s));
  auto r = patch(R"({"command":"stop","flow_ids":["hang"],"type":1})");
  ASSERT_EQ(r.status, 200);
  auto doc = parseJson(r.body);
  EXPECT_STREQ(doc["details"][0]["status"].GetString(), "failed");
  EXPECT_NE(std::string(doc["details"][0]["error"].GetString()).find("still running"),
            std::string::npos);
  int64_t ticks = metric("fine", "ticks");
  EXPECT_TRUE(waitFor([&] { return metric("fine", "ticks") > ticks + 5; }, 10s));
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

TEST_F(LifecycleTest, ConcurrentRequestsKeepTheCatalogConsistent) {
  std::string body = "[";
  for (int i = 0; i < 8; ++i) {
    if (i) body += ",";
    body +=
        R"({"flow_id":"c)" + std::to_string(i) + R"(","type":"probe","config":{"interval_ms":1}})";
  }
  ASSERT_EQ(post("/flows", body + "]").status, 201);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const char* commands[] = {"start", "pause", "resume", "stop"};
      for (int i = 0; i < 60; ++i) {
        std::string id = "c" + std::to_string((i * 3 + t) % 8);
        HttpResponse r;
        switch ((i + t) % 6) {
          case 0:
            r = put("/flows/" + id, R"({"type":"probe","config":{"interval_ms":2}})");
            break;
          case 1:
            r = get("/flows/status/" + id);
            break;
          case 2:
            r = del("/flows/" + id);
            break;
          case 3:
            r = post("/flows", R"([{"flow_id":")" + id + R"(","type":"probe"}])");
            break;
          default:
            r = patch(std::string(R"({"command":")") + commands[(i + t) % 4] +
                      R"(","flow_ids":[")" + id + R"("]})");
        }
        // Races between threads make 400/404 legitimate; a 5xx or a non-JSON body is not.
        if (r.status >= 500 || r.header("content-type") != "application/json") ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  // Every listed flow has a status, and the two views agree.
  auto list = parseJson(get("/flows").body);
  auto all = parseJson(get("/flows/status").body);
  ASSERT_TRUE(list.IsArray());
  EXPECT_EQ(list.Size(), all.MemberCount());
  for (const auto& f : list.GetArray()) EXPECT_TRUE(all.HasMember(f["flow_id"].GetString()));
  // Bring everything to rest: a stop of all flows converges.
  auto r = patch(R"({"command":"stop"})");
  ASSERT_EQ(r.status, 200);
  auto doc = parseJson(r.body);
  for (const auto& d : doc["details"].GetArray()) EXPECT_STREQ(d["status"].GetString(), "stopped");
}

}  // namespace
}  // namespace sluice::test
