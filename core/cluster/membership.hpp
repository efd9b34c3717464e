// This node's membership of a cluster: its lease, renewed on the store's clock every TTL/3,
// the leadership it tries to hold, and the self-fence. A watchdog of its own (a renewal may
// block on a dead server) calls `fence` once no renewal succeeded for TTL/2, well before the
// lease can lapse elsewhere, and `unfence` after the next renewal that succeeds.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/store/store.hpp"

namespace sluice::cluster {

struct MembershipOptions {
  std::string node_id;
  std::string url;  // what other nodes and clients use to reach this node
  std::chrono::milliseconds ttl{10'000};
};

struct MembershipCallbacks {
  std::function<void(const std::string& why)> fence;  // stop every owned flow, at once
  std::function<void()> unfence;                      // the lease is ours again
  std::function<void(bool leading)> leadership;       // leadership gained or lost
  /// After each renewal that succeeded: the lease holds (with the fence's margin) until then.
  std::function<void(std::chrono::steady_clock::time_point)> renewed;
};

class Membership {
 public:
  Membership(Store& store, MembershipOptions options, MembershipCallbacks callbacks = {});
  /// Stops renewing and leaves the cluster (the row goes, so others need not wait for it).
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  struct View {
    bool leader = false;
    bool fenced = false;
    bool renewed = false;        // a renewal ever succeeded
    int64_t lease_until_ms = 0;  // store clock
    std::string last_error;      // of the last failed renewal, empty after a success
  };
  View view() const;
  const MembershipOptions& options() const { return options_; }
  /// Renews once now, on the caller's thread (at start, before serving).
  bool renewNow();
  /// Keeps the node's row when it ends (a shutdown whose plugin code did not stop: the others
  /// must wait for the lease to lapse rather than take its flows at once).
  void stayListed() { stay_listed_ = true; }

 private:
  void renewLoop();
  void watchLoop();

  Store& store_;
  const MembershipOptions options_;
  const MembershipCallbacks callbacks_;
  const int64_t started_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                              // guarded by mu_
  View view_;                                      // guarded by mu_
  std::chrono::steady_clock::time_point last_ok_;  // guarded by mu_; start counts as renewed
  std::mutex renew_mu_;                            // one renewal at a time
  std::mutex callback_mu_;  // fence and unfence decided and called one at a time (before mu_)
  /// Fences the node once when no renewal was sent less than TTL/2 ago (callback_mu_ held).
  void fenceIfLapsed();
  std::atomic<bool> stay_listed_{false};
  std::thread renewer_;
  std::thread watchdog_;
};

}  // namespace sluice::cluster
