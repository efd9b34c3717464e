#include "api/cli/ctl/ctl_yaml.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace sluice::cli::ctl {
namespace {

constexpr int kMaxDepth = 64;

// Thrown inside the conversion; caught in yamlToJson.
struct YamlProblem : std::runtime_error {
  YamlProblem(const YAML::Mark& mark, const std::string& what)
      : std::runtime_error("line " + std::to_string(mark.line + 1) + ", column " +
                           std::to_string(mark.column + 1) + ": " + what) {}
};

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Skips digits from `i`; returns how many there were.
size_t digits(const std::string& s, size_t& i) {
  const size_t from = i;
  while (i < s.size() && isDigit(s[i])) ++i;
  return i - from;
}

// [-+]?[0-9]+
bool isIntWord(const std::string& s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  return digits(s, i) > 0 && i == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool isFloatWord(const std::string& s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  const size_t whole = digits(s, i);
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t fraction = digits(s, i);
    if (whole == 0 && fraction == 0) return false;
  } else if (whole == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits(s, i) == 0) return false;
  }
  return i == s.size();
}

bool isNullWord(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}
bool isTrueWord(const std::string& s) { return s == "true" || s == "True" || s == "TRUE"; }
bool isFalseWord(const std::string& s) { return s == "false" || s == "False" || s == "FALSE"; }

// [-+]?\.(inf|Inf|INF) or \.(nan|NaN|NAN)
bool isSpecialFloat(const std::string& s) {
  const std::string unsigned_part = !s.empty() && (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF") return true;
  return s == ".nan" || s == ".NaN" || s == ".NAN";
}

// 0x[0-9a-fA-F]+ or 0o[0-7]+
bool isHexOrOctal(const std::string& s) {
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'o')) return false;
  for (size_t i = 2; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok =
        s[1] == 'x' ? std::isxdigit(static_cast<unsigned char>(c)) != 0 : (c >= '0' && c <= '7');
    if (!ok) return false;
  }
  return true;
}

// True when a plain scalar `s` reads as something other than a string.
bool resolvesToNonString(const std::string& s) {
  return isNullWord(s) || isTrueWord(s) || isFalseWord(s) || isIntWord(s) || isFloatWord(s) ||
         isSpecialFloat(s) || isHexOrOctal(s);
}

std::string lowerCase(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// True when a YAML 1.1 reader (PyYAML, older libraries) would read the plain scalar `s` as
// something other than a string, or might: its booleans (yes, no, on, off, y, n, true, false,
// in any case), null words in any case, the value key `=`, the merge key `<<`, and anything
// that starts like a number (a digit, or +, - or . then a digit or a dot): 1.1 integers and
// floats (1_000, 0b101, 017, 1:20, +1, .5) and timestamps (2026-01-01) all do. Quoting more
// than needed is harmless: a quoted scalar is a string for every reader.
bool resolvesToNonStringIn11(const std::string& s) {
  static const std::set<std::string> words = {"y",    "n",     "yes",  "no", "on", "off",
                                              "true", "false", "null", "~",  "=",  "<<"};
  if (words.count(lowerCase(s)) != 0) return true;
  if (s.empty()) return false;
  size_t i = s[0] == '-' || s[0] == '+' || s[0] == '.' ? 1 : 0;
  if (i == 0) return isDigit(s[0]);
  return i < s.size() && (isDigit(s[i]) || s[i] == '.');
}

// True for a DEL, a C1 control (U+0080-U+009F, NEL among them) or a line or paragraph
// separator (U+2028, U+2029): YAML readers take the last three as line breaks in a plain
// scalar, and none of them may reach a terminal raw.
bool hasSpecialCharacter(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (c == 0x7F || (c == 0xC2 && next >= 0x80 && next <= 0x9F)) return true;
    if (c == 0xE2 && next == 0x80 && i + 2 < s.size() &&
        (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
         static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
      return true;
    }
  }
  return false;
}

// True when `s` must be quoted to read back as the same string, by YAML 1.2 and 1.1 readers.
// The special characters are only written inside double quotes, where jsonToYaml escapes them.
bool needsQuotes(const std::string& s) {
  return resolvesToNonString(s) || resolvesToNonStringIn11(s) || hasSpecialCharacter(s);
}

void setInteger(const std::string& s, const YAML::Mark& mark, rapidjson::Value& out) {
  std::string digits = s;
  int base = 10;
  if (s.rfind("0x", 0) == 0) {
    digits = s.substr(2);
    base = 16;
  } else if (s.rfind("0o", 0) == 0) {
    digits = s.substr(2);
    base = 8;
  }
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno == 0) {
    out.SetInt64(v);
    return;
  }
  errno = 0;
  const unsigned long long u = std::strtoull(digits.c_str(), &end, base);
  if (errno == 0 && digits[0] != '-') {
    out.SetUint64(u);
    return;
  }
  throw YamlProblem(mark, "the integer " + s + " is too large");
}

