// A local HTTP/1.1 server for tests: the far end of a webhook, an `http` flow or any client.
//
// Header-only, POSIX sockets and threads. It listens on 127.0.0.1 on a port of the kernel's
// choice, serves each connection on a thread of its own (one request per connection, answered
// with `Connection: close`), records every request it read (method, target, headers, body), and
// answers with the response configured for the request's path, or the default one, optionally
// after a delay (to test timeouts and stops). Destroying it stops it: delays are cut short,
// connections closed, threads joined.
//
//   sluice::test::HttpTestServer server;
//   server.setResponse("/hook", {201, "created"});
//   ... a client sends POST server.url("/hook") ...
//   ASSERT_TRUE(server.waitForRequests(1, std::chrono::seconds(10)));
//   EXPECT_EQ(server.requests()[0].body, "...");
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::test {

/// One request as the server read it.
struct RecordedRequest {
  std::string method;
  std::string target;   // as on the request line: the path and the query
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;                                          // chunked bodies decoded

  /// The target without its query.
  std::string path() const { return target.substr(0, target.find('?')); }
  /// The value of the first header named `name` (case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (equalsIgnoreCase(n, name)) return v;
    }
    return std::nullopt;
  }
  static bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      auto l = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
      if (l(a[i]) != l(b[i])) return false;
    }
    return true;
  }
};

/// What the server answers: `{201}`, `{500, "boom"}`, `{302, "", {{"Location", url}}}` or
/// `{200, "late", {}, std::chrono::seconds(5)}`.
struct CannedResponse {
  CannedResponse() = default;
  CannedResponse(int status_, std::string body_ = "",  // NOLINT(google-explicit-constructor)
                 std::vector<std::pair<std::string, std::string>> headers_ = {},
                 std::chrono::milliseconds delay_ = std::chrono::milliseconds(0))
      : status(status_), body(std::move(body_)), headers(std::move(headers_)), delay(delay_) {}

  int status = 200;
  std::string body;
  /// Headers besides Content-Length and Connection, which the server adds.
  std::vector<std::pair<std::string, std::string>> headers;
  /// How long the server waits after reading the request before it answers (cut short by
  /// stop(); a client that gave up meanwhile gets nothing).
  std::chrono::milliseconds delay{0};
};

