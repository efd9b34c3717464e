// Races between requests on one flow, each driven many times in a loop bounded in time: a
// command against a DELETE, a PUT against a DELETE and a re-creation, a read of GET /flows
// against writes, a validate hook that does not return.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <thread>

#include "fakes/engine_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

class EngineRacesTest : public EngineFixture {
 protected:
  std::filesystem::path files() { return dir_ / "files"; }
  size_t liveInstances(const std::string& dir) {
    std::error_code ec;
    size_t n = 0;
    for (auto it = std::filesystem::directory_iterator(files() / dir, ec);
         !ec && it != std::filesystem::directory_iterator(); ++it) {
      ++n;
    }
    return n;
  }
  // Runs the two functions at (nearly) the same instant on two threads.
  template <class A, class B>
  static void together(A a, B b) {
    std::atomic<int> ready{0};
    std::thread t([&] {
      ++ready;
      while (ready.load() < 2) {
      }
      a();
    });
    ++ready;
    while (ready.load() < 2) {
    }
    b();
    t.join();
  }
};

// A start accepted before a DELETE must never run after the DELETE's stop: a deleted flow is
// never left running (its plugin instance count is 0 once both requests are answered).
TEST_F(EngineRacesTest, StartRacingDeleteNeverLeavesADeletedFlowRunning) {
  const auto until = SteadyClock::now() + 3s;
  int trials = 0;
  while (SteadyClock::now() < until || trials < 20) {
    const std::string id = "r" + std::to_string(trials);
    create(R"({"flow_id":")" + id +
           R"(","type":"probe","config":{"live_dir":"live","interval_ms":1}})");
    if (trials % 2 == 1) {
      ASSERT_TRUE(command(Command::kStart, {id}).ok());  // then stop, start and DELETE race
    }
    std::promise<void> started;
    std::promise<void> removed;
    together(
        [&] {
          CommandRequest req;
          req.command = trials % 2 == 1 ? Command::kStop : Command::kStart;
          req.flow_ids = std::vector<std::string>{id};
          engine_->command(req, [&](Result<std::vector<CommandDetail>>) {
            if (trials % 2 == 0) return started.set_value();
            CommandRequest again;
            again.flow_ids = std::vector<std::string>{id};
            engine_->command(again,
                             [&](Result<std::vector<CommandDetail>>) { started.set_value(); });
          });
        },
        [&] { engine_->remove(id, [&](Result<Outcome>) { removed.set_value(); }); });
    ASSERT_EQ(started.get_future().wait_for(10s), std::future_status::ready);
    ASSERT_EQ(removed.get_future().wait_for(10s), std::future_status::ready);
    EXPECT_FALSE(engine_->status(id).has_value());
    ASSERT_EQ(liveInstances("live"), 0u) << "a deleted flow was left running, trial " << trials;
    ++trials;
  }
  std::cout << "[ start/DELETE races: " << trials << " trials ]\n";
}

// GET /flows never serves a list older than the last write answered before it.
TEST_F(EngineRacesTest, ListIsNeverStaleAfterAWrite) {
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) engine_->listJson();
  });
  const auto until = SteadyClock::now() + 3s;
  int writes = 0;
  while (SteadyClock::now() < until || writes < 50) {
    const std::string id = "l" + std::to_string(writes);
    create(R"({"flow_id":")" + id + R"(","type":"noop","name":"v0"})");
    EXPECT_NE(engine_->listJson()->find("\"" + id + "\""), std::string::npos) << id;
    ASSERT_TRUE(update(R"({"flow_id":")" + id + R"(","type":"noop","name":"v1"})").ok());
    auto list = engine_->listJson();
    EXPECT_NE(list->find(R"("flow_id":")" + id + R"(","type":"noop","name":"v1")"),
              std::string::npos)
        << "stale after PUT of " << id;
    ASSERT_TRUE(remove(id).ok());
    EXPECT_EQ(engine_->listJson()->find("\"" + id + "\""), std::string::npos) << id;
    ++writes;
  }
  stop = true;
  reader.join();
  std::cout << "[ list reads against " << writes << " create/PUT/DELETE rounds ]\n";
}

