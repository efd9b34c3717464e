// libFuzzer target: the path decoder (api::percentDecode), which turns each URL path segment
// into a flow id.
//
// Invariants beyond "no crash":
//  - it agrees with an independent reference decoder, on success and on refusal;
//  - a text without '%' decodes to itself, and a decoded text is never longer than its input;
//  - any byte string, percent-encoded (upper or lower case hex, every byte or only the reserved
//    ones), decodes back to itself; so does the result of a successful decode.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "api/routes/percent.hpp"
#include "fuzz_common.hpp"

namespace {

// Reference: a different shape of the same rule (RFC 3986 pct-encoded = "%" HEXDIG HEXDIG).
std::optional<std::string> referenceDecode(std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i < in.size()) {
    size_t pct = in.find('%', i);
    if (pct == std::string_view::npos) {
      out.append(in.substr(i));
      break;
    }
    out.append(in.substr(i, pct - i));
    if (in.size() - pct < 3) return std::nullopt;
    const auto a = static_cast<unsigned char>(in[pct + 1]);
    const auto b = static_cast<unsigned char>(in[pct + 2]);
    if (!std::isxdigit(a) || !std::isxdigit(b)) return std::nullopt;
    const char digits[3] = {static_cast<char>(a), static_cast<char>(b), '\0'};
    out.push_back(static_cast<char>(std::strtoul(digits, nullptr, 16)));
    i = pct + 3;
  }
  return out;
}

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string encode(std::string_view in, bool every_byte, bool upper) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (!every_byte && unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

void checkRoundTrip(std::string_view raw) {
  for (bool every_byte : {false, true}) {
    for (bool upper : {false, true}) {
      const std::string encoded = encode(raw, every_byte, upper);
      FUZZ_CHECK(encoded.find('/') == std::string::npos);  // stays one path segment
      const auto decoded = sluice::api::percentDecode(encoded);
      FUZZ_CHECK(decoded.has_value() && *decoded == raw);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto decoded = sluice::api::percentDecode(in);
  const auto expected = referenceDecode(in);
  FUZZ_CHECK(decoded.has_value() == expected.has_value());
  if (decoded) {
    FUZZ_CHECK(*decoded == *expected);
    FUZZ_CHECK(decoded->size() <= in.size());
    checkRoundTrip(*decoded);
  }
  if (in.find('%') == std::string_view::npos) FUZZ_CHECK(decoded.has_value() && *decoded == in);
  checkRoundTrip(in);
  return 0;
}
