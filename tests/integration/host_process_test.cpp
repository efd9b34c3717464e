// The host process's own duties: a plugin constructor that calls host functions, a plugin that
// forks (its child must not keep the host's socket, and a stop must not hang on it); and what
// many hosts cost the engine (no thread per host).
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
  // (while `sleep` starts, the dynamic loader may hold a library open as its fd 3: that is no
  // socket)
  std::error_code ec;
  const auto fd3 =
      std::filesystem::read_symlink("/proc/" + std::to_string(kids[0]) + "/fd/3", ec).string();
  EXPECT_EQ(fd3.rfind("socket:", 0), std::string::npos) << fd3;
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

int64_t threadsOf(pid_t pid) { return statusField(pid, "Threads"); }

// One reactor reads every host's socket: 60 hosts (with a memory limit, so the memory watch
// runs too) cost the engine a few threads, not one or two each.
TEST_F(HostProcessTest, ManyHostsShareAFewEngineThreads) {
  std::string flows = "[";
  for (int i = 0; i < 61; ++i) {
    flows += std::string(i ? "," : "") + R"({"flow_id":"h)" + std::to_string(i) +
             R"(","type":"ticker","config":{"interval_ms":20},)"
             R"("runtime":{"isolation":"process","memory_limit_mb":512}})";
  }
  ASSERT_EQ(post("/flows", flows + "]").status, 201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["h0"]})").status, 200);
  ASSERT_TRUE(waitFor([&] { return metric("h0", "ticks") >= 2; }, 10s));
  const int64_t one = threadsOf(server_->pid());
  auto r = patch(R"({"command":"start"})");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(flowHosts(server_->pid()).size(), 61u);
  for (int i = 0; i < 61; i += 10) {
    const std::string id = "h" + std::to_string(i);
    int64_t ticks = metric(id, "ticks");
    EXPECT_TRUE(waitFor([&] { return metric(id, "ticks") > ticks + 2; }, 10s)) << id;
  }
  // (pool workers added while hooks were blocked retire again; the bound leaves room for them)
  EXPECT_TRUE(waitFor([&] { return threadsOf(server_->pid()) <= one + 8; }, 20s))
      << threadsOf(server_->pid()) << " threads with 61 hosts, " << one << " with one";
  ASSERT_EQ(patch(R"({"command":"stop"})").status, 200);
  EXPECT_TRUE(waitFor([&] { return flowHosts(server_->pid()).empty(); }, 20s));
}

}  // namespace
}  // namespace sluice::test
