// A minimal blocking HTTP/1.1 client for tests: one request per connection.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::test {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// The header fields of a response head (the bytes before "\r\n\r\n"; its first line, the
/// status line, is skipped), by lower-case name, values without leading spaces.
inline std::map<std::string, std::string> headerFields(const std::string& head) {
  std::map<std::string, std::string> fields;
  const size_t line_end = head.find("\r\n");
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      fields[lower(line.substr(0, colon))] = v;
    }
    pos = e + 2;
  }
  return fields;
}

/// `s` percent-encoded for a URL (RFC 3986: only letters, digits and "-._~" stay as they are).
inline std::string urlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 ||
        std::string_view("-._~").find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
      continue;
    }
    char escaped[4];
    std::snprintf(escaped, sizeof escaped, "%%%02X", c);
    out += escaped;
  }
  return out;
}

/// A TCP connection to 127.0.0.1:port, with SO_RCVBUF set before connecting when `rcvbuf` > 0;
/// throws when it cannot connect.
inline int connectLoopback(uint16_t port, int rcvbuf = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("connect failed");
  }
  return fd;
}

/// Sends `raw` bytes as they are and reads the whole response (the server closes after it).
inline HttpResponse rawRequest(uint16_t port, const std::string& raw, int timeout_ms = 30000) {
  int fd = connectLoopback(port);
  size_t sent = 0;
  while (sent < raw.size()) {
    ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) and close before reading everything
    sent += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  HttpResponse r;
  for (;;) {
    // Stop as soon as a complete response arrived (Content-Length known).
    auto hdr_end = in.find("\r\n\r\n");
    if (hdr_end != std::string::npos) {
      auto cl = lower(in.substr(0, hdr_end)).find("content-length:");
      if (cl != std::string::npos) {
        size_t len = std::stoul(in.substr(cl + 15));
        if (in.size() >= hdr_end + 4 + len) break;
      }
    }
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) {
      ::close(fd);
      throw std::runtime_error("timed out waiting for the response");
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto hdr_end = in.find("\r\n\r\n");
  if (hdr_end == std::string::npos) throw std::runtime_error("incomplete response: " + in);
  std::string head = in.substr(0, hdr_end);
  r.body = in.substr(hdr_end + 4);
  std::string status_line = head.substr(0, head.find("\r\n"));
  r.status = std::stoi(status_line.substr(status_line.find(' ') + 1, 3));
  r.headers = headerFields(head);
  if (auto cl = r.headers.find("content-length"); cl != r.headers.end()) {
    r.body.resize(std::min(r.body.size(), static_cast<size_t>(std::stoul(cl->second))));
  }
  return r;
}

inline HttpResponse request(uint16_t port, const std::string& method, const std::string& path,
                            const std::string& body = "", bool with_body = false,
                            int timeout_ms = 30000) {
  std::string raw = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!body.empty() || with_body) {
    raw +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  raw += "\r\n" + body;
  return rawRequest(port, raw, timeout_ms);
}

/// A request with extra header lines (each "Name: value"), e.g. an Authorization header.
inline HttpResponse requestWith(uint16_t port, const std::string& method, const std::string& path,
                                const std::vector<std::string>& headers,
                                const std::string& body = "", bool with_body = false,
                                int timeout_ms = 30000) {
  std::string raw = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) raw += h + "\r\n";
  if (!body.empty() || with_body) {
    raw +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  raw += "\r\n" + body;
  return rawRequest(port, raw, timeout_ms);
}

}  // namespace sluice::test
