// A raw TCP connection to the server under test, for the HTTP edge's tests: send any bytes,
// read whatever comes back, and tell whether (and when) the server closed the connection.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "fakes/http_client.hpp"

namespace sluice::test {

class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(connectLoopback(port)) {}
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  /// Sends all of `data` unless the server stops taking it; returns the bytes sent.
  size_t send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    return sent;
  }

  /// Sends without blocking; returns the bytes the socket took (0 when full, -1 when closed).
  ssize_t trySend(const char* data, size_t len) {
    ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return n;
  }

  /// Reads what arrives within `wait`, up to the end of a response; sets closed() on EOF.
  std::string readSome(std::chrono::milliseconds wait) {
    std::string out;
    auto until = std::chrono::steady_clock::now() + wait;
    char buf[65536];
    while (!closed_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
      if (!out.empty() && completeResponse(out)) break;
    }
    return out;
  }

  /// Reads one whole response (status, headers, Content-Length body) within `wait`.
  HttpResponse readResponse(std::chrono::milliseconds wait = std::chrono::seconds(30)) {
    auto until = std::chrono::steady_clock::now() + wait;
    char buf[65536];
    while (!completeResponse(received_) && !closed_ && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      received_.append(buf, static_cast<size_t>(n));
    }
    size_t used = 0;
    HttpResponse r = parseResponse(received_, &used);
    received_.erase(0, used);
    return r;
  }

  /// Waits up to `wait` for the server to close the connection, draining what it sends.
  bool waitClosed(std::chrono::milliseconds wait) {
    auto until = std::chrono::steady_clock::now() + wait;
    char buf[65536];
    while (!closed_ && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) closed_ = true;
    }
    return closed_;
  }

  bool closed() const { return closed_; }
  int fd() const { return fd_; }

  /// True when `in` holds a whole response: head and Content-Length bytes of body.
  static bool completeResponse(const std::string& in) {
    auto end = in.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    auto head = lower(in.substr(0, end));
    auto cl = head.find("content-length:");
    if (cl == std::string::npos) return true;
    size_t length = std::stoul(head.substr(cl + 15));
    return in.size() >= end + 4 + length;
  }

  /// Parses the first response in `in`; *used is how many bytes it took (0 when incomplete).
  static HttpResponse parseResponse(const std::string& in, size_t* used) {
    HttpResponse r;
    *used = 0;
    if (!completeResponse(in)) return r;
    auto end = in.find("\r\n\r\n");
    auto line_end = in.find("\r\n");
    r.status = std::stoi(in.substr(in.find(' ') + 1, 3));
    size_t pos = line_end + 2;
    while (pos < end) {
      auto eol = in.find("\r\n", pos);
      auto line = in.substr(pos, eol - pos);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[lower(line.substr(0, colon))] = value;
      }
      pos = eol + 2;
    }
    size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    r.body = in.substr(end + 4, length);
    *used = end + 4 + length;
    return r;
  }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string received_;
};

}  // namespace sluice::test
