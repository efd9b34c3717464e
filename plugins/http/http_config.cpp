#include "http_config.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <memory>
#include <sluice/sdk/duration.hpp>
#include <sluice/sdk/files.hpp>

namespace sluice::http_flow {

namespace {

constexpr std::array<std::string_view, 7> kMembers = {"url",     "method",        "headers", "body",
                                                      "timeout", "expect_status", "output"};
constexpr std::array<std::string_view, 6> kMethods = {"GET",   "POST",   "PUT",
                                                      "PATCH", "DELETE", "HEAD"};
constexpr std::chrono::milliseconds kMaxTimeout{86'400'000};  // one day

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool isTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string knownMembers() {
  std::string out;
  for (auto m : kMembers) {
    if (!out.empty()) out += ", ";
    out += m;
  }
  return out;
}

// The problem with an http(s) URL, or "" when there is none.
std::string urlProblem(std::string_view url) {
  for (unsigned char c : url) {
    if (c <= 0x20 || c == 0x7f) return "url must not contain spaces or control characters";
  }
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return "url must be an absolute http:// or https:// URL";
  }
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    return "url scheme '" + scheme + "' is not allowed: only http and https";
  }
  std::string_view authority = url.substr(sep + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "url has an unterminated IPv6 address";
    host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return "url has garbage after its IPv6 address";
      port = authority.substr(close + 2);
    }
  } else if (const size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return "url has no host";
  if (authority.size() > host.size()) {  // a ':' was there: a port must follow
    long value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535) return "url has an invalid port";
      value = value * 10 + (c - '0');
    }
    if (port.empty() || value < 1 || value > 65535) return "url has an invalid port";
  }
  // What libcurl will make of it, with its own parser.
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), &curl_url_cleanup);
  if (!handle) return "url cannot be checked: out of memory";
  const std::string text(url);
  if (CURLUcode rc = curl_url_set(handle.get(), CURLUPART_URL, text.c_str(), 0); rc != CURLUE_OK) {
    return std::string("url is not a valid URL: ") + curl_url_strerror(rc);
  }
  return "";
}

void parseHeaders(const sluice::sdk::Json& headers, HttpConfig* out,
                  std::vector<ConfigProblem>* problems) {
  if (!headers.isObject()) {
    problems->push_back({"/headers", "headers must be an object of header name to string value"});
    return;
  }
  for (const auto& [name, value] : headers.members()) {
    const std::string path = "/headers/" + sluice::sdk::pointerToken(name);
    bool ok = true;
    if (name.empty()) {
      problems->push_back({path, "header name must not be empty"});
      ok = false;
    } else {
      for (unsigned char c : name) {
        if (!isTokenChar(c)) {
          problems->push_back({path, "header name '" + name +
                                         "' may only contain letters, digits and "
                                         "!#$%&'*+-.^_`|~"});
          ok = false;
          break;
        }
      }
    }
    const std::string lname = lower(name);
    if (ok && (lname == "content-length" || lname == "transfer-encoding")) {
      problems->push_back({path, "header " + name + " is set by the request itself (from body)"});
      ok = false;
    }
    if (!value.isString()) {
      problems->push_back({path, "header value must be a string"});
      continue;
    }
    const std::string& text = value.asString();
    if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      problems->push_back({path, "header value must not contain CR, LF or NUL"});
      ok = false;
    }
    if (ok) out->headers.emplace_back(name, text);
  }
}

void parseExpectStatus(const sluice::sdk::Json& list, HttpConfig* out,
                       std::vector<ConfigProblem>* problems) {
  if (!list.isArray()) {
    problems->push_back({"/expect_status", "expect_status must be an array of HTTP statuses"});
    return;
  }
  if (list.items().empty()) {
    problems->push_back(
        {"/expect_status", "expect_status must not be empty (omit it for any 2xx)"});
    return;
  }
  for (size_t i = 0; i < list.items().size(); ++i) {
    const auto& item = list.items()[i];
    const std::string path = "/expect_status/" + std::to_string(i);
    if (!item.isInt()) {
      problems->push_back({path, "expect_status items must be integers"});
    } else if (item.asInt() < 100 || item.asInt() > 599) {
      problems->push_back({path, "expect_status items must be HTTP statuses 100..599, got " +
                                     std::to_string(item.asInt())});
    } else {
      out->expect_status.push_back(static_cast<long>(item.asInt()));
    }
  }
}

