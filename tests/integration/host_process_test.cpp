// The host process's own duties: a plugin constructor that calls host functions, a plugin that
// forks (its child must not keep the host's socket, and a stop must not hang on it).
#include <signal.h>

#include <fstream>

#include "fakes/api_fixture.hpp"
#include "fakes/proc.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

using HostProcessTest = ApiFixture;

TEST_F(HostProcessTest, ConstructorMayCallHostFunctions) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"c","type":"fault",
    "config":{"in":"create","do":"hostcall"},"runtime":{"isolation":"process","start_timeout_ms":3000}}])")
                .status,
            201);
  auto r = patch(R"({"command":"start","flow_ids":["c"]})");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"status\":\"running\""), std::string::npos) << r.body;
  EXPECT_EQ(metric("c", "hostcalls"), 1);
  EXPECT_EQ(patch(R"({"command":"stop","flow_ids":["c"]})").status, 200);
}

TEST_F(HostProcessTest, ForkingPluginsDoNotHangStopOrTeardown) {
  ASSERT_EQ(post("/flows", R"([
    {"flow_id":"exec","type":"fault","config":{"in":"start","do":"fork"},"runtime":{"isolation":"process"}},
    {"flow_id":"nofork","type":"fault","config":{"in":"start","do":"forkwait"},"runtime":{"isolation":"process"}}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["exec","nofork"]})").status, 200);
  std::vector<pid_t> kids;
  for (const char* id : {"exec", "nofork"}) {
    ASSERT_TRUE(waitFor(
        [&] {
          auto doc = parseJson(get(std::string("/flows/status/") + id).body);
          return doc["metrics"].HasMember("child_pid");
        },
        10s));
    auto doc = parseJson(get(std::string("/flows/status/") + id).body);
    kids.push_back(static_cast<pid_t>(doc["metrics"]["child_pid"].GetDouble()));
  }
  // The exec'd child does not hold the host's socket (fd 3 is close-on-exec).
  ASSERT_TRUE(waitFor(
      [&] {
        std::ifstream comm("/proc/" + std::to_string(kids[0]) + "/comm");
        std::string name;
        std::getline(comm, name);
        return name == "sleep";
      },
      10s));
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(kids[0]) + "/fd/3"));
  for (const char* id : {"exec", "nofork"}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = patch(std::string(R"({"command":"stop","flow_ids":[")") + id + R"("]})");
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("\"status\":\"stopped\""), std::string::npos) << id << ": " << r.body;
    EXPECT_LT(took, 3s) << id;
  }
  EXPECT_TRUE(waitFor([&] { return flowHosts(server_->pid()).empty(); }, 10s));
  for (pid_t k : kids) ::kill(k, SIGKILL);
  // A graceful shutdown does not hang either.
  EXPECT_EQ(server_->kill(SIGTERM, 20s), 0);
}

}  // namespace
}  // namespace sluice::test
