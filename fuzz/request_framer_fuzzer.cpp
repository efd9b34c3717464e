// libFuzzer target: the HTTP edge's request framing (api/http/request_framer), which sees every
// byte a client sends before Pistache's parser does.
//
// Invariants beyond "no crash":
//  - the frames are the same however the bytes are split into reads (the split points come
//    from the input itself);
//  - a head handed on ends with CRLF CRLF, holds no NUL or bare LF, and fits the head limit;
//  - the body bytes of one request never exceed the body limit, and each request that completes
//    had exactly the body its head announced;
//  - after a refusal nothing more is framed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "api/http/request_framer.hpp"
#include "fuzz_common.hpp"

namespace {

using sluice::http::Frame;
using sluice::http::FramerLimits;
using sluice::http::RequestFramer;

constexpr FramerLimits kLimits{1024, 256, 4096};

// Feeds `input` in reads whose sizes cycle through `sizes`; returns the frames as text.
std::vector<std::string> frame(std::string_view input, const std::vector<size_t>& sizes) {
  RequestFramer f(kLimits);
  std::vector<std::string> out;
  std::string body;
  bool rejected = false;
  size_t pos = 0, turn = 0;
  do {
    std::string_view rest = input.substr(pos, sizes[turn++ % sizes.size()]);
    pos += rest.size();
    for (;;) {
      Frame fr = f.next(rest);
      FUZZ_CHECK(fr.consumed <= rest.size());
      rest.remove_prefix(fr.consumed);
      if (fr.kind == Frame::Kind::kNeedMore) break;
      if (fr.kind == Frame::Kind::kReject) {
        if (!rejected) out.push_back("reject " + std::to_string(fr.status));
        FUZZ_CHECK(rejected || fr.status >= 400);
        rejected = true;
        break;
      }
      FUZZ_CHECK(!rejected);
      if (fr.kind == Frame::Kind::kHead) {
        const std::string& head = f.head();
        FUZZ_CHECK(head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0);
        FUZZ_CHECK(head.size() <= kLimits.max_header_bytes);
        FUZZ_CHECK(head.find('\0') == std::string::npos);
        for (size_t i = 0; i < head.size(); ++i) {
          FUZZ_CHECK(head[i] != '\n' || (i > 0 && head[i - 1] == '\r'));
        }
        FUZZ_CHECK(f.bodyLeft() <= kLimits.max_body_bytes);
        out.push_back("head " + head + " " + std::to_string(f.bodyLeft()));
      } else if (fr.kind == Frame::Kind::kBody) {
        body.append(rest.data() - fr.consumed, fr.consumed);
        FUZZ_CHECK(body.size() <= kLimits.max_body_bytes);
      } else if (fr.kind == Frame::Kind::kComplete) {
        FUZZ_CHECK(f.bodyLeft() == 0);
        out.push_back("body " + body);
        body.clear();
      }
    }
  } while (pos < input.size() && !rejected);
  if (!body.empty()) out.push_back("partial " + body);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first bytes choose the read sizes (1-32 each), the rest is what the client sent.
  const size_t n_sizes = 1 + data[0] % 4;
  if (size < 1 + n_sizes) return 0;
  std::vector<size_t> sizes;
  for (size_t i = 0; i < n_sizes; ++i) sizes.push_back(1 + data[1 + i] % 32);
  const std::string_view input(reinterpret_cast<const char*>(data) + 1 + n_sizes,
                               size - 1 - n_sizes);
  const auto whole = frame(input, {input.size() + 1});
  const auto split = frame(input, sizes);
  FUZZ_CHECK(whole == split);
  return 0;
}
