#include "api/routes/conditional.hpp"

#include "api/routes/percent.hpp"

namespace sluice::api {
namespace {

// The entity tags of a header value: `"a", W/"b"` -> {"\"a\"", "W/\"b\""}; "*" -> {"*"}.
std::vector<std::string> tagList(std::string_view v) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) ++i;
    if (i >= v.size()) break;
    const size_t start = i;
    if (v[i] == '*') {
      out.emplace_back("*");
      ++i;
      continue;
    }
    if (v.substr(i, 2) == "W/") i += 2;
    if (i < v.size() && v[i] == '"') {
      const size_t close = v.find('"', i + 1);
      if (close == std::string_view::npos) break;  // malformed: ignore the rest
      i = close + 1;
    } else {
      while (i < v.size() && v[i] != ',') ++i;  // an unquoted tag: kept, matches nothing
    }
    out.emplace_back(v.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::optional<std::string> rawHeader(const Pistache::Http::Request& req, const std::string& name) {
  if (auto raw = req.headers().tryGetRaw(name)) return raw->value();
  return std::nullopt;
}

bool notModified(const Pistache::Http::Request& req, const std::string& etag) {
  auto header = rawHeader(req, "If-None-Match");
  if (!header) return false;
  for (const auto& tag : tagList(*header)) {
    if (tag == "*") return true;
    std::string_view t = tag;
    if (t.substr(0, 2) == "W/") t.remove_prefix(2);
    if (t == etag) return true;
  }
  return false;
}

std::optional<std::vector<std::string>> ifMatch(const Pistache::Http::Request& req) {
  auto header = rawHeader(req, "If-Match");
  if (!header) return std::nullopt;
  return tagList(*header);  // empty or only weak tags: matches nothing; "*": any version
}

std::optional<std::string> queryValue(const Pistache::Http::Request& req, const std::string& name,
                                      bool* bad) {
  auto v = req.query().get(name);
  if (!v) return std::nullopt;
  // '+' is a space in HTML forms' query strings.
  std::string raw = *v;
  for (char& c : raw) {
    if (c == '+') c = ' ';
  }
  auto decoded = percentDecode(raw);
  if (!decoded) *bad = true;
  return decoded;
}

std::optional<std::vector<std::string>> queryList(const Pistache::Http::Request& req,
                                                  const std::string& name, bool* bad) {
  auto v = req.query().get(name);
  if (!v) return std::nullopt;
  std::vector<std::string> out;
  std::string_view rest = *v;
  while (true) {
    const size_t comma = rest.find(',');
    auto piece = percentDecode(rest.substr(0, comma));
    if (!piece) {
      *bad = true;
      return std::nullopt;
    }
    if (!piece->empty()) out.push_back(std::move(*piece));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

std::string queryEncode(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

}  // namespace sluice::api
