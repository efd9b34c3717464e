// A flow's `config` object as the plugin sees it: parsed from the JSON text the engine passes,
// into a small value tree of the SDK's own. No third-party header is included: a plugin that
// wants RapidJSON opts in with sluice/sdk/rapidjson.hpp.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::sdk {

/// One reference token of a JSON pointer (RFC 6901), for a problem's path that names a member
/// by its key: '~' is written "~0" and '/' "~1" ("/env/" + pointerToken(name)).
inline std::string pointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

/// One JSON value: null, a boolean, a number (an integer when it has no fraction or exponent
/// and fits int64), a string, an array or an object (members in document order).
class Json {
 public:
  enum class Kind { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::kNull; }
  bool isBool() const { return kind_ == Kind::kBool; }
  bool isInt() const { return kind_ == Kind::kInt; }
  bool isNumber() const { return kind_ == Kind::kInt || kind_ == Kind::kDouble; }
  bool isString() const { return kind_ == Kind::kString; }
  bool isArray() const { return kind_ == Kind::kArray; }
  bool isObject() const { return kind_ == Kind::kObject; }
  /// The value as that type; throws std::invalid_argument when it is another.
  bool asBool() const { return need(isBool(), "a boolean"), bool_; }
  int64_t asInt() const { return need(isInt(), "an integer"), int_; }
  double asDouble() const {
    need(isNumber(), "a number");
    return kind_ == Kind::kInt ? static_cast<double>(int_) : double_;
  }
  const std::string& asString() const { return need(isString(), "a string"), string_; }
  const std::vector<Json>& items() const { return need(isArray(), "an array"), items_; }
  const std::vector<std::pair<std::string, Json>>& members() const {
    return need(isObject(), "an object"), members_;
  }
  /// The member `key` of an object, or null when absent (or this is not an object).
  const Json* find(std::string_view key) const {
    for (const auto& [k, v] : members_) {
      if (k == key) return &v;
    }
    return nullptr;
  }

  /// Parses JSON text (RFC 8259; nesting at most 256 deep); false with a message and the byte
  /// offset in *error otherwise.
  static bool parse(std::string_view text, Json* out, std::string* error) {
    *out = Json();
    Parser p{text, 0, {}};
    bool ok = p.value(out, 0);
    if (ok) {
      p.skip();
      ok = p.at == text.size() || p.fail("trailing characters");
    }
    if (!ok && error != nullptr) *error = p.error + " at offset " + std::to_string(p.at);
    return ok;
  }

 private:
  int need(bool ok, const char* what) const {
    if (!ok) throw std::invalid_argument(std::string("JSON value is not ") + what);
    return 0;
  }

