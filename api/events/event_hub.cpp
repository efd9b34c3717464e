#include "api/events/event_hub.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>

namespace sluice::events {

using Clock = std::chrono::steady_clock;

bool EventFilter::passes(const Event& e) const {
  switch (e.kind) {
    case EventKind::kState:
      if (!state) return false;
      break;
    case EventKind::kConfig:
      if (!config) return false;
      break;
    case EventKind::kPlugin:
      return plugin && flow_ids.empty();
  }
  return flow_ids.empty() || flow_ids.count(e.flow_id) != 0;
}

struct EventHub::Subscriber : std::enable_shared_from_this<Subscriber> {
  std::shared_ptr<http::StreamSink> sink;
  EventFilter filter;
  std::string who;
  uint64_t cursor = 0;  // hub thread only: the last event looked at
  Clock::time_point last_write;
  std::atomic<bool> writing{false};
  std::atomic<bool> failed{false};
};

void EventHub::Wake::poke() {
  {
    std::lock_guard lock(mu);
    if (pending) return;  // the hub has not woken for the last poke yet: it sees this one too
    pending = true;
  }
  cv.notify_one();
}

EventHub::EventHub(ChangeFeed& feed, HubOptions options)
    : feed_(feed), options_(options), wake_(std::make_shared<Wake>()) {
  // Called under the feed's lock: only flags the hub awake, and only when it has subscribers
  // (a command to 100,000 flows publishes 200,000 events; a subscriber that comes later reads
  // them from the feed).
  listener_ = feed_.addListener([wake = wake_] {
    if (wake->subscribed.load(std::memory_order_acquire)) wake->poke();
  });
  thread_ = std::thread([this] { run(); });
}

EventHub::~EventHub() {
  closeAll();
  feed_.removeListener(listener_);
}

bool EventHub::subscribe(std::shared_ptr<http::StreamSink> sink, EventFilter filter,
                         std::optional<uint64_t> after, std::string who) {
  auto s = std::make_shared<Subscriber>();
  s->sink = std::move(sink);
  s->filter = std::move(filter);
  s->who = std::move(who);
  s->cursor = after.value_or(feed_.last());
  s->last_write = Clock::now();
  {
    std::lock_guard lock(mu_);
    if (closing_) return false;
    subs_.push_back(s);
    wake_->subscribed.store(true, std::memory_order_release);
  }
  wake_->poke();
  return true;
}

size_t EventHub::subscribers() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

void EventHub::closeAll() {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
    closing_ = true;
  }
  wake_->poke();
  if (thread_.joinable()) thread_.join();
}

namespace {

// One event of the stream, its data written by `data(out)` (compact JSON: one line).
template <typename WriteData>
void appendEvent(std::string& out, uint64_t id, std::string_view kind, WriteData&& data) {
  out += "id: ";
  out += std::to_string(id);
  out += "\nevent: ";
  out += kind;
  out += "\ndata: ";
  data(out);
  out += "\n\n";
}

}  // namespace

bool EventHub::pump(Subscriber& s, Clock::time_point now, bool final_flush) {
  if (s.failed.load() || !s.sink->open()) {
    spdlog::debug("/events: {} is gone", s.who);
    return false;
  }
  const uint64_t last = feed_.last();
  if (s.writing.load()) {
    // Dropped only when stuck: its socket has not taken the last batch for a second, and it is
    // more than max_lag events behind. A reader that keeps up is never dropped by a burst.
    if (last > s.cursor && last - s.cursor > options_.max_lag &&
        now - s.last_write >= std::chrono::seconds(1)) {
      spdlog::warn(
          "/events: dropping {}: it reads too slowly ({} events behind, the limit is {}); it "
          "may reconnect with Last-Event-ID",
          s.who, last - s.cursor, options_.max_lag);
      return false;
    }
    return true;
  }
  std::string chunk;
  ChangeFeed::Read read = feed_.since(s.cursor, options_.batch);
  if (read.lost) {
    // Too far behind (or an id from another run): start over from the current state.
    const uint64_t from = s.cursor;
    s.cursor = last;
    const std::string why = from > last
                                ? "is newer than the newest event (" + std::to_string(last) +
                                      "): it comes from another run or another server"
                                : "is older than the events this server still holds (the last " +
                                      std::to_string(feed_.capacity()) + " events of this run)";
    const std::string data = "{\"reason\":\"event id " + std::to_string(from) + " " + why +
                             ": re-read the state\",\"last_event_id\":" + std::to_string(last) +
                             "}";
    appendEvent(chunk, last, "reset", [&](std::string& out) { out += data; });
  }
  for (const auto& e : read.events) {
    s.cursor = e->seq;
    if (s.filter.passes(*e)) {
      appendEvent(chunk, e->seq, toString(e->kind), [&](std::string& out) { e->appendJson(out); });
    }
  }
  if (chunk.empty() && !final_flush && now - s.last_write >= options_.heartbeat) {
    chunk = ": heartbeat\n\n";
  }
  if (chunk.empty()) return true;
  s.writing = true;
  s.last_write = now;
  std::weak_ptr<Wake> weak = wake_;
  // The callback keeps the subscriber alive: it may come after the hub dropped it.
  return s.sink->write(std::move(chunk), [self = s.shared_from_this(), weak](bool ok) {
    if (!ok) self->failed = true;
    self->writing = false;
    if (auto w = weak.lock()) w->poke();
  });
}

void EventHub::run() {
  for (;;) {
    bool closing;
    std::vector<std::shared_ptr<Subscriber>> subs;
    {
      std::unique_lock lock(wake_->mu);
      // Wakes at least as often as heartbeats are due, and once a second to notice clients
      // that are gone.
      const auto tick =
          std::min<std::chrono::milliseconds>(options_.heartbeat, std::chrono::seconds(1));
      wake_->cv.wait_for(lock, tick, [&] { return wake_->pending; });
      wake_->pending = false;
    }
    {
      std::lock_guard lock(mu_);
      closing = closing_;
      subs = subs_;
    }
    const auto now = Clock::now();
    std::vector<Subscriber*> done;
    for (const auto& s : subs) {
      if (!pump(*s, now, closing)) done.push_back(s.get());
    }
    if (closing) break;
    if (!done.empty()) {
      std::vector<std::shared_ptr<Subscriber>> ended;
      {
        std::lock_guard lock(mu_);
        std::erase_if(subs_, [&](const auto& s) {
          if (std::find(done.begin(), done.end(), s.get()) == done.end()) return false;
          ended.push_back(s);
          return true;
        });
        wake_->subscribed.store(!subs_.empty(), std::memory_order_release);
      }
      for (const auto& s : ended) s->sink->end();
    }
  }
  // Shutdown: each stream is sent what it has not seen yet, batch after batch (at most
  // kFlushBound in all), and ends once that is on the wire.
  constexpr auto kFlushBound = std::chrono::seconds(2);
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard lock(mu_);
    subs.swap(subs_);
  }
  const auto until = Clock::now() + kFlushBound;
  while (Clock::now() < until) {
    bool pending = false;
    for (const auto& s : subs) {
      if (s->failed.load() || !s->sink->open()) continue;
      if (s->writing.load()) {
        pending = true;
      } else if (s->cursor < feed_.last()) {
        pending = true;
        pump(*s, Clock::now(), true);
      }
    }
    if (!pending) break;
    std::unique_lock lock(wake_->mu);
    wake_->cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return wake_->pending; });
    wake_->pending = false;
  }
  for (const auto& s : subs) s->sink->end();
}

}  // namespace sluice::events
