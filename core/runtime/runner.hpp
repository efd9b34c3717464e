// The dedicated thread of a SLUICE_FLOW_DEDICATED_THREAD instance: it runs the `run` hook from
// after start until the flow stops it.
//
// The thread co-owns the instance: when the flow gives up waiting for `run` (orphan()), the
// thread destroys the instance itself once `run` returns. Nothing ever joins the thread from
// itself: join() detaches when called on it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/isolation/instance.hpp"

namespace sluice {

class Runner {
 public:
  /// Called on the runner's thread when `run` returned and the runner is not orphaned.
  using Ended = std::function<void(const std::shared_ptr<Runner>&)>;

  /// Starts the thread calling instance->run().
  static std::shared_ptr<Runner> start(std::shared_ptr<Instance> instance, std::string flow_id,
                                       Ended ended);
  ~Runner();

  /// Waits up to `bound` for `run` to return; true when it did.
  bool waitDone(std::chrono::milliseconds bound);
  bool done() const;
  bool ok() const;
  /// run returned SLUICE_DONE: the flow's work is finished (ok() is true as well).
  bool finished() const;
  std::string error() const;
  /// `run` returned: joins the thread (detaches when called on the thread itself).
  void join();
  /// The flow stops waiting: the thread destroys the instance when `run` returns. False when
  /// `run` returned meanwhile (join() instead).
  bool orphan();

 private:
  Runner() = default;

  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;      // guarded by mu_: run returned
  bool orphaned_ = false;  // guarded by mu_
  bool ok_ = true;         // guarded by mu_
  bool finished_ = false;  // guarded by mu_
  std::string error_;      // guarded by mu_
};

}  // namespace sluice
