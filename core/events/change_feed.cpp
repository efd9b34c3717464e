#include "core/events/change_feed.hpp"

#include <algorithm>

#include "core/model/json.hpp"
#include "core/model/wall_clock.hpp"
#include "core/runtime/brief_lock.hpp"

namespace sluice {

std::string_view toString(EventKind kind) {
  switch (kind) {
    case EventKind::kState:
      return "state";
    case EventKind::kConfig:
      return "config";
    case EventKind::kPlugin:
      return "plugin";
  }
  return "state";
}

ChangeFeed::ChangeFeed(size_t capacity) : ring_(std::max<size_t>(capacity, 1)) {}

void appendStateEventJson(std::string& out, std::string_view flow_id, std::string_view status,
                          Desired desired, std::chrono::system_clock::time_point since,
                          std::string_view error, std::string_view node) {
  out += "{\"flow_id\":";
  json::appendString(out, flow_id);
  out += ",\"status\":";
  json::appendString(out, status);
  out += ",\"desired\":\"";
  out += toString(desired);
  out += "\",\"since\":\"";
  out += formatTime(since);
  out += "\",\"error\":";
  if (error.empty()) {
    out += "null";
  } else {
    json::appendString(out, error);
  }
  if (!node.empty()) {
    out += ",\"node\":";
    json::appendString(out, node);
  }
  out += '}';
}

std::string stateEventJson(std::string_view flow_id, std::string_view status, Desired desired,
                           std::chrono::system_clock::time_point since, std::string_view error,
                           std::string_view node) {
  std::string out;
  appendStateEventJson(out, flow_id, status, desired, since, error, node);
  return out;
}

void Event::appendJson(std::string& out) const {
  if (!fields) {
    out += data;
    return;
  }
  appendStateEventJson(out, flow_id, toString(fields->state), fields->desired, fields->since,
                       fields->error);
}

std::string Event::json() const {
  std::string out;
  appendJson(out);
  return out;
}

uint64_t ChangeFeed::publish(EventKind kind, std::string flow_id, std::string data) {
  auto event = std::make_shared<Event>();
  event->kind = kind;
  event->flow_id = std::move(flow_id);
  event->data = std::move(data);
  return append(std::move(event));
}

uint64_t ChangeFeed::publishState(std::string flow_id, StateFields fields, bool transition) {
  if (transition) {
    transitions_[static_cast<size_t>(fields.state)].fetch_add(1, std::memory_order_relaxed);
  }
  auto event = std::make_shared<Event>();
  event->kind = EventKind::kState;
  event->flow_id = std::move(flow_id);
  event->fields = std::move(fields);
  return append(std::move(event));
}

uint64_t ChangeFeed::append(std::shared_ptr<Event> event) {
  uint64_t seq;
  EventPtr displaced;  // freed after the lock: other flows publish meanwhile
  {
    lockBriefly(mu_);
    std::lock_guard lock(mu_, std::adopt_lock);
    seq = nextSeqLocked();
    event->seq = seq;
    displaced = std::exchange(ring_[seq % ring_.size()], std::move(event));
    last_.store(seq, std::memory_order_release);
    for (auto& [id, wake] : listeners_) wake();
  }
  cv_.notify_all();
  return seq;
}

uint64_t ChangeFeed::nextSeqLocked() {
  const uint64_t last = last_.load(std::memory_order_relaxed);
  uint64_t seq = last + 1;
  if (reserve_ && seq > reserved_end_) {
    // Once per block (the first is taken when the engine starts, before any flow runs).
    const uint64_t first = reserve_(kReserveBlock);
    if (first > seq) {
      // The first block of a run (or a gap left by another writer): the events before the
      // jump are not comparable with the new ones, so the ring starts over.
      std::fill(ring_.begin(), ring_.end(), nullptr);
      first_ = first;
      seq = first;
    }
    // Numbers only ever go up. When the store failed (0) or is behind, they go on from here,
    // not durably, and the store is asked again after a block rather than at every event.
    reserved_end_ = (first >= seq ? first : seq) + kReserveBlock - 1;
  }
  return seq;
}

void ChangeFeed::setReserver(Reserver reserve) {
  std::lock_guard lock(mu_);
  reserve_ = std::move(reserve);
}

uint64_t ChangeFeed::addListener(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_listener_++;
  listeners_.emplace_back(id, std::move(wake));
  return id;
}

void ChangeFeed::removeListener(uint64_t id) {
  std::lock_guard lock(mu_);
  std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
}

ChangeFeed::Read ChangeFeed::since(uint64_t after, size_t max) const {
  Read out;
  std::lock_guard lock(mu_);
  const uint64_t last = last_.load(std::memory_order_relaxed);
  if (after == last) return out;
  // The ring holds the events (last - size, last] of this run.
  const uint64_t oldest =
      std::max<uint64_t>(first_, last >= ring_.size() ? last - ring_.size() + 1 : 1);
  if (after > last || after + 1 < oldest) {
    out.lost = true;
    return out;
  }
  const uint64_t end = std::min<uint64_t>(last, after + max);
  out.events.reserve(static_cast<size_t>(end - after));
  for (uint64_t seq = after + 1; seq <= end; ++seq) out.events.push_back(ring_[seq % ring_.size()]);
  return out;
}

bool ChangeFeed::waitPast(uint64_t after, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline,
                 [&] { return closed_ || last_.load(std::memory_order_relaxed) > after; });
  return last_.load(std::memory_order_relaxed) > after;
}

void ChangeFeed::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

bool ChangeFeed::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

}  // namespace sluice
