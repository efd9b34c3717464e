#include "api/http/connection.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <vector>

#include "api/http/error_json.hpp"

namespace sluice::http {

using namespace Pistache;

Connection::Connection(ConnectionTable* table, const std::shared_ptr<Tcp::Peer>& peer,
                       Tcp::Transport* transport, Http::Handler* handler,
                       const FramerLimits& limits)
    : framer(limits),
      table_(table),
      framer_limits_(limits),
      fd_(peer->fd()),
      transport_(transport),
      handler_(handler),
      peer_(peer),
      since_(EdgeClock::now()) {}

bool Connection::acceptingInput() {
  std::lock_guard lock(mu_);
  return !refused_ && !close_after_response_;
}

void Connection::noteInput(bool mid_request, bool in_body) {
  std::lock_guard lock(mu_);
  // The header timeout runs from a request's first byte; the body timeout from its last.
  if ((mid_request && !mid_request_) || in_body) since_ = EdgeClock::now();
  mid_request_ = mid_request;
  in_body_ = in_body;
}

bool Connection::beginRequest(bool keep_alive) {
  std::lock_guard lock(mu_);
  if (refused_ || close_after_response_) return false;
  ++in_flight_;
  mid_request_ = false;
  in_body_ = false;
  served_one_ = true;
  if (!keep_alive) close_after_response_ = true;
  return true;
}

bool Connection::endRequest(bool sent, bool on_wire) {
  std::optional<std::pair<int, std::string>> refusal;
  bool close = false;
  {
    std::lock_guard lock(mu_);
    --in_flight_;
    since_ = EdgeClock::now();
    if (in_flight_ == 0) {
      refusal = std::move(pending_refusal_);
      pending_refusal_.reset();
      close = !refusal && close_after_response_;
    }
  }
  if (refusal) {
    sendRefusal(refusal->first, refusal->second);
    return false;
  }
  if (close) {
    closeAfter(sent, on_wire);
    return false;
  }
  return true;
}

void Connection::closeAfterResponse() {
  std::lock_guard lock(mu_);
  close_after_response_ = true;
}

bool Connection::idle() {
  std::lock_guard lock(mu_);
  return in_flight_ == 0;
}

void Connection::refuse(int status, const std::string& message) {
  {
    std::lock_guard lock(mu_);
    if (refused_) return;
    refused_ = true;
    if (in_flight_ > 0) {
      pending_refusal_.emplace(status, message);
      return;
    }
  }
  sendRefusal(status, message);
}

void Connection::sendRefusal(int status, const std::string& message) {
  spdlog::debug("connection {}: refused with {}: {}", fd_, status, message);
  try {
    Http::ResponseWriter writer(Http::Version::Http11, transport_, handler_, peer_);
    writer.headers().add<Http::Header::Connection>(Http::ConnectionControl::Close);
    writer.headers().add<Http::Header::ContentType>(MIME(Application, Json));
    writer.send(static_cast<Http::Code>(status), errorJson(message));
    closeAfter(true);
  } catch (const std::exception& e) {
    // The peer is gone already: nothing to answer.
    spdlog::debug("connection {}: refusal not sent: {}", fd_, e.what());
    table_->shutdownSocket(*this, SHUT_RDWR);
  }
}

// Once the last response is on the wire, send FIN: the client reads it whole, then EOF; the
// reaper closes the socket for good the linger time later. Until then the response may wait in
// Pistache's write queue (a busy I/O thread, a client that reads slowly): that wait is bounded
// by the idle timeout, never by the linger time, so that a response handed over is not cut off.
//
// "On the wire" is learnt from an empty write queued behind the response (one connection's
// writes leave in order), never from the promise ResponseWriter::send returns: Pistache 0.0.5
// resolves that chained promise without the lock that then() takes, so a continuation attached
// from an engine thread while the I/O thread writes corrupts it (a SIGSEGV in asyncWriteImpl,
// seen under load). A raw Peer::send promise is resolved under its lock.
void Connection::closeAfter(bool sent, bool on_wire) {
  if (sent && on_wire) return halfClose();
  auto peer = sent ? peer_.lock() : nullptr;
  {
    std::lock_guard lock(mu_);
    const auto bound = peer ? EdgeClock::now() + table_->options().idle_timeout : EdgeClock::now();
    if (!close_at_ || *close_at_ < bound) close_at_ = bound;
  }
  if (!peer) {
    table_->shutdownSocket(*this, SHUT_RDWR);
    return;
  }
  auto self = shared_from_this();
  try {
    peer->send(RawBuffer(std::string(), 0))
        .then([self](ssize_t) { self->halfClose(); },
              [self](std::exception_ptr) {
                {
                  std::lock_guard lock(self->mu_);
                  self->close_at_ = EdgeClock::now();
                }
                self->table_->shutdownSocket(*self, SHUT_RDWR);
              });
  } catch (const std::exception& e) {
    spdlog::debug("connection {}: cannot queue the close: {}", fd_, e.what());
    table_->shutdownSocket(*this, SHUT_RDWR);
  }
}

void Connection::halfClose() {
  {
    std::lock_guard lock(mu_);
    close_at_ = EdgeClock::now() + table_->options().linger;
  }
  table_->shutdownSocket(*this, SHUT_WR);
}

Connection::Action Connection::due(EdgeClock::time_point now, const EdgeOptions& options) {
  std::lock_guard lock(mu_);
  if (close_at_) return now >= *close_at_ ? Action::kClose : Action::kNone;
  if (refused_ || in_flight_ > 0) return Action::kNone;
  if (mid_request_)
    return now - since_ >= options.header_timeout ? Action::kTimeout : Action::kNone;
  // Waiting for a request: the first one gets the header timeout, later ones the idle timeout.
  const auto limit = served_one_ ? options.idle_timeout : options.header_timeout;
  return now - since_ >= limit ? Action::kClose : Action::kNone;
}

ConnectionTable::ConnectionTable(EdgeOptions options) : options_(options) {
  reaper_ = std::thread([this] { reapLoop(); });
}

ConnectionTable::~ConnectionTable() { stop(); }

void ConnectionTable::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  reaper_.join();
}

