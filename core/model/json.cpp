#include "core/model/json.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

namespace sluice::json {
namespace {

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF. RapidJSON's
// own validation checks the raw bytes but not what an escape decodes to: "\udc00" (a lone
// surrogate) would come out as bytes that no writer accepts.
bool validUtf8(const char* s, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // U+D800..U+DFFF are surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

// SAX filter in front of the Document: counts depth and refuses duplicate keys, so both limits
// hold before any value is built.
class GuardedHandler {
 public:
  explicit GuardedHandler(rapidjson::Document& doc) : doc_(doc) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) {
    if (!std::isfinite(d)) {
      failure_ = "number out of range (beyond a double's)";
      return false;
    }
    return doc_.Double(d);
  }
  // Numbers arrive as their text (kParseNumbersAsStringsFlag) and are converted here, exactly:
  // RapidJSON 1.1.0's own conversion is off by an ulp on some inputs, and its full-precision
  // mode turns some numbers past a double's range into unrelated finite values.
  bool RawNumber(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    const std::string_view text(s, n);
    const char* end = s + n;
    if (text.find_first_of(".eE") == std::string_view::npos) {
      if (text[0] == '-') {
        int64_t v = 0;
        auto r = std::from_chars(s, end, v);
        if (r.ec == std::errc() && r.ptr == end) {
          if (v == 0) return doc_.Double(-0.0);
          return v >= INT_MIN ? doc_.Int(static_cast<int>(v)) : doc_.Int64(v);
        }
      } else {
        uint64_t v = 0;
        auto r = std::from_chars(s, end, v);
        if (r.ec == std::errc() && r.ptr == end) {
          if (v <= INT_MAX) return doc_.Int(static_cast<int>(v));
          if (v <= UINT_MAX) return doc_.Uint(static_cast<unsigned>(v));
          if (v <= static_cast<uint64_t>(INT64_MAX)) return doc_.Int64(static_cast<int64_t>(v));
          return doc_.Uint64(v);
        }
      }
      // Too big for 64 bits: a double, like any other number.
    }
    double d = 0;
    auto r = std::from_chars(s, end, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Past a double's range one way or the other: strtod tells which (0 or a denormal is a
      // fine reading of a tiny number; infinity is not a number JSON can carry).
      d = std::strtod(std::string(text).c_str(), nullptr);
    } else if (r.ec != std::errc() || r.ptr != end) {
      failure_ = "malformed number";
      return false;
    }
    return Double(d);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    if (!utf8(s, n)) return false;
    return doc_.String(s, n, copy);
  }
  bool StartObject() {
    if (!enter()) return false;
    keys_.emplace_back();
    return doc_.StartObject();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    if (!utf8(s, n)) return false;
    if (!keys_.back().emplace(s, n).second) {
      failure_ = "duplicate key \"" + std::string(s, n) + "\"";
      return false;
    }
    return doc_.Key(s, n, copy);
  }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    keys_.pop_back();
    return doc_.EndObject(n);
  }
  bool StartArray() {
    if (!enter()) return false;
    return doc_.StartArray();
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

  const std::string& failure() const { return failure_; }

 private:
  bool utf8(const char* s, rapidjson::SizeType n) {
    if (validUtf8(s, n)) return true;
    failure_ = "a string is not valid UTF-8 (an escape of a lone surrogate?)";
    return false;
  }
  bool enter() {
    if (++depth_ > kMaxDepth) {
      failure_ = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    return true;
  }

  rapidjson::Document& doc_;
  int depth_ = 0;
  std::vector<std::set<std::string>> keys_;
  std::string failure_;
};

}  // namespace

bool parse(std::string_view text, rapidjson::Document& doc, ParseError* error) {
  // Numbers as text: GuardedHandler::RawNumber converts them exactly.
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  GuardedHandler handler(doc);
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document&) {
    result = reader.Parse<kFlags>(is, handler);
    return static_cast<bool>(result);
  };
  doc.Populate(generate);
  if (result) {
    // RapidJSON stops at a NUL byte as if the text ended there: refuse what would follow it.
    size_t nul = text.find('\0');
    if (nul == std::string_view::npos) return true;
    if (error != nullptr) {
      error->offset = nul;
      error->message = "NUL byte at offset " + std::to_string(nul);
    }
    doc.SetNull();
    return false;
  }
  if (error != nullptr) {
    error->offset = result.Offset();
    std::string what = handler.failure().empty()
                           ? std::string(rapidjson::GetParseError_En(result.Code()))
                           : handler.failure();
    error->message = what + " at offset " + std::to_string(result.Offset());
  }
  doc.SetNull();
  return false;
}

std::string write(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                    rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>
      writer(buffer);
  if (!value.Accept(writer)) throw std::runtime_error("value cannot be written as JSON");
  return std::string(buffer.GetString(), buffer.GetSize());
}

void appendString(std::string& out, std::string_view s) {
  // Most strings (ids, states, times) need no escape: quoted as they are, without a writer's
  // buffer. Otherwise RapidJSON's writer escapes them (control characters, '"' and '\\').
  bool plain = true;
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    out.append(s);
    out += '"';
    return;
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out.append(buffer.GetString(), buffer.GetSize());
}

}  // namespace sluice::json