// A PUT racing a DELETE and a re-creation under the same id: the PUT never overwrites the new
// flow's stored configuration, and what is stored equals what the engine serves.
TEST_F(EngineRacesTest, PutRacingDeleteNeverOverwritesARecreatedFlow) {
  const auto until = SteadyClock::now() + 3s;
  int trials = 0;
  int put_ok = 0;
  std::map<std::string, std::string> served;
  while (SteadyClock::now() < until || trials < 20) {
    const std::string id = "u" + std::to_string(trials);
    create(R"({"flow_id":")" + id + R"(","type":"probe","name":"old"})");
    if (trials % 2 == 0) {
      ASSERT_TRUE(command(Command::kStart, {id}).ok());
    }
    std::promise<Result<std::string>> put;
    together(
        [&] {
          engine_->update(spec(R"({"flow_id":")" + id + R"(","type":"probe","name":"put"})"),
                          [&](Result<std::string> r) { put.set_value(std::move(r)); });
        },
        [&] {
          ASSERT_TRUE(remove(id).ok());
          create(R"({"flow_id":")" + id + R"(","type":"probe","name":"fresh"})");
        });
    auto r = put.get_future().get();
    if (r.ok()) ++put_ok;
    auto now = engine_->getJson(id);
    ASSERT_TRUE(now.has_value());
    served[id] = *now;
    ++trials;
  }
  // What the engine served is what is stored.
  reopen();
  for (const auto& [id, record] : served) {
    EXPECT_EQ(engine_->getJson(id).value_or("(missing)"), record) << id;
  }
  std::cout << "[ PUT/DELETE/re-create races: " << trials << " trials, " << put_ok
            << " PUTs answered ok ]\n";
}

// A validate hook that does not return: the request is answered at its deadline, a worker
// stands in for the pinned one, and leaves again when the hook returns.
TEST_F(EngineRacesTest, ValidateHookPastItsDeadlineIsReplacedThenRetired) {
  validate_timeout_ms_ = 200;
  reopen();
  const auto before = engine_->workerCount();
  auto r = engine_->create(
      {spec(R"({"flow_id":"v","type":"probe","config":{"validate_block_ms":1500}})")});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("did not finish within 200 ms"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(engine_->workerCount(), before + 1);
  EXPECT_TRUE(waitFor([&] { return engine_->workerCount() == before; }, 10s))
      << engine_->workerCount();
}

// A hook stuck past its deadline (thread isolation) gets a replacement worker, which retires
// when the hook returns (ThreadPoolTest goes past the old lifetime cap of 32).
TEST_F(EngineRacesTest, ReplacementWorkersRetireWhenStuckHooksReturn) {
  const auto before = engine_->workerCount();
  for (int i = 0; i < 3; ++i) {
    const std::string id = "s" + std::to_string(i);
    create(R"({"flow_id":")" + id +
           R"(","type":"probe","config":{"block":"start","block_ms":400,"ignore_cancel":true},)"
           R"("runtime":{"start_timeout_ms":50}})");
    auto r = command(Command::kStart, {id});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value()[0].state, State::kFailed);
    EXPECT_NE(r.value()[0].error.find("(in the start hook)"), std::string::npos);
    EXPECT_EQ(engine_->workerCount(), before + 1);
    EXPECT_TRUE(waitFor([&] { return engine_->workerCount() == before; }, 10s))
        << engine_->workerCount();
  }
}

// Under process isolation the validate hook runs in a host process: past its deadline the host
// is killed (no worker is pinned), and a crash costs the host, not the engine.
TEST_F(EngineRacesTest, ProcessIsolatedValidateIsKilledOrContained) {
  validate_timeout_ms_ = 300;
  reopen();
  const auto before = engine_->workerCount();
  auto r = engine_->create({spec(
      R"({"flow_id":"v","type":"probe","config":{"validate_block_ms":60000},"runtime":{"isolation":"process"}})")});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("did not finish within 300 ms; its host process was killed"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(engine_->workerCount(), before);
  // Room for a slow host start (sanitizer builds) in the cases that must not time out, and a
  // sanitizer in the host must let the crash be a crash (it is inherited through exec).
  validate_timeout_ms_ = 20000;
  for (const char* var : {"ASAN_OPTIONS", "TSAN_OPTIONS"}) {
    const char* old = std::getenv(var);
    std::string value = old != nullptr && *old != '\0' ? std::string(old) + ":" : "";
    value += "handle_segv=0:allow_user_segv_handler=1";
    ::setenv(var, value.c_str(), 1);
  }
  reopen();
  r = engine_->create({spec(
      R"({"flow_id":"c","type":"probe","config":{"validate_crash":true},"runtime":{"isolation":"process"}})")});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.error().message.find("validate hook failed: host process killed by signal 11 (SIGSEGV)"),
      std::string::npos)
      << r.error().message;
  // A good config still validates in a host and its problems come back with their paths.
  r = engine_->create({spec(
      R"({"flow_id":"b","type":"probe","config":{"bad":true},"runtime":{"isolation":"process"}})")});
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.error().details.size(), 1u);
  EXPECT_EQ(r.error().details[0].path, "/config/bad");
  create(R"({"flow_id":"ok","type":"probe","runtime":{"isolation":"process"}})");
}

}  // namespace
}  // namespace sluice::test