void scalarToJson(const YAML::Node& node, rapidjson::Value& out,
                  rapidjson::Document::AllocatorType& alloc) {
  const std::string& s = node.Scalar();
  const std::string& tag = node.Tag();
  const bool quoted = tag == "!";
  if (quoted || tag == "tag:yaml.org,2002:str") {
    out.SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc);
    return;
  }
  if (tag != "?" && !tag.empty() && tag != "tag:yaml.org,2002:int" &&
      tag != "tag:yaml.org,2002:float" && tag != "tag:yaml.org,2002:bool" &&
      tag != "tag:yaml.org,2002:null") {
    throw YamlProblem(node.Mark(), "the tag " + tag + " has no JSON equivalent");
  }
  if (isNullWord(s)) {
    out.SetNull();
  } else if (isTrueWord(s)) {
    out.SetBool(true);
  } else if (isFalseWord(s)) {
    out.SetBool(false);
  } else if (isIntWord(s) || isHexOrOctal(s)) {
    setInteger(s[0] == '+' ? s.substr(1) : s, node.Mark(), out);
  } else if (isFloatWord(s)) {
    const double d = std::strtod(s.c_str(), nullptr);
    if (!std::isfinite(d)) throw YamlProblem(node.Mark(), s + " is out of range");
    out.SetDouble(d);
  } else if (isSpecialFloat(s)) {
    throw YamlProblem(node.Mark(), s + " (infinity or NaN) cannot be written in JSON");
  } else {
    out.SetString(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc);
  }
}

void nodeToJson(const YAML::Node& node, rapidjson::Value& out,
                rapidjson::Document::AllocatorType& alloc, int depth) {
  if (depth > kMaxDepth) {
    throw YamlProblem(node.Mark(), "nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out.SetNull();
      return;
    case YAML::NodeType::Scalar:
      scalarToJson(node, out, alloc);
      return;
    case YAML::NodeType::Sequence:
      out.SetArray();
      for (const auto& item : node) {
        rapidjson::Value v;
        nodeToJson(item, v, alloc, depth + 1);
        out.PushBack(v, alloc);
      }
      return;
    case YAML::NodeType::Map: {
      out.SetObject();
      std::set<std::string> seen;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          throw YamlProblem(kv.first.Mark(), "a mapping key must be a scalar in JSON");
        }
        const std::string& key = kv.first.Scalar();
        if (!seen.insert(key).second) {
          throw YamlProblem(kv.first.Mark(), "the key '" + key + "' appears twice");
        }
        rapidjson::Value name(key.c_str(), static_cast<rapidjson::SizeType>(key.size()), alloc);
        rapidjson::Value v;
        nodeToJson(kv.second, v, alloc, depth + 1);
        out.AddMember(name, v, alloc);
      }
      return;
    }
  }
}

void emit(YAML::Emitter& e, const rapidjson::Value& v) {
  if (v.IsObject()) {
    e << YAML::BeginMap;
    for (const auto& m : v.GetObject()) {
      const std::string key(m.name.GetString(), m.name.GetStringLength());
      e << YAML::Key;
      if (needsQuotes(key)) {
        e << YAML::DoubleQuoted << key;
      } else {
        e << key;
      }
      e << YAML::Value;
      emit(e, m.value);
    }
    e << YAML::EndMap;
  } else if (v.IsArray()) {
    e << YAML::BeginSeq;
    for (const auto& item : v.GetArray()) emit(e, item);
    e << YAML::EndSeq;
  } else if (v.IsString()) {
    const std::string s(v.GetString(), v.GetStringLength());
    if (needsQuotes(s)) {
      e << YAML::DoubleQuoted << s;
    } else {
      e << s;
    }
  } else if (v.IsNull()) {
    e << YAML::Null;
  } else if (v.IsBool()) {
    e << v.GetBool();
  } else {
    // RapidJSON writes the shortest text that reads back as the same number; as a plain
    // scalar it reads back as a number.
    e << json::write(v);
  }
}

}  // namespace

bool yamlToJson(const std::string& text, rapidjson::Document& out, std::string* error) {
  try {
    for (const auto& doc : YAML::LoadAll(text)) {
      // An empty document (a stream that ends with `---`, or `~` alone) holds no
      // configuration: it is skipped, not read as null.
      if (doc.IsNull()) continue;
      rapidjson::Value v;
      nodeToJson(doc, v, out.GetAllocator(), 0);
      out.PushBack(v, out.GetAllocator());
    }
    return true;
  } catch (const YAML::Exception& e) {
    *error = "line " + std::to_string(e.mark.line + 1) + ", column " +
             std::to_string(e.mark.column + 1) + ": " + e.msg;
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return false;
}

std::string jsonToYaml(const rapidjson::Value& value) {
  YAML::Emitter e;
  e.SetIndent(2);
  emit(e, value);
  // yaml-cpp escapes the C0 controls in double-quoted scalars, but may write DEL, C1 controls
  // and the line and paragraph separators as they are; they occur only inside double quotes
  // (needsQuotes), where these escapes mean the same characters.
  static constexpr char kHex[] = "0123456789ABCDEF";
  const std::string raw = e.c_str();
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    const auto next = i + 1 < raw.size() ? static_cast<unsigned char>(raw[i + 1]) : 0;
    if (c == 0x7F) {
      out += "\\x7F";
    } else if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {
      out += std::string("\\x") + kHex[next >> 4] + kHex[next & 0xF];
      ++i;
    } else if (c == 0xE2 && next == 0x80 && i + 2 < raw.size() &&
               (raw[i + 2] == '\xA8' || raw[i + 2] == '\xA9')) {
      out += raw[i + 2] == '\xA8' ? "\\L" : "\\P";
      i += 2;
    } else {
      out += raw[i];
    }
  }
  if (out.empty() || out.back() != '\n') out += '\n';
  return out;
}

}  // namespace sluice::cli::ctl
