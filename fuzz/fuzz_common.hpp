// Helpers shared by the libFuzzer targets: invariant checks that abort (libFuzzer then saves the
// input), the regressions of bugs found earlier, and independent oracles (UTF-8 validity, exact
// numbers).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/json.hpp"

namespace sluice::fuzz {

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant violated: %s (%s:%d)\n", what, file, line);
  std::fflush(stderr);
  std::abort();
}

/// An input that shows bug `id` (docs/fuzzing.md: K1-K4, all fixed): aborts, so that a
/// regression is reported like any other finding.
[[noreturn]] inline void knownIssue(const char* id, const char* what) {
  std::fprintf(stderr, "regression of %s: %s\n", id, what);
  std::fflush(stderr);
  std::abort();
}

/// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
/// U+10FFFF). Written independently of RapidJSON's own validation, to check it.
inline bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

/// True when every string and member name in `v` is valid UTF-8.
inline bool allStringsValid(const rapidjson::Value& v) {
  if (v.IsString()) return isValidUtf8({v.GetString(), v.GetStringLength()});
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (!allStringsValid(e)) return false;
    }
  } else if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (!isValidUtf8({m->name.GetString(), m->name.GetStringLength()})) return false;
      if (!allStringsValid(m->value)) return false;
    }
  }
  return true;
}

/// True when every number in `v` is finite (JSON has no infinity or NaN).
inline bool allNumbersFinite(const rapidjson::Value& v) {
  if (v.IsDouble()) return std::isfinite(v.GetDouble());
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (!allNumbersFinite(e)) return false;
    }
  } else if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (!allNumbersFinite(m->value)) return false;
    }
  }
  return true;
}

namespace detail {

// Collects the text of every number, in document order.
struct NumberTexts : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NumberTexts> {
  std::vector<std::string> texts;
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    texts.emplace_back(s, n);
    return true;
  }
};

inline bool numbersMatch(const rapidjson::Value& v, const std::vector<std::string>& texts,
                         size_t& next) {
  if (v.IsNumber()) {
    if (next >= texts.size()) return false;
    const std::string& t = texts[next++];
    if (v.IsDouble()) {
      const double expected = std::strtod(t.c_str(), nullptr);  // glibc: correctly rounded
      const double got = v.GetDouble();
      return std::memcmp(&expected, &got, sizeof expected) == 0;
    }
    if (!t.empty() && t[0] == '-')
      return v.IsInt64() && std::strtoll(t.c_str(), nullptr, 10) == v.GetInt64();
    return v.IsUint64() && std::strtoull(t.c_str(), nullptr, 10) == v.GetUint64();
  }
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (!numbersMatch(e, texts, next)) return false;
    }
  } else if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (!numbersMatch(m->value, texts, next)) return false;
    }
  }
  return true;
}

}  // namespace detail

/// True when every number of `doc` (parsed from `text`) is the value its literal denotes: the
/// correctly rounded double (as strtod gives it) or the exact integer.
inline bool numbersExact(std::string_view text, const rapidjson::Value& doc) {
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
  detail::NumberTexts handler;
  if (!reader.Parse<kFlags>(is, handler)) return false;
  size_t next = 0;
  return detail::numbersMatch(doc, handler.texts, next) && next == handler.texts.size();
}

/// Structural equality; doubles compared bit for bit, member order significant.
inline bool sameValue(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.GetType() != b.GetType()) return false;
  if (a.IsNumber()) {
    if (a.IsDouble() != b.IsDouble()) return false;
    if (a.IsDouble()) {
      const double x = a.GetDouble(), y = b.GetDouble();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    if (a.IsUint64() != b.IsUint64() || a.IsInt64() != b.IsInt64()) return false;
    return a.IsUint64() ? a.GetUint64() == b.GetUint64() : a.GetInt64() == b.GetInt64();
  }
  if (a.IsString()) {
    return std::string_view(a.GetString(), a.GetStringLength()) ==
           std::string_view(b.GetString(), b.GetStringLength());
  }
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!sameValue(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (auto x = a.MemberBegin(), y = b.MemberBegin(); x != a.MemberEnd(); ++x, ++y) {
      if (!sameValue(x->name, y->name) || !sameValue(x->value, y->value)) return false;
    }
    return true;
  }
  return true;  // null, true, false: the type says it all
}

}  // namespace sluice::fuzz

#define FUZZ_CHECK(cond) \
  ((cond) ? static_cast<void>(0) : ::sluice::fuzz::fail(#cond, __FILE__, __LINE__))
