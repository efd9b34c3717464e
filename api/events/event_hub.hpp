// GET /events: the change feed as Server-Sent Events, to any number of subscribers.
//
// One thread serves every subscriber. It wakes when the feed has new events or a write
// finished, and hands each subscriber the events it has not seen, one write at a time: a
// subscriber whose previous write is still on its way gets nothing more until it is done, so
// a slow client holds at most one batch in memory, and the engine never waits on anybody. A
// subscriber that falls more than `max_lag` events behind is dropped, with the reason logged;
// it may reconnect with Last-Event-ID.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/http/reply.hpp"
#include "core/events/change_feed.hpp"

namespace sluice::events {

struct EventFilter {
  std::set<std::string> flow_ids;  // empty: every flow (and the plugin events)
  bool state = true;
  bool config = true;
  bool plugin = true;
  bool passes(const Event& e) const;
};

struct HubOptions {
  std::chrono::milliseconds heartbeat{15'000};
  uint64_t max_lag = 10'000;  // events a subscriber may fall behind before it is dropped
  size_t batch = 256;         // events per write at most
};

class EventHub {
 public:
  EventHub(ChangeFeed& feed, HubOptions options);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  /// Streams to `sink` the events after `after` (nothing: only those published from now on)
  /// that pass `filter`. `who` names the client in the log. False once closed.
  bool subscribe(std::shared_ptr<http::StreamSink> sink, EventFilter filter,
                 std::optional<uint64_t> after, std::string who);
  /// Sends what each subscriber has not seen yet, ends every stream and refuses new ones
  /// (shutdown).
  void closeAll();
  size_t subscribers() const;

 private:
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool pending = false;
    std::atomic<bool> subscribed{false};  // written under the hub's mu_: it has subscribers
    void poke();
  };
  struct Subscriber;
  void run();
  /// Hands one subscriber its next batch; false when it is done (gone, dropped, ended).
  bool pump(Subscriber& s, std::chrono::steady_clock::time_point now, bool final_flush);

  ChangeFeed& feed_;
  const HubOptions options_;
  std::shared_ptr<Wake> wake_;
  uint64_t listener_ = 0;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Subscriber>> subs_;  // guarded by mu_
  bool closing_ = false;                           // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice::events