bool ConnectionTable::add(const std::shared_ptr<Connection>& conn) {
  std::lock_guard lock(mu_);
  conn->registered_ = true;
  conns_.emplace(conn.get(), conn);
  if (counted_ >= options_.max_connections) return false;
  conn->counted_ = true;
  ++counted_;
  return true;
}

void ConnectionTable::remove(const std::shared_ptr<Connection>& conn) {
  std::lock_guard lock(mu_);
  if (!conn->registered_) return;
  conn->registered_ = false;
  if (conn->counted_) --counted_;
  conns_.erase(conn.get());
}

void ConnectionTable::shutdownSocket(Connection& conn, int how) {
  std::lock_guard lock(mu_);
  // A connection whose peer Pistache already dropped may have had its descriptor reused.
  if (conn.registered_ && !stopping_ && !conn.peer_.expired()) ::shutdown(conn.fd_, how);
}

size_t ConnectionTable::counted() {
  std::lock_guard lock(mu_);
  return counted_;
}

void ConnectionTable::reapLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.reap_interval);
    if (stopping_) break;
    const auto now = EdgeClock::now();
    std::vector<std::shared_ptr<Connection>> timed_out;
    // Connections whose peer Pistache dropped without telling the handler: forget them, never
    // touch their descriptor number again (it may belong to a new connection by now).
    for (auto it = conns_.begin(); it != conns_.end();) {
      Connection& c = *it->second;
      if (!c.peer_.expired()) {
        ++it;
        continue;
      }
      c.registered_ = false;
      if (c.counted_) --counted_;
      it = conns_.erase(it);
    }
    for (auto& [ptr, conn] : conns_) {
      switch (conn->due(now, options_)) {
        case Connection::Action::kNone:
          break;
        case Connection::Action::kClose:
          ::shutdown(conn->fd_, SHUT_RDWR);  // registered: the descriptor is still this one
          break;
        case Connection::Action::kTimeout:
          timed_out.push_back(conn);
          break;
      }
    }
    // Answering goes through Pistache's write queue: never under the table's mutex.
    lock.unlock();
    for (auto& conn : timed_out) {
      conn->refuse(408, "the request did not arrive in full within " +
                            std::to_string(options_.header_timeout.count()) + " ms");
    }
    timed_out.clear();
    lock.lock();
  }
}

}  // namespace sluice::http
