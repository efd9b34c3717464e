// The one place core/ and api/ include RapidJSON: defines a throwing RAPIDJSON_ASSERT first, and
// offers the hardened parse (depth limit, duplicate keys refused, UTF-8 validated) and a compact
// writer that checks for failures.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#ifndef RAPIDJSON_ASSERT
#define RAPIDJSON_ASSERT(x) \
  ((x) ? static_cast<void>(0) : throw std::logic_error("JSON value misused: " #x))
#endif
#ifndef RAPIDJSON_HAS_STDSTRING
#define RAPIDJSON_HAS_STDSTRING 1
#endif
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sluice::json {

/// Deepest nesting of arrays/objects accepted in a request body or stored record.
inline constexpr int kMaxDepth = 64;

struct ParseError {
  std::string message;  // e.g. "Invalid value. at offset 3"
  size_t offset = 0;
};

/// Parses `text` into `doc`: iterative (no recursion on hostile input), UTF-8 validated, whole
/// text consumed (trailing bytes refused), nesting deeper than kMaxDepth refused, objects with
/// duplicate keys refused. Returns false and fills *error on any failure.
bool parse(std::string_view text, rapidjson::Document& doc, ParseError* error);

/// Compact JSON text of `value`; throws std::runtime_error when the value cannot be written.
std::string write(const rapidjson::Value& value);

/// Appends the JSON string literal of `s` (quoted, escaped) to `out`.
void appendString(std::string& out, std::string_view s);

/// Writes `s` (which may hold NUL bytes) as a JSON string with a RapidJSON writer.
template <typename Writer>
void writeString(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace sluice::json
