// The change feed: every committed change and every state transition of the engine, as one
// ordered stream of events with increasing sequence numbers.
//
// Producers (the flows' state machines, the catalog, the plugin loader) publish; consumers read
// what they have not seen yet: the /events stream, the cached status document and its ETag,
// the metrics counters. Publishing never waits on a consumer: it appends to a bounded ring
// (the oldest events fall out) and wakes the waiters. A consumer that fell further behind than
// the ring holds learns that it lost events, and must re-read the state.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model/states.hpp"

namespace sluice {

enum class EventKind : uint8_t { kState, kConfig, kPlugin };
std::string_view toString(EventKind kind);

/// A local flow's state as its event tells it, held as fields: the event's JSON is written only
/// when a consumer reads it. Most state events are never read (a command of 100,000 flows
/// publishes 200,000), so a transition does not pay for text nobody asked for.
struct StateFields {
  State state = State::kStopped;
  Desired desired = Desired::kStopped;
  std::chrono::system_clock::time_point since;
  std::string error;
};

/// The data of a `state` event: {"flow_id","status","desired","since","error"} and, for a flow
/// that runs on another node of a cluster, "node". Appended to `out`, or returned.
void appendStateEventJson(std::string& out, std::string_view flow_id, std::string_view status,
                          Desired desired, std::chrono::system_clock::time_point since,
                          std::string_view error, std::string_view node = {});
std::string stateEventJson(std::string_view flow_id, std::string_view status, Desired desired,
                           std::chrono::system_clock::time_point since, std::string_view error,
                           std::string_view node = {});

struct Event {
  uint64_t seq = 0;
  EventKind kind = EventKind::kState;
  std::string flow_id;  // empty for plugin events
  std::string data;     // the event's JSON object, compact (empty when held as `fields`)
  std::optional<StateFields> fields;
  /// The event's JSON object, compact: appended to `out` (no copy of `data`), or returned.
  void appendJson(std::string& out) const;
  std::string json() const;
};
using EventPtr = std::shared_ptr<const Event>;

class ChangeFeed {
 public:
  static constexpr size_t kDefaultCapacity = 65'536;
  explicit ChangeFeed(size_t capacity = kDefaultCapacity);

  /// Sequence numbers come in blocks that `reserve(count)` makes durable and returns the first
  /// of (0 when it failed): numbers then keep increasing across restarts, so a client that
  /// resumes with an id from before a restart is told to re-read the state instead of being
  /// handed unrelated events. Without a reserver numbering starts at 1. Set before publishing.
  /// The reserver runs under the feed's lock, once per block: when it fails, numbering goes
  /// on (never backwards) and it is asked again a block later.
  using Reserver = std::function<uint64_t(uint64_t count)>;
  static constexpr uint64_t kReserveBlock = 1'000'000;
  void setReserver(Reserver reserve);

  /// Called after every publish with the feed's lock held: must only wake its consumer (never
  /// call into the feed). Returns an id for removeListener.
  uint64_t addListener(std::function<void()> wake);
  /// After it returns, the listener is never called again.
  void removeListener(uint64_t id);

  /// Appends one event and returns its sequence number (the first is 1). Never blocks on a
  /// consumer. Callers that need their events in the order of their own changes publish while
  /// holding the lock that orders those changes.
  uint64_t publish(EventKind kind, std::string flow_id, std::string data);
  /// A local flow's state event, held as fields (its JSON is written when read). Counts the
  /// transition when `transition` (not for a new error in the same state).
  uint64_t publishState(std::string flow_id, StateFields fields, bool transition);

  /// The sequence number of the newest event, 0 when none.
  uint64_t last() const { return last_.load(std::memory_order_acquire); }
  size_t capacity() const { return ring_.size(); }

  struct Read {
    bool lost = false;  // events after `after` are no longer held: re-read the state
    std::vector<EventPtr> events;
  };
  /// Up to `max` events with a sequence number greater than `after`, oldest first. `lost` when
  /// `after` is older than the ring, from before this run, or newer than the newest event.
  Read since(uint64_t after, size_t max) const;

  /// Waits until an event newer than `after` exists, the feed is closed, or `deadline` passes.
  /// Returns true when a newer event exists.
  bool waitPast(uint64_t after, std::chrono::steady_clock::time_point deadline) const;
  /// Wakes every waiter for good (shutdown).
  void close();
  bool closed() const;

  /// Transitions into each state since the engine started.
  uint64_t transitionsTo(State s) const {
    return transitions_[static_cast<size_t>(s)].load(std::memory_order_relaxed);
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  uint64_t nextSeqLocked();
  uint64_t append(std::shared_ptr<Event> event);

  std::vector<EventPtr> ring_;  // guarded by mu_; event seq lives at ring_[seq % size]
  std::atomic<uint64_t> last_{0};
  uint64_t first_ = 1;         // guarded by mu_: the first number of this run's contiguous run
  uint64_t reserved_end_ = 0;  // guarded by mu_: numbers up to this one are reserved
  Reserver reserve_;           // guarded by mu_
  std::vector<std::pair<uint64_t, std::function<void()>>> listeners_;  // guarded by mu_
  uint64_t next_listener_ = 1;                                         // guarded by mu_
  bool closed_ = false;                                                // guarded by mu_
  std::array<std::atomic<uint64_t>, kStateCount> transitions_{};
};

}  // namespace sluice