  struct Parser {
    std::string_view s;
    size_t at;
    std::string error;
    bool fail(const char* why) {
      if (error.empty()) error = why;
      return false;
    }
    void skip() {
      while (at < s.size() && (s[at] == ' ' || s[at] == '\t' || s[at] == '\n' || s[at] == '\r'))
        ++at;
    }
    bool literal(std::string_view word) {
      if (s.substr(at, word.size()) != word) return fail("invalid literal");
      at += word.size();
      return true;
    }
    static void utf8(std::string& out, uint32_t cp) {
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    bool hex4(uint32_t* out) {
      if (at + 4 > s.size()) return fail("truncated \\u escape");
      uint32_t v = 0;
      for (int i = 0; i < 4; ++i) {
        const char c = s[at++];
        v <<= 4;
        if (c >= '0' && c <= '9')
          v |= static_cast<uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f')
          v |= static_cast<uint32_t>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
          v |= static_cast<uint32_t>(c - 'A' + 10);
        else
          return fail("invalid \\u escape");
      }
      *out = v;
      return true;
    }
    bool string(std::string* out) {
      ++at;  // the opening quote
      while (at < s.size()) {
        const char c = s[at++];
        if (c == '"') return true;
        if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
        if (c != '\\') {
          *out += c;
          continue;
        }
        if (at >= s.size()) break;
        switch (const char e = s[at++]) {
          case '"':
          case '\\':
          case '/':
            *out += e;
            break;
          case 'b':
            *out += '\b';
            break;
          case 'f':
            *out += '\f';
            break;
          case 'n':
            *out += '\n';
            break;
          case 'r':
            *out += '\r';
            break;
          case 't':
            *out += '\t';
            break;
          case 'u': {
            uint32_t cp = 0;
            if (!hex4(&cp)) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              uint32_t low = 0;
              if (s.substr(at, 2) != "\\u") return fail("lone surrogate");
              at += 2;
              if (!hex4(&low)) return false;
              if (low < 0xDC00 || low > 0xDFFF) return fail("lone surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return fail("lone surrogate");
            }
            utf8(*out, cp);
            break;
          }
          default:
            return fail("invalid escape");
        }
      }
      return fail("unterminated string");
    }
    bool number(Json* out) {
      const size_t start = at;
      bool integral = true;
      if (s[at] == '-') ++at;
      auto digits = [&] {
        const size_t from = at;
        while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
        return at > from;
      };
      const size_t int_start = s[start] == '-' ? start + 1 : start;
      if (!digits()) return fail("invalid number");
      if (s[int_start] == '0' && at - int_start > 1) return fail("leading zero in a number");
      if (at < s.size() && s[at] == '.') {
        integral = false;
        ++at;
        if (!digits()) return fail("invalid number");
      }
      if (at < s.size() && (s[at] == 'e' || s[at] == 'E')) {
        integral = false;
        ++at;
        if (at < s.size() && (s[at] == '+' || s[at] == '-')) ++at;
        if (!digits()) return fail("invalid number");
      }
      const char* first = s.data() + start;
      const char* last = s.data() + at;
      if (integral) {
        int64_t v = 0;
        if (std::from_chars(first, last, v).ec == std::errc()) {
          out->kind_ = Kind::kInt;
          out->int_ = v;
          return true;
        }
      }
      double d = 0;
      const auto [end, ec] = std::from_chars(first, last, d);
      if (ec == std::errc::result_out_of_range) {
        // As the engine reads it (strtod): a tiny number becomes a denormal or 0, a huge one
        // is refused (the engine refuses it first).
        d = std::strtod(std::string(first, last).c_str(), nullptr);
        if (d == HUGE_VAL || d == -HUGE_VAL) return fail("number out of range");
      } else if (ec != std::errc() || end != last) {
        return fail("invalid number");
      }
      out->kind_ = Kind::kDouble;
      out->double_ = d;
      return true;
    }
    bool value(Json* out, int depth) {
      if (depth > 256) return fail("nesting deeper than 256");
      skip();
      if (at >= s.size()) return fail("unexpected end of text");
      switch (s[at]) {
        case 'n':
          return literal("null");
        case 't':
          out->kind_ = Kind::kBool;
          out->bool_ = true;
          return literal("true");
        case 'f':
          out->kind_ = Kind::kBool;
          out->bool_ = false;
          return literal("false");
        case '"':
          out->kind_ = Kind::kString;
          return string(&out->string_);
        case '[': {
          ++at;
          out->kind_ = Kind::kArray;
          skip();
          if (at < s.size() && s[at] == ']') return ++at, true;
          for (;;) {
            out->items_.emplace_back();
            if (!value(&out->items_.back(), depth + 1)) return false;
            skip();
            if (at < s.size() && s[at] == ',') {
              ++at;
              continue;
            }
            if (at < s.size() && s[at] == ']') return ++at, true;
            return fail("expected ',' or ']'");
          }
        }
        case '{': {
          ++at;
          out->kind_ = Kind::kObject;
          skip();
          if (at < s.size() && s[at] == '}') return ++at, true;
          for (;;) {
            skip();
            if (at >= s.size() || s[at] != '"') return fail("expected a member name");
            std::string key;
            if (!string(&key)) return false;
            skip();
            if (at >= s.size() || s[at] != ':') return fail("expected ':'");
            ++at;
            out->members_.emplace_back(std::move(key), Json());
            if (!value(&out->members_.back().second, depth + 1)) return false;
            skip();
            if (at < s.size() && s[at] == ',') {
              ++at;
              continue;
            }
            if (at < s.size() && s[at] == '}') return ++at, true;
            return fail("expected ',' or '}'");
          }
        }
        default:
          if (s[at] == '-' || (s[at] >= '0' && s[at] <= '9')) return number(out);
          return fail("unexpected character");
      }
    }
  };

  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

/// The flow's `config` object (an empty object when the flow has none).
class Config {
 public:
  /// Parses `json`; on failure returns false with a message in *error.
  bool parse(std::string_view json, std::string* error) {
    text_ = std::string(json);
    root_ = Json();
    std::string why;
    if (!Json::parse(json, &root_, &why)) {
      *error = "config is not valid JSON: " + why;
      return false;
    }
    if (!root_.isObject()) {
      *error = "config must be a JSON object";
      return false;
    }
    return true;
  }

  /// The whole config object.
  const Json& root() const { return root_; }
  /// The config as the JSON text the engine passed (for a JSON library of the plugin's own,
  /// e.g. sluice/sdk/rapidjson.hpp).
  const std::string& text() const { return text_; }
  bool has(const char* key) const { return root_.find(key) != nullptr; }
  const Json* find(const char* key) const { return root_.find(key); }
  /// The integer member `key`, or `fallback` when absent. Throws when present but not an integer.
  int64_t getInt(const char* key, int64_t fallback) const {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->isInt()) throw std::invalid_argument(std::string(key) + " must be an integer");
    return v->asInt();
  }
  /// The number member `key`, or `fallback` when absent. Throws when present but not a number.
  double getDouble(const char* key, double fallback) const {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->isNumber()) throw std::invalid_argument(std::string(key) + " must be a number");
    return v->asDouble();
  }
  /// The boolean member `key`, or `fallback` when absent. Throws when present but not a boolean.
  bool getBool(const char* key, bool fallback) const {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->isBool()) throw std::invalid_argument(std::string(key) + " must be true or false");
    return v->asBool();
  }
  /// The string member `key`, or `fallback` when absent. Throws when present but not a string.
  std::string getString(const char* key, const std::string& fallback) const {
    const Json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->isString()) throw std::invalid_argument(std::string(key) + " must be a string");
    return v->asString();
  }

 private:
  std::string text_ = "{}";
  Json root_;
};

}  // namespace sluice::sdk
