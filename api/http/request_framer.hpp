// The HTTP/1.1 framing of one connection, checked before any byte reaches Pistache's parser.
//
// Pistache 0.0.5's parser has no limit that holds (see docs/architecture.md, "The HTTP edge"):
// so the edge finds where each request starts and ends itself, checks the request line and the
// headers, and refuses what is malformed or too large as soon as it is seen. Pistache then only
// ever parses one complete, well-framed request at a time.
//
// Pure: no I/O, no clock, no Pistache. One instance per connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::http {

struct FramerLimits {
  size_t max_header_bytes = size_t{64} * 1024;  // request line + headers + the blank line
  size_t max_request_line_bytes = size_t{8} * 1024;
  uint64_t max_body_bytes = uint64_t{16} * 1024 * 1024;
};

/// What to do with the bytes the framer looked at.
struct Frame {
  enum class Kind {
    kNeedMore,  // all `consumed` bytes are part of an unfinished head (kept by the framer)
    kHead,      // `consumed` bytes complete the head: hand head() to the parser
    kBody,      // `consumed` bytes are body bytes of the current request: hand them on
    kComplete,  // the current request is complete (after its head or its last body bytes)
    kReject,    // refuse: answer `status` with `message`, then close the connection
  };
  Kind kind = Kind::kNeedMore;
  size_t consumed = 0;
  int status = 0;
  std::string message;
};

class RequestFramer {
 public:
  explicit RequestFramer(FramerLimits limits) : limits_(limits) {}

  /// Looks at the next bytes of the connection, which start right after the bytes consumed by
  /// the previous calls. Call again with the rest while `consumed` < input.size() (kComplete
  /// and kHead may consume nothing of it). After kReject the framer refuses everything.
  Frame next(std::string_view input);

  /// The head of the current request (valid from kHead until the next call after kComplete).
  const std::string& head() const { return head_; }
  /// True when the head asked for "Expect: 100-continue" and a body follows.
  bool expectsContinue() const { return expect_continue_; }
  /// True while some bytes of a request have arrived and it is not complete.
  bool midRequest() const { return phase_ == Phase::kBody || !head_.empty(); }
  /// True while the body of a request is being received.
  bool inBody() const { return phase_ == Phase::kBody; }
  bool rejected() const { return phase_ == Phase::kRejected; }
  /// Body bytes still expected for the current request.
  uint64_t bodyLeft() const { return body_left_; }
  /// The value of the current request's Authorization header, which the framer takes out of
  /// head(): the routes read it from here, and Pistache never parses it (valid like head()).
  std::optional<std::string_view> authorization() const {
    if (!has_authorization_) return std::nullopt;
    return std::string_view(authorization_);
  }

 private:
  enum class Phase { kHead, kHeadDone, kBody, kDone, kRejected };

  Frame reject(int status, std::string message);
  Frame finishHead(size_t consumed);

  FramerLimits limits_;
  Phase phase_ = Phase::kHead;
  std::string head_;
  uint64_t body_left_ = 0;
  bool expect_continue_ = false;
  bool has_authorization_ = false;
  std::string authorization_;
  bool line_done_ = false;    // the request line of the current head has ended
  bool method_done_ = false;  // its method has ended (a space came)
};

}  // namespace sluice::http