void parseTimeout(const sluice::sdk::Json& value, HttpConfig* out,
                  std::vector<ConfigProblem>* problems) {
  if (!value.isString()) {
    problems->push_back({"/timeout", "timeout must be a duration string such as \"10s\""});
    return;
  }
  const std::string& text = value.asString();
  const auto parsed = sluice::sdk::parseDuration(text);
  if (!parsed) {
    problems->push_back({"/timeout", "timeout \"" + text +
                                         "\" is not a duration: digits and a unit of ms, s, m, "
                                         "h or d, such as \"500ms\", \"10s\" or \"5m\""});
  } else if (parsed->count() < 1 || *parsed > kMaxTimeout) {
    problems->push_back({"/timeout", "timeout must be between 1ms and 1d, got \"" + text + "\""});
  } else {
    out->timeout = *parsed;
  }
}

// A string member, or a problem when it has another type.
const std::string* stringMember(const sluice::sdk::Config& config, const char* name,
                                std::vector<ConfigProblem>* problems) {
  const sluice::sdk::Json* v = config.find(name);
  if (v == nullptr) return nullptr;
  if (!v->isString()) {
    problems->push_back({std::string("/") + name, std::string(name) + " must be a string"});
    return nullptr;
  }
  return &v->asString();
}

}  // namespace

bool HttpConfig::expects(long status) const {
  if (expect_status.empty()) return status >= 200 && status <= 299;
  for (long s : expect_status) {
    if (s == status) return true;
  }
  return false;
}

std::string HttpConfig::expectedText() const {
  if (expect_status.empty()) return "2xx";
  std::string out;
  for (long s : expect_status) {
    if (!out.empty()) out += ", ";
    out += std::to_string(s);
  }
  return out;
}

std::string redactUrl(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::string(url);
  const size_t start = sep + 3;
  const size_t end = std::min(url.find_first_of("/?#", start), url.size());
  const size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  const size_t colon = url.substr(0, at).find(':', start);
  if (colon == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

void parseConfig(const sluice::sdk::Config& config, HttpConfig* out,
                 std::vector<ConfigProblem>* problems) {
  for (const auto& [name, value] : config.root().members()) {
    bool known = false;
    for (auto m : kMembers) known = known || m == name;
    if (!known) {
      problems->push_back({"/" + sluice::sdk::pointerToken(name),
                           "unknown member '" + name + "' (known: " + knownMembers() + ")"});
    }
  }

  if (!config.has("url")) {
    problems->push_back({"/url", "url is required"});
  } else if (const std::string* url = stringMember(config, "url", problems)) {
    if (std::string why = urlProblem(*url); !why.empty()) {
      problems->push_back({"/url", why});
    } else {
      out->url = *url;
    }
  }

  if (const std::string* method = stringMember(config, "method", problems)) {
    bool known = false;
    for (auto m : kMethods) known = known || m == *method;
    if (known) {
      out->method = *method;
    } else {
      problems->push_back({"/method",
                           "method must be one of GET, POST, PUT, PATCH, DELETE, "
                           "HEAD, got '" +
                               *method + "'"});
    }
  }

  if (const sluice::sdk::Json* headers = config.find("headers")) {
    parseHeaders(*headers, out, problems);
  }
  if (const std::string* body = stringMember(config, "body", problems)) {
    out->has_body = true;
    out->body = *body;
  }
  if (const sluice::sdk::Json* timeout = config.find("timeout")) {
    parseTimeout(*timeout, out, problems);
  }
  if (const sluice::sdk::Json* list = config.find("expect_status")) {
    parseExpectStatus(*list, out, problems);
  }
  if (const std::string* output = stringMember(config, "output", problems)) {
    if (std::string why = sluice::sdk::filesPathProblem(*output); !why.empty()) {
      problems->push_back({"/output", "output " + why});
    } else {
      out->output = *output;
    }
  }
}

}  // namespace sluice::http_flow
