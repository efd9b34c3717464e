// libFuzzer target: the request-body JSON parser (sluice::json::parse) and the writer.
//
// Invariants beyond "no crash":
//  - a refused text leaves a null document and an error offset inside the text;
//  - an accepted text has no NUL byte, no nesting deeper than json::kMaxDepth, no duplicate keys,
//    only valid UTF-8 strings (known issue K1), numbers equal to their literals (K2) and only
//    finite numbers (K4);
//  - what parses writes, and the written text parses to an equal value and writes the same again;
//  - json::appendString of any valid UTF-8 text parses back to that text.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "core/model/json.hpp"
#include "fuzz_common.hpp"

namespace {

using sluice::fuzz::knownIssue;

// Depth and duplicate keys, checked on the tree (the parser checks them on SAX events).
bool shapeWithinLimits(const rapidjson::Value& v, int depth) {
  if (v.IsArray() || v.IsObject()) {
    if (depth + 1 > sluice::json::kMaxDepth) return false;
  }
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (!shapeWithinLimits(e, depth + 1)) return false;
    }
  } else if (v.IsObject()) {
    std::set<std::string_view> keys;
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (!keys.emplace(m->name.GetString(), m->name.GetStringLength()).second) return false;
      if (!shapeWithinLimits(m->value, depth + 1)) return false;
    }
  }
  return true;
}

void checkAppendString(std::string_view text) {
  if (!sluice::fuzz::isValidUtf8(text)) return;
  std::string literal;
  sluice::json::appendString(literal, text);
  rapidjson::Document doc;
  sluice::json::ParseError err;
  FUZZ_CHECK(sluice::json::parse(literal, doc, &err));
  FUZZ_CHECK(doc.IsString());
  FUZZ_CHECK(std::string_view(doc.GetString(), doc.GetStringLength()) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  checkAppendString(text);

  rapidjson::Document doc;
  sluice::json::ParseError err;
  if (!sluice::json::parse(text, doc, &err)) {
    FUZZ_CHECK(doc.IsNull());
    FUZZ_CHECK(err.offset <= size);
    FUZZ_CHECK(!err.message.empty());
    return 0;
  }
  FUZZ_CHECK(text.find('\0') == std::string_view::npos);
  FUZZ_CHECK(shapeWithinLimits(doc, 0));
  if (!sluice::fuzz::allStringsValid(doc)) {
    knownIssue("K1", "json::parse accepted a string that is not valid UTF-8");
    return 0;
  }
  if (!sluice::fuzz::allNumbersFinite(doc)) {
    knownIssue("K4", "json::parse accepted a number too big for a double as infinity");
    return 0;
  }
  if (!sluice::fuzz::numbersExact(text, doc)) {
    knownIssue("K2", "json::parse read a number as a value other than its literal's");
    return 0;
  }

  // Round trip: write, parse again, compare, write again.
  const std::string first = sluice::json::write(doc);
  rapidjson::Document again;
  FUZZ_CHECK(sluice::json::parse(first, again, &err));
  if (!sluice::fuzz::numbersExact(first, again)) {
    knownIssue("K2", "json::parse read a written number as a value other than its literal's");
    return 0;
  }
  FUZZ_CHECK(sluice::fuzz::sameValue(doc, again));
  FUZZ_CHECK(sluice::json::write(again) == first);
  return 0;
}
