// Durability: every acknowledged write survives SIGTERM and kill -9; flows come back to their
// desired state.
#include <fstream>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using DurabilityTest = ApiFixture;

TEST_F(DurabilityTest, GracefulRestartRestoresDesiredStates) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"run","type":"ticker","config":{"interval_ms":5}},
                               {"flow_id":"pause","type":"ticker","config":{"interval_ms":5}},
                               {"flow_id":"stop","type":"ticker"},{"flow_id":"x","name":"keep me"}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["run","pause"]})").status, 200);
  ASSERT_EQ(patch(R"({"command":"pause","flow_ids":["pause"]})").status, 200);
  ASSERT_EQ(put("/flows/x", R"({"name":"updated"})").status, 200);
  std::string before = get("/flows").body;
  int status = server_->kill(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  startServer();
  EXPECT_EQ(get("/flows").body, before);
  EXPECT_TRUE(waitFor([&] { return statusOf("run") == "running"; }, 10s));
  EXPECT_TRUE(waitFor([&] { return statusOf("pause") == "paused"; }, 10s));
  EXPECT_EQ(statusOf("stop"), "stopped");
  EXPECT_TRUE(waitFor([&] { return metric("run", "ticks") >= 2; }, 10s));
  EXPECT_TRUE(jsonEqual(get("/flows/x").body, R"({"flow_id":"x","name":"updated"})"));
}

TEST_F(DurabilityTest, KillNineLosesNoAcknowledgedWrite) {
  // Each request is acknowledged before the next; kill -9 right after the last answer.
  for (int round = 0; round < 3; ++round) {
    std::string id = "k" + std::to_string(round);
    ASSERT_EQ(post("/flows", R"([{"flow_id":")" + id +
                                 R"(","type":"ticker","config":{"interval_ms":10}},{"flow_id":")" +
                                 id + R"(b"}])")
                  .status,
              201);
    ASSERT_EQ(patch(R"({"command":"start","flow_ids":[")" + id + R"("]})").status, 200);
    ASSERT_EQ(put("/flows/" + id + "b", R"({"v":)" + std::to_string(round) + "}").status, 200);
    ASSERT_EQ(del("/flows/" + id + "b").status, 200);
    ASSERT_EQ(post("/flows", R"([{"flow_id":")" + id + R"(c"}])").status, 201);
    server_->kill(SIGKILL);
    startServer();
    for (int j = 0; j <= round; ++j) {
      std::string k = "k" + std::to_string(j);
      EXPECT_EQ(get("/flows/" + k).status, 200) << k;
      EXPECT_EQ(get("/flows/" + k + "b").status, 404) << k;
      EXPECT_EQ(get("/flows/" + k + "c").status, 200) << k;
      EXPECT_TRUE(waitFor([&] { return statusOf(k) == "running"; }, 10s)) << k;
    }
  }
}

TEST_F(DurabilityTest, ShutdownStopsFlowsWithoutChangingDesired) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"p","type":"probe"}])").status, 201);
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  server_->kill(SIGTERM);
  auto log = dir_ / "sluice.log";
  startServer();
  EXPECT_TRUE(waitFor([&] { return statusOf("p") == "running"; }, 10s));
  auto s = parseJson(get("/flows/status/p").body);
  EXPECT_STREQ(s["desired"].GetString(), "running");
  // the previous run stopped the flow softly on SIGTERM
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("flow p: stopping -> stopped"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
