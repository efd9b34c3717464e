#include "core/cluster/membership.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/model/wall_clock.hpp"

namespace sluice::cluster {

Membership::Membership(Store& store, MembershipOptions options, MembershipCallbacks callbacks)
    : store_(store),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)),
      started_ms_(wallClockMs()),
      last_ok_(std::chrono::steady_clock::now()) {
  renewer_ = std::thread([this] { renewLoop(); });
  watchdog_ = std::thread([this] { watchLoop(); });
}

Membership::~Membership() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  renewer_.join();
  watchdog_.join();
  if (stay_listed_) return;
  if (auto left = store_.leaveCluster(options_.node_id); !left.ok()) {
    spdlog::warn("cluster: cannot leave: {}", left.error().message);
  }
}

Membership::View Membership::view() const {
  std::lock_guard lock(mu_);
  return view_;
}

bool Membership::renewNow() {
  std::lock_guard renew_lock(renew_mu_);
  // The lease runs from the store's now, which is after this: counting from here, the fence
  // (TTL/2 later) comes before the lease can lapse, whatever the call's latency.
  const auto sent = std::chrono::steady_clock::now();
  {
    // A process that was frozen (SIGSTOP) or starved may run this before its watchdog: fence
    // first when the last renewal is too old, whatever this one's outcome.
    std::lock_guard callbacks(callback_mu_);
    fenceIfLapsed();
  }
  auto leading = store_.holdLeadership(options_.ttl.count());
  const bool leader = leading.ok() && leading.value();
  auto until = store_.renewNodeLease(options_.node_id, options_.url, started_ms_,
                                     options_.ttl.count(), leader);
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    changed = view_.leader != leader;
    view_.leader = leader;
    if (until.ok()) {
      last_ok_ = std::max(last_ok_, sent);
      view_.renewed = true;
      view_.lease_until_ms = until.value();
      view_.last_error.clear();
    } else {
      view_.last_error = until.error().message;
    }
  }
  // The fence is lifted only by a renewal sent less than TTL/2 ago (one that hung for longer
  // proves nothing about now), and under the same lock as the fence itself, so the two
  // callbacks never cross.
  bool unfence = false;
  if (until.ok()) {
    std::lock_guard callbacks(callback_mu_);
    if (callbacks_.renewed) callbacks_.renewed(sent + options_.ttl / 2);
    {
      std::lock_guard lock(mu_);
      unfence = view_.fenced && std::chrono::steady_clock::now() - sent < options_.ttl / 2;
      if (unfence) view_.fenced = false;
    }
    if (unfence) {
      spdlog::warn("cluster: the lease of {} is renewed again", options_.node_id);
      if (callbacks_.unfence) callbacks_.unfence();
    }
  }
  if (changed) {
    spdlog::info("cluster: node {} {} the leader", options_.node_id,
                 leader ? "is now" : "is no longer");
    if (callbacks_.leadership) callbacks_.leadership(leader);
  }
  if (!until.ok()) {
    spdlog::warn("cluster: cannot renew the lease of {}: {}", options_.node_id,
                 until.error().message);
  }
  return until.ok();
}

void Membership::renewLoop() {
  const auto period = std::max(options_.ttl / 3, std::chrono::milliseconds(20));
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, period, [&] { return stop_; })) return;
    }
    renewNow();
  }
}

void Membership::watchLoop() {
  const auto tick = std::max(options_.ttl / 20, std::chrono::milliseconds(10));
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, tick, [&] { return stop_; })) return;
    }
    std::lock_guard callbacks(callback_mu_);
    fenceIfLapsed();
  }
}

void Membership::fenceIfLapsed() {
  const auto half = options_.ttl / 2;
  std::string why;
  {
    std::lock_guard lock(mu_);
    if (view_.fenced || std::chrono::steady_clock::now() - last_ok_ < half) return;
    view_.fenced = true;
    why = "no lease renewal for " + std::to_string(half.count()) + " ms (half the lease TTL)" +
          (view_.last_error.empty() ? "" : ": " + view_.last_error);
  }
  spdlog::error("cluster: node {} fences itself: {}", options_.node_id, why);
  if (callbacks_.fence) callbacks_.fence(why);
}

}  // namespace sluice::cluster
