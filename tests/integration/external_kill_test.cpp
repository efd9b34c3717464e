// Host processes killed from outside (an operator, the OOM killer, a crash of a plugin thread):
// SIGSEGV, SIGKILL and SIGTERM sent to a flow's host, between hooks and inside each hook. The
// engine must live on, the flow must be failed with an error naming the signal, and it must
// start again. Each case runs in a loop bounded in time.
#include <signal.h>

#include <future>
#include <iostream>

#include "fakes/api_fixture.hpp"
#include "fakes/proc.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

struct Signal {
  int number;
  const char* name;
};
const std::vector<Signal> kSignals = {
    {SIGSEGV, "SIGSEGV"}, {SIGKILL, "SIGKILL"}, {SIGTERM, "SIGTERM"}};

class ExternalKillTest : public ApiFixture {
 protected:
  std::vector<int> hosts() {
    std::vector<int> out;
    for (const auto& [pid, state, cmd] : flowHosts(server_->pid())) {
      if (state != 'Z') out.push_back(pid);
    }
    return out;
  }
  // The engine is alive: its process is not a zombie and it answers.
  void expectEngineAlive() {
    const char st = processState(server_->pid());
    ASSERT_TRUE(st != 0 && st != 'Z') << "the engine died; see " << (dir_ / "sluice.log");
    ASSERT_EQ(get("/flows/status").status, 200);
  }
  std::string errorOf(const std::string& id) {
    auto doc = parseJson(get("/flows/status/" + id).body);
    return doc.HasMember("error") ? doc["error"].GetString() : "";
  }
};

// Three tickers at interval_ms 10 whose hosts are killed while no hook (or a step) runs.
TEST_F(ExternalKillTest, HostsKilledBetweenHooks) {
  ASSERT_EQ(post("/flows", R"([
    {"flow_id":"k0","type":"ticker","config":{"interval_ms":10},"runtime":{"isolation":"process"}},
    {"flow_id":"k1","type":"ticker","config":{"interval_ms":10},"runtime":{"isolation":"process"}},
    {"flow_id":"k2","type":"ticker","config":{"interval_ms":10},"runtime":{"isolation":"process"}}])")
                .status,
            201);
  const std::vector<std::string> ids = {"k0", "k1", "k2"};
  for (const auto& sig : kSignals) {
    SCOPED_TRACE(sig.name);
    int trials = 0;
    const auto until = SteadyClock::now() + 3s;
    while (trials < 3 || SteadyClock::now() < until) {
      auto r = patch(R"({"command":"start","flow_ids":["k0","k1","k2"]})");
      ASSERT_EQ(r.status, 200) << r.body;
      ASSERT_TRUE(waitFor([&] { return hosts().size() == 3; }, 10s)) << hosts().size();
      for (int pid : hosts()) ::kill(pid, sig.number);
      for (const auto& id : ids) {
        ASSERT_TRUE(waitFor([&] { return statusOf(id) == "failed"; }, 10s)) << id;
        EXPECT_NE(errorOf(id).find(sig.name), std::string::npos) << errorOf(id);
      }
      expectEngineAlive();
      ++trials;
    }
    std::cout << "[ external " << sig.name << " between hooks: " << trials
              << " trials x 3 hosts, engine alive ]\n";
    // started again, the flows run
    ASSERT_EQ(patch(R"({"command":"start","flow_ids":["k0","k1","k2"]})").status, 200);
    for (const auto& id : ids) {
      int64_t ticks = metric(id, "ticks");
      EXPECT_TRUE(waitFor([&] { return metric(id, "ticks") > ticks + 2; }, 10s)) << id;
    }
    ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["k0","k1","k2"]})").status, 200);
  }
  EXPECT_TRUE(waitFor([&] { return flowHosts(server_->pid()).empty(); }, 10s));
}

// A hook that blocks in the host; the host is killed while it runs. The command waiting for the
// hook is answered, the flow is failed with the signal and the hook in its error.
TEST_F(ExternalKillTest, HostsKilledInsideEachHook) {
  const std::vector<std::string> hooks = {"create", "start", "step", "pause", "resume", "stop"};
  int n = 0;
  for (const auto& hook : hooks) {
    for (const auto& sig : kSignals) {
      SCOPED_TRACE(hook + " / " + sig.name);
      const auto until = SteadyClock::now() + 1s;
      for (int rep = 0; rep < 2 || SteadyClock::now() < until; ++rep) {
        const std::string id = "h" + std::to_string(n++);
        ASSERT_EQ(post("/flows", R"([{"flow_id":")" + id +
                                     R"(","type":"probe","config":{"block":")" + hook +
                                     R"(","block_ms":60000,"ignore_cancel":true,"interval_ms":5},)"
                                     R"("runtime":{"isolation":"process"}}])")
                      .status,
                  201);
        auto cmd = [&](const char* c) {
          return R"({"command":")" + std::string(c) + R"(","flow_ids":[")" + id + R"("]})";
        };
        // Bring the flow to the hook, with the command that runs it in flight.
        std::future<HttpResponse> inflight;
        auto async = [&](std::string body) {
          return std::async(std::launch::async, [this, body] { return patch(body); });
        };
        if (hook == "create" || hook == "start" || hook == "step") {
          inflight = async(cmd("start"));
        } else {
          ASSERT_EQ(patch(cmd("start")).status, 200);
          if (hook == "resume") {
            ASSERT_EQ(patch(cmd("pause")).status, 200);
          }
          inflight = async(cmd(hook == "resume" ? "resume" : hook.c_str()));
        }
        const std::string calls = "calls." + hook;
        ASSERT_TRUE(waitFor([&] { return metric(id, calls.c_str()) >= 1; }, 10s)) << calls;
        // Only this flow's host runs a blocked hook; the others were stopped and deleted.
        auto hs = hosts();
        ASSERT_EQ(hs.size(), 1u);
        ::kill(hs[0], sig.number);
        ASSERT_EQ(inflight.wait_for(10s), std::future_status::ready);
        EXPECT_EQ(inflight.get().status, 200);
        ASSERT_TRUE(waitFor([&] { return statusOf(id) == "failed"; }, 10s)) << statusOf(id);
        const std::string error = errorOf(id);
        EXPECT_NE(error.find(sig.name), std::string::npos) << error;
        if (hook != "step") {
          EXPECT_NE(error.find(hook + " hook"), std::string::npos) << error;
        }
        expectEngineAlive();
        EXPECT_EQ(patch(cmd("stop")).status, 200);
        EXPECT_EQ(del("/flows/" + id).status, 200);
        ASSERT_TRUE(waitFor([&] { return hosts().empty(); }, 10s));
      }
    }
  }
  std::cout << "[ external signals inside hooks: " << n << " trials, engine alive ]\n";
}

