// The dedicated-thread runner: run's outcome reaches the flow; an orphaned run destroys its
// instance itself when it returns; nothing joins its own thread.
#include "core/runtime/runner.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "fakes/server_process.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// An instance whose run returns when told to, with a chosen status.
class FakeInstance final : public Instance {
 public:
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  int32_t status = SLUICE_OK;
  std::atomic<bool>* destroyed = nullptr;

  int32_t create(sluice_error*) override { return SLUICE_OK; }
  int32_t destroy(sluice_error*) override {
    if (destroyed != nullptr) *destroyed = true;
    return SLUICE_OK;
  }
  int32_t start(sluice_error*) override { return SLUICE_OK; }
  int32_t stop(int32_t, sluice_error*) override { return SLUICE_OK; }
  int32_t pause(sluice_error*) override { return SLUICE_OK; }
  int32_t resume(sluice_error*) override { return SLUICE_OK; }
  int32_t step(uint32_t*, sluice_error*) override { return SLUICE_OK; }
  int32_t reconfigure(const std::string&, sluice_error*) override { return SLUICE_OK; }
  int32_t run(sluice_error* e) override {
    released.wait();
    if (status != SLUICE_OK) sluice_error_set(e, "boom");
    return status;
  }
  bool canReconfigure() const override { return false; }
};

TEST(RunnerTest, ReportsHowRunEnded) {
  auto instance = std::make_shared<FakeInstance>();
  instance->status = SLUICE_ERROR;
  std::promise<void> ended;
  auto runner =
      Runner::start(instance, "f", [&](const std::shared_ptr<Runner>&) { ended.set_value(); });
  EXPECT_FALSE(runner->waitDone(20ms));
  instance->release.set_value();
  ASSERT_EQ(ended.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(runner->done());
  EXPECT_FALSE(runner->ok());
  EXPECT_EQ(runner->error(), "run hook failed: boom");
  runner->join();
}

TEST(RunnerTest, AnOrphanedRunDestroysItsInstanceWhenItReturns) {
  std::atomic<bool> destroyed{false};
  auto instance = std::make_shared<FakeInstance>();
  instance->destroyed = &destroyed;
  std::atomic<bool> ended{false};
  auto runner = Runner::start(instance, "f", [&](const std::shared_ptr<Runner>&) { ended = true; });
  ASSERT_TRUE(runner->orphan());
  runner.reset();  // the flow forgets it
  instance->release.set_value();
  instance.reset();
  EXPECT_TRUE(test::waitFor([&] { return destroyed.load(); }, 5s));
  EXPECT_FALSE(ended);
}

TEST(RunnerTest, TheLastOwnerMayBeTheThreadItself) {
  // The end callback drops the last reference to the runner on the runner's own thread: its
  // destructor must not join (which would throw "Resource deadlock avoided" and terminate).
  auto instance = std::make_shared<FakeInstance>();
  std::promise<void> ended;
  auto holder = std::make_shared<std::shared_ptr<Runner>>();
  *holder = Runner::start(instance, "f", [holder, &ended](const std::shared_ptr<Runner>& r) {
    r->join();        // detaches: called on the runner's thread
    holder->reset();  // the flow's reference goes too
    ended.set_value();
  });
  instance->release.set_value();
  EXPECT_EQ(ended.get_future().wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace sluice
