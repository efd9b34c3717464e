// A Server-Sent Events client for tests: a raw socket to GET /events, the response head, then
// the stream parsed incrementally (https://html.spec.whatwg.org/multipage/server-sent-events.html)
// into events and comments. Reads never block past a deadline; many clients can share one
// poll() loop (fd() and readAvailable()).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fakes/http_client.hpp"

namespace sluice::test {

struct SseEvent {
  std::optional<uint64_t> id;  // the `id:` field of this event, when it had one and it is a number
  std::string id_text;         // the `id:` field as sent (empty when none)
  std::string type;            // the `event:` field; "message" when none
  std::string data;            // the `data:` lines joined with '\n'
};

/// The stream's grammar, fed any slices of bytes. Lines end with "\n" or "\r\n".
class SseParser {
 public:
  /// Called for each complete event; when unset, events are kept in events().
  std::function<void(SseEvent&&)> on_event;

  void feed(std::string_view bytes) {
    buf_.append(bytes.data(), bytes.size());
    size_t pos = 0;
    for (;;) {
      const size_t eol = buf_.find('\n', pos);
      if (eol == std::string::npos) break;
      std::string_view line(buf_.data() + pos, eol - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      handleLine(line);
      pos = eol + 1;
    }
    buf_.erase(0, pos);
  }

  std::vector<SseEvent>& events() { return events_; }
  const std::vector<std::string>& comments() const { return comments_; }
  size_t commentCount(std::string_view text) const {
    size_t n = 0;
    for (const auto& c : comments_) n += c == text;
    return n;
  }
  std::optional<uint64_t> retry() const { return retry_; }
  /// Fields the server should never send, and other oddities: empty when the stream is clean.
  const std::vector<std::string>& oddities() const { return oddities_; }
  /// Bytes of an unfinished line, or fields of an event not yet ended by a blank line.
  bool midEvent() const { return !buf_.empty() || pending_fields_; }
  size_t eventCount() const { return count_; }
  /// The last `id:` seen (what a browser would send as Last-Event-ID).
  const std::string& lastEventId() const { return last_id_; }

 private:
  void handleLine(std::string_view line) {
    if (line.empty()) {
      dispatch();
      return;
    }
    if (line.front() == ':') {
      std::string_view text = line.substr(1);
      if (!text.empty() && text.front() == ' ') text.remove_prefix(1);
      comments_.emplace_back(text);
      return;
    }
    const size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    pending_fields_ = true;
    if (field == "data") {
      if (has_data_) data_ += '\n';
      data_.append(value);
      has_data_ = true;
    } else if (field == "event") {
      type_.assign(value);
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos) {
        id_.assign(value);
        has_id_ = true;
      }
    } else if (field == "retry") {
      if (!value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos) {
        retry_ = std::stoull(std::string(value));
      } else {
        oddities_.push_back("bad retry: " + std::string(line));
      }
    } else {
      oddities_.push_back("unknown field: " + std::string(line));
    }
  }

  void dispatch() {
    if (has_id_) last_id_ = id_;
    if (has_data_) {
      SseEvent e;
      e.type = type_.empty() ? "message" : type_;
      e.data = std::move(data_);
      if (has_id_) {
        e.id_text = id_;
        if (!id_.empty() && id_.size() <= 19 &&
            id_.find_first_not_of("0123456789") == std::string::npos) {
          e.id = std::stoull(id_);
        } else {
          oddities_.push_back("id not a number: " + id_);
        }
      } else {
        oddities_.push_back("event without id: " + e.type);
      }
      ++count_;
      if (on_event) {
        on_event(std::move(e));
      } else {
        events_.push_back(std::move(e));
      }
    } else if (!type_.empty() || has_id_) {
      oddities_.push_back("event without data: " + type_);
    }
    data_.clear();
    type_.clear();
    id_.clear();
    has_data_ = has_id_ = pending_fields_ = false;
  }

  std::string buf_;
  std::string data_;
  std::string type_;
  std::string id_;
  bool has_data_ = false;
  bool has_id_ = false;
  bool pending_fields_ = false;
  std::string last_id_;
  std::optional<uint64_t> retry_;
  std::vector<SseEvent> events_;
  std::vector<std::string> comments_;
  std::vector<std::string> oddities_;
  size_t count_ = 0;
};

/// One GET /events request on its own connection.
class SseClient {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::string path = "/events";      // with the query string
    std::vector<std::string> headers;  // extra "Name: value" lines (Last-Event-ID, ...)
    int rcvbuf = 0;                    // SO_RCVBUF set before connect when > 0
  };

