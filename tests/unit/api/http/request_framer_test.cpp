// The edge's request framing: bounds, refusals, and the same frames however the bytes are split.
#include "api/http/request_framer.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sluice::http {
namespace {

// Feeds `input` in pieces of `piece` bytes; returns the heads and bodies seen, "!" + status on
// a refusal.
std::vector<std::string> frames(const std::string& input, size_t piece, FramerLimits limits = {}) {
  RequestFramer f(limits);
  std::vector<std::string> out;
  std::string body;
  for (size_t pos = 0; pos < input.size() || pos == 0;) {
    std::string_view rest = std::string_view(input).substr(pos, piece);
    pos += std::max<size_t>(rest.size(), 1);
    for (;;) {
      Frame fr = f.next(rest);
      rest.remove_prefix(fr.consumed);
      if (fr.kind == Frame::Kind::kNeedMore) break;
      if (fr.kind == Frame::Kind::kHead) out.push_back("head:" + f.head());
      if (fr.kind == Frame::Kind::kBody)
        body += std::string(rest.data() - fr.consumed, fr.consumed);
      if (fr.kind == Frame::Kind::kComplete) {
        out.push_back("body:" + body);
        body.clear();
      }
      if (fr.kind == Frame::Kind::kReject) {
        out.push_back("!" + std::to_string(fr.status));
        return out;
      }
    }
  }
  return out;
}

int refusal(const std::string& input, FramerLimits limits = {}) {
  auto f = frames(input, input.size() + 1, limits);
  return !f.empty() && f.back()[0] == '!' ? std::stoi(f.back().substr(1)) : 0;
}

TEST(RequestFramerTest, PipelinedRequestsGiveTheSameFramesHoweverSplit) {
  const std::string input =
      "\r\nPOST /flows HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
      "GET /flows HTTP/1.1\r\nHost: x\r\n\r\n"
      "PUT /flows/a HTTP/1.0\r\ncontent-length:  3 \r\n\r\nabc";
  const std::vector<std::string> expected = {
      "head:POST /flows HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
      "body:hello",
      "head:GET /flows HTTP/1.1\r\nHost: x\r\n\r\n",
      "body:",
      "head:PUT /flows/a HTTP/1.0\r\ncontent-length:  3 \r\n\r\n",
      "body:abc"};
  for (size_t piece = 1; piece <= input.size(); ++piece) {
    SCOPED_TRACE("pieces of " + std::to_string(piece));
    EXPECT_EQ(frames(input, piece), expected);
  }
}

TEST(RequestFramerTest, TakesTheAuthorizationHeaderOutOfTheHead) {
  const std::string input =
      "GET /flows HTTP/1.1\r\nHost: x\r\nauthorization:  Bearer sluice_ab \r\nAccept: */*\r\n\r\n"
      "GET /tokens HTTP/1.1\r\nHost: x\r\n\r\n";
  for (size_t piece = 1; piece <= input.size(); ++piece) {
    SCOPED_TRACE("pieces of " + std::to_string(piece));
    RequestFramer f({});
    std::vector<std::string> heads;
    std::vector<std::string> values;
    for (size_t pos = 0; pos < input.size();) {
      std::string_view rest = std::string_view(input).substr(pos, piece);
      pos += rest.size();
      for (;;) {
        Frame fr = f.next(rest);
        rest.remove_prefix(fr.consumed);
        if (fr.kind == Frame::Kind::kNeedMore) break;
        ASSERT_NE(fr.kind, Frame::Kind::kReject);
        if (fr.kind == Frame::Kind::kHead) {
          heads.push_back(f.head());
          values.push_back(f.authorization() ? "=" + std::string(*f.authorization()) : "none");
        }
      }
    }
    EXPECT_EQ(heads,
              (std::vector<std::string>{"GET /flows HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
                                        "GET /tokens HTTP/1.1\r\nHost: x\r\n\r\n"}));
    EXPECT_EQ(values, (std::vector<std::string>{"=Bearer sluice_ab", "none"}));
  }
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n"), 400);
}

TEST(RequestFramerTest, RefusesMalformedHeadsWithTheRightStatus) {
  EXPECT_EQ(refusal("GARBAGE\r\n\r\n"), 400);
  EXPECT_EQ(refusal(std::string(3, '\0')), 400);
  EXPECT_EQ(refusal("G\x01T / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\n\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\rX\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nNo-Colon\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET /a b HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET /\x80 HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(refusal("GET / HTTP/9.9\r\n\r\n"), 505);
  EXPECT_EQ(refusal("GET / HTTX/1.1\r\n\r\n"), 400);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"), 400);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), 400);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n"), 400);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n"), 417);
  // Equal duplicates are one length.
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"), 0);
}

TEST(RequestFramerTest, JunkIsRefusedAtItsFirstBytesNotAtATimeout) {
  // No blank line ever comes: the method alone tells it is not HTTP.
  EXPECT_EQ(refusal("{\"flow_id\":"), 400);
  EXPECT_EQ(refusal(std::string(1000, '\0')), 400);
  EXPECT_EQ(refusal(" GET"), 400);
  EXPECT_EQ(refusal("GET /still-coming"), 0);  // could yet be a request
}

TEST(RequestFramerTest, LimitsTheHeadTheRequestLineAndTheBody) {
  FramerLimits limits;
  limits.max_header_bytes = 1000;
  limits.max_request_line_bytes = 100;
  limits.max_body_bytes = 10;
  EXPECT_EQ(refusal("GET /" + std::string(200, 'a'), limits), 414);
  EXPECT_EQ(refusal("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a'), limits), 431);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits), 413);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits), 0);
  // A head that ends exactly one byte past the limit is refused too (found by the fuzzer).
  const std::string start = "GET / HTTP/1.1\r\nX: ";
  EXPECT_EQ(refusal(start + std::string(1000 - start.size() - 3, 'a') + "\r\n\r\n", limits), 431);
  EXPECT_EQ(refusal(start + std::string(1000 - start.size() - 4, 'a') + "\r\n\r\n", limits), 0);
  // Announced 1 GiB: refused from the head alone, whatever follows.
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n", limits), 413);
}

TEST(RequestFramerTest, EverythingAfterARefusalIsDropped) {
  RequestFramer f({});
  EXPECT_EQ(f.next("GARBAGE\r\n\r\n").kind, Frame::Kind::kReject);
  Frame after = f.next("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(after.kind, Frame::Kind::kReject);
  EXPECT_EQ(after.status, 0);
  EXPECT_EQ(after.consumed, 18u);
}

TEST(RequestFramerTest, ReportsProgressForTheTimeouts) {
  RequestFramer f({});
  EXPECT_FALSE(f.midRequest());
  EXPECT_EQ(f.next("\r\n").kind, Frame::Kind::kNeedMore);
  EXPECT_FALSE(f.midRequest());
  EXPECT_EQ(f.next("POST / HT").kind, Frame::Kind::kNeedMore);
  EXPECT_TRUE(f.midRequest());
  EXPECT_FALSE(f.inBody());
  EXPECT_EQ(f.next("TP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n").kind,
            Frame::Kind::kHead);
  EXPECT_TRUE(f.expectsContinue());
  EXPECT_EQ(f.next("ab").kind, Frame::Kind::kBody);
  EXPECT_TRUE(f.inBody());
  EXPECT_EQ(f.bodyLeft(), 2u);
  EXPECT_EQ(f.next("cd").kind, Frame::Kind::kBody);
  EXPECT_EQ(f.next("").kind, Frame::Kind::kComplete);
  EXPECT_EQ(f.next("").kind, Frame::Kind::kNeedMore);
  EXPECT_FALSE(f.midRequest());
}

TEST(RequestFramerTest, RandomBytesNeverEscapeTheLimits) {
  std::mt19937 rng(42);
  FramerLimits limits;
  limits.max_header_bytes = 512;
  limits.max_body_bytes = 64;
  for (int round = 0; round < 2000; ++round) {
    std::string input(rng() % 2048, '\0');
    static const std::string alphabet("GETPOST /\r\n:Content-Length 0123456789HTTP/1.1\x00\xff",
                                      47);
    for (auto& c : input) c = alphabet[rng() % alphabet.size()];
    RequestFramer f(limits);
    std::string_view rest(input);
    size_t held = 0;
    while (!rest.empty()) {
      Frame fr = f.next(rest.substr(0, 1 + rng() % 64));
      ASSERT_LE(fr.consumed, rest.size());
      rest.remove_prefix(fr.consumed);
      ASSERT_LE(f.head().size(), limits.max_header_bytes + 1);
      if (fr.kind == Frame::Kind::kBody) held += fr.consumed;
      if (fr.kind == Frame::Kind::kComplete) {
        ASSERT_LE(held, limits.max_body_bytes);
        held = 0;
      }
      if (fr.kind == Frame::Kind::kReject) break;
      if (fr.kind == Frame::Kind::kNeedMore && fr.consumed == 0) break;
    }
  }
}

}  // namespace
}  // namespace sluice::http