/// A socket listening on 127.0.0.1 on a port the kernel chose, returned in `port`; throws
/// naming `who` when it cannot listen.
inline int listenLoopback(const char* who, int backlog, uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(std::string(who) + ": cannot listen on 127.0.0.1: " + why);
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

/// A port on 127.0.0.1 that nothing listens on: bound by the kernel's choice, then released.
inline uint16_t closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class HttpTestServer {
 public:
  HttpTestServer() {
    if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("HttpTestServer: pipe2 failed");
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) fail("socket");
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
    if (::listen(listen_fd_, 128) != 0) fail("listen");
    socklen_t len = sizeof addr;
    if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      fail("getsockname");
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;
  ~HttpTestServer() { stop(); }

  /// The port it listens on (127.0.0.1).
  uint16_t port() const { return port_; }
  /// "http://127.0.0.1:<port>" followed by `path`.
  std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  /// The response to requests whose path has no response of its own (at first: 200, no body).
  void setDefault(CannedResponse response) {
    std::lock_guard lock(mu_);
    default_ = std::move(response);
  }
  /// The response to requests for `path` (the target without its query, e.g. "/hook").
  void setResponse(const std::string& path, CannedResponse response) {
    std::lock_guard lock(mu_);
    by_path_[path] = std::move(response);
  }

  /// Every request read so far, in the order they were read.
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t requestCount() const {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  /// Waits until at least `n` requests were read; false when `timeout` passed first.
  bool waitForRequests(size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }
  /// Responses written in full so far (a delayed response cut short by stop() is not one).
  size_t responsesSent() const {
    std::lock_guard lock(mu_);
    return responses_sent_;
  }
  /// Forgets the requests recorded so far.
  void clearRequests() {
    std::lock_guard lock(mu_);
    requests_.clear();
  }

  /// Stops listening, cuts delays short, closes every connection and joins the threads.
  /// Idempotent; the destructor calls it.
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    changed_.notify_all();
    const char byte = 'x';
    [[maybe_unused]] auto n = ::write(wake_[1], &byte, 1);  // never read: stays readable
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& c : connections_) c.thread.join();
    connections_.clear();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }

 private:
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  static constexpr size_t kMaxHead = 64 * 1024;
  static constexpr size_t kMaxBody = 64 * 1024 * 1024;
  static constexpr auto kIdleLimit = std::chrono::seconds(30);

  [[noreturn]] void fail(const char* what) {
    const std::string why = std::strerror(errno);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    throw std::runtime_error(std::string("HttpTestServer: ") + what + ": " + why);
  }

  bool stopping() const {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  void acceptLoop() {
    while (true) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if ((fds[1].revents & POLLIN) != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      // Joins the connections that ended, so a long test does not pile threads up.
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (it->done->load()) {
          it->thread.join();
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      connections_.push_back({std::thread([this, fd, done] {
                                serve(fd);
                                ::close(fd);
                                done->store(true);
                              }),
                              done});
    }
  }

  // Reads more bytes into `buf`; false on end of stream, an error, stop() or a long silence.
  bool readMore(int fd, std::string& buf) const {
    const auto deadline = std::chrono::steady_clock::now() + kIdleLimit;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, 2, 100) < 0 && errno != EINTR) return false;
      if ((fds[1].revents & POLLIN) != 0) return false;
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char chunk[16384];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf.append(chunk, static_cast<size_t>(n));
      return true;
    }
    return false;
  }

  // Makes `buf` hold at least `n` bytes from `pos`.
  bool need(int fd, std::string& buf, size_t pos, size_t n) const {
    while (buf.size() < pos + n) {
      if (!readMore(fd, buf)) return false;
    }
    return true;
  }

  // Reads a line ending in CRLF starting at *pos; the line without it, *pos past it.
  bool line(int fd, std::string& buf, size_t* pos, std::string* out) const {
    size_t end;
    while ((end = buf.find("\r\n", *pos)) == std::string::npos) {
      if (buf.size() - *pos > kMaxHead || !readMore(fd, buf)) return false;
    }
    *out = buf.substr(*pos, end - *pos);
    *pos = end + 2;
    return true;
  }

  static bool sendAll(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  static std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
  }

  static const char* reason(int status) {
    static const std::map<int, const char*> reasons = {{100, "Continue"},
                                                       {200, "OK"},
                                                       {201, "Created"},
                                                       {202, "Accepted"},
                                                       {204, "No Content"},
                                                       {301, "Moved Permanently"},
                                                       {302, "Found"},
                                                       {304, "Not Modified"},
                                                       {400, "Bad Request"},
                                                       {401, "Unauthorized"},
                                                       {403, "Forbidden"},
                                                       {404, "Not Found"},
                                                       {409, "Conflict"},
                                                       {429, "Too Many Requests"},
                                                       {500, "Internal Server Error"},
                                                       {502, "Bad Gateway"},
                                                       {503, "Service Unavailable"},
                                                       {504, "Gateway Timeout"}};
    auto it = reasons.find(status);
    return it == reasons.end() ? "Status" : it->second;
  }

  // Reads one request from `fd`; false when the stream is not one.
  bool readRequest(int fd, RecordedRequest* req) const {
    std::string buf;
    size_t pos = 0;
    std::string request_line;
    if (!line(fd, buf, &pos, &request_line)) return false;
    const size_t sp1 = request_line.find(' ');
    const size_t sp2 = request_line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) return false;
    req->method = request_line.substr(0, sp1);
    req->target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    req->version = request_line.substr(sp2 + 1);
    for (std::string field;;) {
      if (!line(fd, buf, &pos, &field)) return false;
      if (field.empty()) break;
      const size_t colon = field.find(':');
      if (colon == std::string::npos || colon == 0) return false;
      req->headers.emplace_back(field.substr(0, colon), trim(field.substr(colon + 1)));
      if (pos > kMaxHead) return false;
    }
    const auto expect = req->header("Expect");
    if (expect && RecordedRequest::equalsIgnoreCase(*expect, "100-continue")) {
      if (!sendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return false;
    }
    const auto encoding = req->header("Transfer-Encoding");
    if (encoding && RecordedRequest::equalsIgnoreCase(*encoding, "chunked")) {
      while (true) {
        std::string size_line;
        if (!line(fd, buf, &pos, &size_line)) return false;
        size_t size = 0;
        try {
          size = std::stoul(size_line.substr(0, size_line.find(';')), nullptr, 16);
        } catch (...) {
          return false;
        }
        if (size == 0) break;
        if (req->body.size() + size > kMaxBody || !need(fd, buf, pos, size + 2)) return false;
        req->body.append(buf, pos, size);
        pos += size + 2;
      }
      for (std::string trailer;;) {  // trailers, up to the empty line
        if (!line(fd, buf, &pos, &trailer)) return false;
        if (trailer.empty()) break;
      }
      return true;
    }
    if (const auto length = req->header("Content-Length")) {
      size_t size = 0;
      try {
        size = std::stoul(*length);
      } catch (...) {
        return false;
      }
      if (size > kMaxBody || !need(fd, buf, pos, size)) return false;
      req->body = buf.substr(pos, size);
    }
    return true;
  }

  void serve(int fd) {
    RecordedRequest req;
    if (!readRequest(fd, &req)) {
      if (!stopping()) sendAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    CannedResponse response;
    {
      std::unique_lock lock(mu_);
      requests_.push_back(req);
      auto it = by_path_.find(req.path());
      response = it == by_path_.end() ? default_ : it->second;
      changed_.notify_all();
      if (response.delay.count() > 0 &&
          changed_.wait_for(lock, response.delay, [&] { return stopping_; })) {
        return;  // stopped during the delay: no answer
      }
    }
    const bool no_body = req.method == "HEAD" || response.status == 204 || response.status == 304 ||
                         response.status < 200;
    std::string out =
        "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) + "\r\n";
    for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
    if (response.status != 204 && response.status != 304 && response.status >= 200) {
      out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    }
    out += "Connection: close\r\n\r\n";
    if (!no_body) out += response.body;
    if (sendAll(fd, out)) {
      std::lock_guard lock(mu_);
      ++responses_sent_;
    }
    ::shutdown(fd, SHUT_WR);
    // Lets the client read the response before the close: waits for its end of the stream.
    std::string rest;
    while (readMore(fd, rest) && rest.size() < kMaxHead) {
    }
  }

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // written once by stop(): wakes every poll
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::vector<Connection> connections_;  // the acceptor's, then stop()'s once it was joined

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;        // a request was recorded, or stop() began
  bool stopping_ = false;                          // guarded by mu_
  CannedResponse default_;                         // guarded by mu_
  std::map<std::string, CannedResponse> by_path_;  // guarded by mu_
  std::vector<RecordedRequest> requests_;          // guarded by mu_
  size_t responses_sent_ = 0;                      // guarded by mu_
};

}  // namespace sluice::test
