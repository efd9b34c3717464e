#include "api/http/reply.hpp"

#include <spdlog/spdlog.h>

#include "api/http/connection.hpp"
#include "api/http/error_json.hpp"

namespace sluice::http {

using namespace Pistache;

namespace {

// A response header Pistache has no class for (it does not write raw headers in responses).
class NamedHeader : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void write(std::ostream& os) const override { os << value_; }
  uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }

 private:
  std::string name_;
  std::string value_;
};

}  // namespace

void InFlight::enter() {
  std::lock_guard lock(mu_);
  ++count_;
}

void InFlight::leave() {
  std::lock_guard lock(mu_);
  if (--count_ == 0) cv_.notify_all();
}

bool InFlight::waitIdle(std::chrono::milliseconds bound) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, bound, [&] { return count_ == 0; });
}

Reply::Reply(Http::ResponseWriter writer, std::shared_ptr<Connection> conn,
             std::shared_ptr<InFlight> in_flight, Resume resume)
    : writer_(std::move(writer)),
      conn_(std::move(conn)),
      in_flight_(std::move(in_flight)),
      resume_(resume) {
  in_flight_->enter();
}

Reply::~Reply() {
  if (!sent_) send(500, errorJson("internal error: the request was not answered"));
}

void Reply::send(int code, const std::string& body, const std::vector<Http::Method>& allow) {
  if (sent_.exchange(true)) return;
  if (before_send_) {
    bool recorded = false;
    try {
      recorded = before_send_(code, body);
    } catch (const std::exception& e) {
      spdlog::error("before sending a {} response: {}", code, e.what());
    }
    if (!recorded) {
      // Never acknowledge what the audit log could not record.
      headers_.clear();
      return sendNow(503,
                     errorJson("the request could not be recorded in the audit log; "
                               "nothing was acknowledged, see the server's log"),
                     {});
    }
  }
  sendNow(code, body, allow);
}

void Reply::sendNow(int code, const std::string& body, const std::vector<Http::Method>& allow) {
  bool sent = false;
  try {
    if (code == 304) {
      // Not Modified: no body, and no Content-Type of a body not sent.
    } else if (content_type_.empty()) {
      writer_.headers().add<Http::Header::ContentType>(MIME(Application, Json));
    } else {
      writer_.headers().add(std::make_shared<NamedHeader>("Content-Type", content_type_));
    }
    if (!allow.empty()) writer_.headers().add<Http::Header::Allow>(allow);
    for (auto& [name, value] : headers_) {
      writer_.headers().add(std::make_shared<NamedHeader>(std::move(name), std::move(value)));
    }
    // Its promise is not looked at: see Connection::closeAfter.
    writer_.send(static_cast<Http::Code>(code), body);
    sent = true;
  } catch (const std::exception& e) {
    spdlog::warn("cannot send response: {}", e.what());
  }
  if (on_sent_) on_sent_(code);
  const bool more = conn_ && conn_->endRequest(sent);
  in_flight_->leave();
  // Requests pipelined behind this one waited for its response: handle them now.
  if (more && resume_) resume_(conn_);
}

void Reply::header(std::string name, std::string value) {
  headers_.emplace_back(std::move(name), std::move(value));
}

}  // namespace sluice::http

namespace sluice::http {

std::shared_ptr<StreamSink> Reply::openStream(std::string_view content_type) {
  if (!conn_ || sent_.exchange(true)) return nullptr;
  auto peer = conn_->peer();
  if (!peer) {
    sent_ = false;  // answered (and counted) by the destructor
    return nullptr;
  }
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: ";
  head.append(content_type);
  head += "\r\nCache-Control: no-cache\r\nConnection: close\r\n";
  for (const auto& [name, value] : headers_) head += name + ": " + value + "\r\n";
  head += "\r\n";
  conn_->closeAfterResponse();
  auto sink = std::make_shared<StreamSink>(conn_, in_flight_, std::move(on_sent_));
  sink->write(std::move(head), nullptr);
  return sink;
}

StreamSink::StreamSink(std::shared_ptr<Connection> conn, std::shared_ptr<InFlight> in_flight,
                       std::function<void(int)> on_sent)
    : conn_(std::move(conn)), in_flight_(std::move(in_flight)), on_sent_(std::move(on_sent)) {}

StreamSink::~StreamSink() {
  // Reached with writes still pending only when Pistache dropped them (the client is gone).
  bool finish = false;
  {
    std::lock_guard lock(mu_);
    finish = !finished_;
    finished_ = true;
  }
  if (finish) finishResponse();
}

bool StreamSink::write(std::string bytes, std::function<void(bool)> done) {
  std::shared_ptr<Pistache::Tcp::Peer> peer;
  {
    std::lock_guard lock(mu_);
    if (ended_) return false;
    peer = conn_->peer();
    if (!peer) return false;
    ++pending_;
  }
  // Not under mu_: on the I/O thread the write, and so the callback, may complete at once.
  // The writers (the handler, then the hub) never write at the same time: order is kept.
  const size_t size = bytes.size();
  auto written = peer->send(Pistache::RawBuffer(std::move(bytes), size));
  // One then() per promise; it keeps the sink alive until the write is done.
  written.then(
      [self = shared_from_this(), done](ssize_t) {
        if (done) done(true);
        self->writeDone();
      },
      [self = shared_from_this(), done](std::exception_ptr) {
        if (done) done(false);
        self->writeDone();
      });
  return true;
}

void StreamSink::writeDone() {
  bool finish = false;
  {
    std::lock_guard lock(mu_);
    --pending_;
    if (ended_ && pending_ == 0 && !finished_) finish = finished_ = true;
  }
  if (finish) finishResponse();
}

void StreamSink::end() {
  bool finish = false;
  {
    std::lock_guard lock(mu_);
    ended_ = true;
    // Once what was written is on the wire (or at once when the client is gone).
    if (!finished_ && (pending_ == 0 || !conn_->peer())) finish = finished_ = true;
  }
  if (finish) finishResponse();
}

void StreamSink::finishResponse() {
  if (on_sent_) on_sent_(200);
  // Every byte is written: the connection may close (FIN) now.
  conn_->endRequest(true, true);
  in_flight_->leave();
}

bool StreamSink::open() const {
  std::lock_guard lock(mu_);
  return !ended_ && conn_->peer() != nullptr;
}

}  // namespace sluice::http
