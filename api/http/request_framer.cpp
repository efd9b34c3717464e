#include "api/http/request_framer.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <vector>

namespace sluice::http {
namespace {

// RFC 9110 token characters (method and header names).
bool isTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20) || x == y;
         });
}

std::string_view trimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// Shown in messages: printable ASCII as is, the rest escaped, at most 40 characters.
std::string quoted(std::string_view v) {
  std::string out = "\"";
  for (size_t i = 0; i < v.size() && i < 40; ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      std::array<char, 8> buf{};
      std::snprintf(buf.data(), buf.size(), "\\x%02x", c);
      out += buf.data();
    }
  }
  if (v.size() > 40) out += "...";
  return out + "\"";
}

std::string hexByte(unsigned char c) {
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%02x", c);
  return buf.data();
}

}  // namespace

Frame RequestFramer::reject(int status, std::string message) {
  phase_ = Phase::kRejected;
  head_.clear();
  head_.shrink_to_fit();
  return Frame{Frame::Kind::kReject, 0, status, std::move(message)};
}

Frame RequestFramer::next(std::string_view in) {
  switch (phase_) {
    case Phase::kRejected:
      // Everything after a refusal is discarded unread.
      return Frame{Frame::Kind::kReject, in.size(), 0, ""};
    case Phase::kDone:
      phase_ = Phase::kHead;
      head_.clear();
      expect_continue_ = false;
      has_authorization_ = false;
      line_done_ = false;
      method_done_ = false;
      [[fallthrough]];
    case Phase::kHead:
      break;
    case Phase::kHeadDone:
      if (body_left_ == 0) {
        phase_ = Phase::kDone;
        return Frame{Frame::Kind::kComplete, 0, 0, ""};
      }
      phase_ = Phase::kBody;
      [[fallthrough]];
    case Phase::kBody: {
      if (body_left_ == 0) {
        phase_ = Phase::kDone;
        return Frame{Frame::Kind::kComplete, 0, 0, ""};
      }
      if (in.empty()) return Frame{};
      size_t n = static_cast<size_t>(std::min<uint64_t>(in.size(), body_left_));
      body_left_ -= n;
      return Frame{Frame::Kind::kBody, n, 0, ""};
    }
  }

  // The head: request line and headers, up to the blank line.
  size_t skipped = 0;
  if (head_.empty()) {
    // Empty lines before a request line are ignored (RFC 9112 section 2.2).
    while (skipped < in.size() && (in[skipped] == '\r' || in[skipped] == '\n')) ++skipped;
  }
  const size_t old = head_.size();
  const size_t room = limits_.max_header_bytes + 1 - std::min(old, limits_.max_header_bytes);
  const size_t take = std::min(in.size() - skipped, room);
  head_.append(in.data() + skipped, take);

  // Check the new bytes: no control bytes, every line ends with CRLF, and the end of the head.
  for (size_t i = old; i < head_.size(); ++i) {
    const auto c = static_cast<unsigned char>(head_[i]);
    // Checked at the byte that crosses it, so that the answer does not depend on how the bytes
    // were split into reads.
    if (!line_done_ && i >= limits_.max_request_line_bytes) {
      return reject(414, "the request line is over the limit of " +
                             std::to_string(limits_.max_request_line_bytes) + " bytes");
    }
    // The method is checked as it arrives: junk is refused at its first bytes rather than when
    // a blank line or a timeout comes.
    if (!method_done_) {
      if (c == ' ' && i > 0) {
        method_done_ = true;
      } else if (!isTchar(c)) {
        return reject(400, "malformed request line: the method " +
                               quoted(std::string_view(head_).substr(0, i + 1)) +
                               " has a character that is not allowed");
      }
    }
    if (c == '\n') {
      line_done_ = true;
      if (i == 0 || head_[i - 1] != '\r') {
        return reject(400,
                      "malformed request: a line of the request head ends with a bare LF "
                      "(lines end with CRLF)");
      }
      if (i >= 3 && head_[i - 2] == '\n') {
        // "\r\n\r\n": the head ends here; what follows belongs to the body or the next request.
        const size_t end = i + 1;
        if (end > limits_.max_header_bytes) break;  // one byte too many: 431 below
        const size_t unused = head_.size() - end;
        head_.resize(end);
        return finishHead(skipped + take - unused);
      }
      continue;
    }
    if (i > 0 && head_[i - 1] == '\r') {
      return reject(400, "malformed request: a CR in the request head is not followed by LF");
    }
    if ((c < 0x20 && c != '\r' && c != '\t') || c == 0x7f) {
      return reject(400, "malformed request: byte " + hexByte(c) + " at offset " +
                             std::to_string(i) + " of the request head");
    }
  }
  if (head_.size() > limits_.max_header_bytes) {
    return reject(431, "the request head (request line and headers) is over the limit of " +
                           std::to_string(limits_.max_header_bytes) + " bytes");
  }
  return Frame{Frame::Kind::kNeedMore, skipped + take, 0, ""};
}