  SseClient(uint16_t port, Options options) {
    fd_ = connectLoopback(port, options.rcvbuf);
    std::string raw = "GET " + options.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                      "Accept: text/event-stream\r\n";
    for (const auto& h : options.headers) raw += h + "\r\n";
    raw += "\r\n";
    size_t sent = 0;
    while (sent < raw.size()) {
      ssize_t n = ::send(fd_, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        close();
        throw std::runtime_error("send failed");
      }
      sent += static_cast<size_t>(n);
    }
  }
  SseClient(uint16_t port, const std::string& path, std::vector<std::string> headers = {})
      : SseClient(port, Options{path, std::move(headers), 0}) {}
  ~SseClient() { close(); }
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd() const { return fd_; }
  /// This end's port: the server names the client "127.0.0.1:PORT" in its log.
  uint16_t localPort() const {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
    return ntohs(addr.sin_port);
  }
  SseParser& parser() { return parser_; }
  std::vector<SseEvent>& events() { return parser_.events(); }

  /// True once the response head arrived; status(), header() and (not 200) body() then hold.
  bool headDone() const { return status_ != 0; }
  int status() const { return status_; }
  std::string header(const std::string& name) const {
    auto it = headers_.find(name);
    return it == headers_.end() ? "" : it->second;
  }
  const std::string& body() const { return body_; }
  /// The peer closed the connection: `clean` when with a FIN (recv returned 0), not a reset.
  bool closed() const { return closed_; }
  bool reset() const { return reset_; }
  bool cleanEof() const { return closed_ && !reset_; }
  size_t bytesReceived() const { return received_; }

  /// Reads everything the socket holds now without blocking. False once the stream is closed.
  bool readAvailable() {
    if (closed_ || fd_ < 0) return false;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received_ += static_cast<size_t>(n);
        take(std::string_view(buf, static_cast<size_t>(n)));
        continue;
      }
      if (n == 0) {
        closed_ = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return true;
      } else if (errno == EINTR) {
        continue;
      } else {
        closed_ = true;
        reset_ = true;
      }
      return false;
    }
  }

  /// Reads until `done()` holds, the stream closes or `wait` passes; returns done().
  bool readUntil(const std::function<bool()>& done, std::chrono::milliseconds wait) {
    const auto until = Clock::now() + wait;
    for (;;) {
      if (done()) return true;
      if (closed_) return done();
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) return done();
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100))) > 0) readAvailable();
    }
  }
  bool waitHead(std::chrono::milliseconds wait) {
    return readUntil([&] { return headDone(); }, wait);
  }
  /// Waits for the head and, when it is not a 200, the whole body (Content-Length, else EOF).
  bool waitResponse(std::chrono::milliseconds wait) {
    return readUntil(
        [&] {
          if (status_ == 0) return false;
          if (status_ == 200) return true;
          const std::string cl = header("content-length");
          return cl.empty() ? closed_ : body_.size() >= std::stoul(cl);
        },
        wait);
  }
  /// Waits for the head and, on a 200, the "retry:" line that follows it: from then on, every
  /// event published is delivered (the server fixed the stream's starting point before).
  bool waitSubscribed(std::chrono::milliseconds wait) {
    return readUntil([&] { return status_ == 200 && parser_.retry().has_value(); }, wait);
  }
  /// Waits until at least `n` events arrived in all (kept or handed to on_event).
  bool waitEvents(size_t n, std::chrono::milliseconds wait) {
    return readUntil([&] { return parser_.eventCount() >= n; }, wait);
  }
  bool waitClosed(std::chrono::milliseconds wait) {
    return readUntil([&] { return closed_; }, wait);
  }

 private:
  void take(std::string_view bytes) {
    if (status_ != 0) {
      if (status_ == 200) {
        parser_.feed(bytes);
      } else {
        body_.append(bytes);
      }
      return;
    }
    head_.append(bytes);
    const size_t end = head_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    const std::string rest = head_.substr(end + 4);
    parseHead(head_.substr(0, end));
    head_.clear();
    if (!rest.empty()) take(rest);
  }

  void parseHead(const std::string& head) {
    const std::string status_line = head.substr(0, head.find("\r\n"));
    const size_t sp = status_line.find(' ');
    status_ = sp == std::string::npos ? -1 : std::atoi(status_line.c_str() + sp + 1);
    if (status_ == 0) status_ = -1;
    headers_ = headerFields(head);
  }

  int fd_ = -1;
  std::string head_;
  int status_ = 0;
  std::map<std::string, std::string> headers_;
  std::string body_;
  SseParser parser_;
  bool closed_ = false;
  bool reset_ = false;
  size_t received_ = 0;
};

}  // namespace sluice::test
