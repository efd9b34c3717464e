// A flow's `config` object as the plugin sees it: parsed from the JSON text the engine passes.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#ifndef RAPIDJSON_ASSERT
// Misuse of a RapidJSON value (wrong type, missing member) throws instead of aborting; the SDK
// turns the exception into an error status at the boundary.
#define RAPIDJSON_ASSERT(x) \
  ((x) ? static_cast<void>(0) : throw std::logic_error("JSON value misused: " #x))
#endif
#ifndef RAPIDJSON_HAS_STDSTRING
#define RAPIDJSON_HAS_STDSTRING 1
#endif
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

namespace sluice::sdk {

/// The flow's `config` object (an empty object when the flow has none).
class Config {
 public:
  /// Parses `json`; on failure returns false with a message in *error.
  bool parse(std::string_view json, std::string* error) {
    doc_.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(json.data(),
                                                                                       json.size());
    if (doc_.HasParseError()) {
      *error = std::string("config is not valid JSON: ") +
               rapidjson::GetParseError_En(doc_.GetParseError()) + " at offset " +
               std::to_string(doc_.GetErrorOffset());
      return false;
    }
    if (!doc_.IsObject()) {
      *error = "config must be a JSON object";
      return false;
    }
    return true;
  }

  const rapidjson::Value& json() const { return doc_; }
  bool has(const char* key) const { return doc_.FindMember(key) != doc_.MemberEnd(); }
  const rapidjson::Value* find(const char* key) const {
    auto it = doc_.FindMember(key);
    return it == doc_.MemberEnd() ? nullptr : &it->value;
  }
  /// The integer member `key`, or `fallback` when absent. Throws when present but not an integer.
  int64_t getInt(const char* key, int64_t fallback) const {
    const rapidjson::Value* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->IsInt64()) throw std::invalid_argument(std::string(key) + " must be an integer");
    return v->GetInt64();
  }
  /// The string member `key`, or `fallback` when absent. Throws when present but not a string.
  std::string getString(const char* key, const std::string& fallback) const {
    const rapidjson::Value* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->IsString()) throw std::invalid_argument(std::string(key) + " must be a string");
    return std::string(v->GetString(), v->GetStringLength());
  }

 private:
  rapidjson::Document doc_;
};

}  // namespace sluice::sdk