Frame RequestFramer::finishHead(size_t consumed) {
  std::vector<std::string_view> lines;
  std::string_view rest(head_);
  rest.remove_suffix(4);  // the blank line
  for (;;) {
    const size_t eol = rest.find("\r\n");
    lines.push_back(rest.substr(0, eol));
    if (eol == std::string_view::npos) break;
    rest.remove_prefix(eol + 2);
  }

  // Request line: METHOD SP request-target SP HTTP-version.
  const std::string_view line = lines[0];
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos || sp2 == sp1 + 1) {
    return reject(400,
                  "malformed request line " + quoted(line) + " (expected: METHOD /path HTTP/1.1)");
  }
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (char ch : target) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) {
      return reject(400, "malformed request line: the target " + quoted(target) +
                             " has a byte that must be percent-encoded");
    }
  }
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    const bool looks_http = version.size() == 8 && version.substr(0, 5) == "HTTP/" &&
                            std::isdigit(static_cast<unsigned char>(version[5])) &&
                            version[6] == '.' &&
                            std::isdigit(static_cast<unsigned char>(version[7]));
    if (looks_http) return reject(505, "HTTP version " + quoted(version) + " is not supported");
    return reject(400, "malformed request line: " + quoted(version) + " is not an HTTP version");
  }

  // Headers: only the framing ones matter here; Pistache reads the rest.
  bool have_length = false;
  uint64_t length = 0;
  bool expect_continue = false;
  std::string_view authorization_line;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view h = lines[i];
    if (!h.empty() && (h[0] == ' ' || h[0] == '\t')) {
      return reject(400, "malformed header: line folding is not allowed");
    }
    const size_t colon = h.find(':');
    const std::string_view name = h.substr(0, colon);
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(name.begin(), name.end(),
                     [](char c) { return isTchar(static_cast<unsigned char>(c)); })) {
      return reject(400, "malformed header line " + quoted(h) + " (expected Name: value)");
    }
    const std::string_view value = trimOws(h.substr(colon + 1));
    if (iequals(name, "Content-Length")) {
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return reject(
            400, "Content-Length must be a non-negative decimal integer, not " + quoted(value));
      }
      uint64_t v = 0;
      for (char c : value) v = v * 10 + static_cast<uint64_t>(c - '0');
      if (have_length && v != length) {
        return reject(400, "the request has two different Content-Length headers");
      }
      have_length = true;
      length = v;
    } else if (iequals(name, "Transfer-Encoding")) {
      return reject(411, "Transfer-Encoding " + quoted(value) +
                             " is not supported: send the body with a Content-Length");
    } else if (iequals(name, "Expect")) {
      if (!iequals(value, "100-continue")) {
        return reject(417, "the expectation " + quoted(value) + " is not supported");
      }
      expect_continue = true;
    } else if (iequals(name, "Authorization")) {
      if (!authorization_line.empty()) {
        return reject(400, "the request has two Authorization headers");
      }
      authorization_line = h;
      authorization_.assign(value);
    }
  }
  if (length > limits_.max_body_bytes) {
    return reject(413, "request body of " + std::to_string(length) +
                           " bytes is over the limit of " + std::to_string(limits_.max_body_bytes) +
                           " bytes");
  }
  if (!authorization_line.empty()) {
    // Taken out of the head: the routes read the value from the framer, so Pistache neither
    // parses it nor builds a header object for it on every request.
    has_authorization_ = true;
    head_.erase(static_cast<size_t>(authorization_line.data() - head_.data()),
                authorization_line.size() + 2);
  }
  body_left_ = length;
  expect_continue_ = expect_continue && length > 0;
  phase_ = Phase::kHeadDone;
  return Frame{Frame::Kind::kHead, consumed, 0, ""};
}

}  // namespace sluice::http