// The zygote (the host spawner) killed from outside: the hosts it forked die with it (their
// flows fail naming SIGKILL), the engine lives on, and the next start spawns a new zygote.
TEST_F(ExternalKillTest, TheZygoteKilledTakesItsHostsAndComesBack) {
  ASSERT_EQ(post("/flows", R"([
    {"flow_id":"z0","type":"ticker","config":{"interval_ms":10},"runtime":{"isolation":"process"}},
    {"flow_id":"z1","type":"ticker","config":{"interval_ms":10},"runtime":{"isolation":"process"}}])")
                .status,
            201);
  const std::vector<std::string> ids = {"z0", "z1"};
  int previous = -1;
  const auto until = SteadyClock::now() + 2s;
  for (int trial = 0; trial < 2 || SteadyClock::now() < until; ++trial) {
    ASSERT_EQ(patch(R"({"command":"start","flow_ids":["z0","z1"]})").status, 200);
    ASSERT_TRUE(waitFor([&] { return hosts().size() == 2; }, 10s)) << hosts().size();
    for (int pid : hosts()) EXPECT_EQ(argv0(pid), "sluice-flow-host") << pid;
    auto zs = zygotes(server_->pid());
    ASSERT_EQ(zs.size(), 1u);
    const int zygote = std::get<0>(zs[0]);
    EXPECT_NE(zygote, previous) << "a new zygote after the last one died";
    previous = zygote;
    const std::vector<int> forked = hosts();
    ::kill(zygote, SIGKILL);
    for (const auto& id : ids) {
      ASSERT_TRUE(waitFor([&] { return statusOf(id) == "failed"; }, 10s)) << id;
      EXPECT_NE(errorOf(id).find("SIGKILL"), std::string::npos) << errorOf(id);
    }
    expectEngineAlive();
    // (a host that outlived its zygote would be init's child, no longer listed by hosts())
    for (int pid : forked) {
      EXPECT_TRUE(waitFor(
          [pid] {
            const char st = processState(pid);
            return st == 0 || st == 'Z';  // gone, or dead and not yet reaped by its new parent
          },
          10s))
          << pid << " lives on";
    }
  }
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["z0","z1"]})").status, 200);
  for (const auto& id : ids) {
    int64_t ticks = metric(id, "ticks");
    EXPECT_TRUE(waitFor([&] { return metric(id, "ticks") > ticks + 2; }, 10s)) << id;
  }
}

// SLUICE_HOST_SPAWN=exec: no zygote; each host is a fork+exec of the engine's executable, a
// child of the engine, and contained the same way.
TEST_F(ExternalKillTest, HostsAreExecdWhenAsked) {
  ASSERT_EQ(server_->kill(SIGTERM), 0);
  ::setenv("SLUICE_HOST_SPAWN", "exec", 1);  // inherited by the server only
  startServer();
  ::unsetenv("SLUICE_HOST_SPAWN");
  ASSERT_EQ(post("/flows", R"([{"flow_id":"x","type":"ticker","config":{"interval_ms":10},
                               "runtime":{"isolation":"process"}}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["x"]})").status, 200);
  ASSERT_TRUE(waitFor([&] { return hosts().size() == 1; }, 10s));
  EXPECT_TRUE(zygotes(server_->pid()).empty());
  auto direct = children(server_->pid());
  ASSERT_EQ(direct.size(), 1u);
  EXPECT_EQ(argv0(std::get<0>(direct[0])), "sluice-flow-host");
  ::kill(std::get<0>(direct[0]), SIGKILL);
  ASSERT_TRUE(waitFor([&] { return statusOf("x") == "failed"; }, 10s));
  EXPECT_NE(errorOf("x").find("SIGKILL"), std::string::npos) << errorOf("x");
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["x"]})").status, 200);
  int64_t ticks = metric("x", "ticks");
  EXPECT_TRUE(waitFor([&] { return metric("x", "ticks") > ticks + 2; }, 10s));
  expectEngineAlive();
}

}  // namespace
}  // namespace sluice::test
