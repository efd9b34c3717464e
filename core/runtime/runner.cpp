#include "core/runtime/runner.hpp"

#include <sluice/plugin.h>
#include <spdlog/spdlog.h>

#include <array>

namespace sluice {

std::shared_ptr<Runner> Runner::start(std::shared_ptr<Instance> instance, std::string flow_id,
                                      Ended ended) {
  std::shared_ptr<Runner> runner(new Runner());
  std::weak_ptr<Runner> weak = runner;
  runner->thread_ = std::thread([weak, instance = std::move(instance), id = std::move(flow_id),
                                 ended = std::move(ended)]() mutable {
    std::array<char, 1024> buf;  // not zeroed: empty, and cut at its end
    buf.front() = buf.back() = '\0';
    sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
    int32_t rc = SLUICE_ERROR;
    std::string error;
    try {
      rc = instance->run(&e);
      buf.back() = '\0';
      if (rc != SLUICE_OK && rc != SLUICE_DONE) {
        error = std::string("run hook failed: ") + (buf[0] != '\0' ? buf.data() : "no message");
      }
    } catch (const std::exception& ex) {
      rc = SLUICE_ERROR;
      error = std::string("run hook threw an exception: ") + ex.what();
    } catch (...) {
      rc = SLUICE_ERROR;
      error = "run hook threw an exception";
    }
    auto self = weak.lock();
    bool orphaned = self == nullptr;
    if (self) {
      std::lock_guard lock(self->mu_);
      self->done_ = true;
      self->ok_ = rc == SLUICE_OK || rc == SLUICE_DONE;
      self->finished_ = rc == SLUICE_DONE;
      self->error_ = error;
      orphaned = self->orphaned_;
    }
    if (self) self->cv_.notify_all();
    if (orphaned) {
      spdlog::warn("flow {}: run hook returned late; releasing its instance", id);
      try {
        instance->destroy(nullptr);
      } catch (...) {
      }
      return;
    }
    instance.reset();
    if (ended) ended(self);
  });
  return runner;
}

Runner::~Runner() {
  // The last owner is gone; the thread (if still running) must not be std::terminate'd.
  if (thread_.joinable()) thread_.detach();
}

bool Runner::waitDone(std::chrono::milliseconds bound) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, bound, [&] { return done_; });
}

bool Runner::done() const {
  std::lock_guard lock(mu_);
  return done_;
}

bool Runner::ok() const {
  std::lock_guard lock(mu_);
  return ok_;
}

bool Runner::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

std::string Runner::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void Runner::join() {
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

bool Runner::orphan() {
  {
    std::lock_guard lock(mu_);
    if (done_) return false;
    orphaned_ = true;
  }
  thread_.detach();  // the thread never touches thread_: only the flow's strand does
  return true;
}

}  // namespace sluice
