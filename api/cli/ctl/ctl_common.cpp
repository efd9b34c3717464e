#include "api/cli/ctl/ctl_common.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "core/model/duration.hpp"

namespace sluice::cli::ctl {

Format parseFormat(const std::string& text) {
  if (text == "json") return Format::kJson;
  if (text == "yaml") return Format::kYaml;
  return Format::kTable;
}

std::string resolveServer(const std::string& flag) {
  if (!flag.empty()) return normalizeServerUrl(flag);
  // The server listens on $app_url by default: the client looks there too.
  const char* app_url = std::getenv("app_url");
  if (app_url != nullptr && *app_url != '\0') return normalizeServerUrl(app_url);
  return "http://127.0.0.1:5000";
}

std::unique_ptr<Client> makeClient(const Globals& g) {
  ClientOptions o;
  o.server = resolveServer(g.server);
  o.token = g.token;
  o.cacert = g.cacert;
  if (auto t = parseDuration(g.request_timeout); t && t->count() > 0) o.request_timeout = *t;
  return std::make_unique<Client>(std::move(o));
}

std::string scalarText(const rapidjson::Value& v, const std::string& fallback) {
  if (v.IsNull()) return fallback;
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsBool()) return v.GetBool() ? "true" : "false";
  return json::write(v);
}

std::string text(const rapidjson::Value& object, const char* key, const std::string& fallback) {
  if (!object.IsObject()) return fallback;
  auto m = object.FindMember(key);
  return m == object.MemberEnd() ? fallback : scalarText(m->value, fallback);
}

void printApiError(const Response& r, const std::string& what) {
  const std::string prefix =
      printable("error: " + (what.empty() ? "" : what + ": ") + std::to_string(r.status) + ": ");
  rapidjson::Document doc;
  json::ParseError err;
  if (!json::parse(r.body, doc, &err) || !doc.IsObject()) {
    std::string body = r.body.substr(0, 300);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    std::cerr << prefix << (body.empty() ? "(no body)" : printable(body)) << "\n";
    return;
  }
  const rapidjson::Value& body = doc;
  std::cerr << prefix << printable(text(body, "error", "(no error message)")) << "\n";
  auto details = body.FindMember("details");
  if (details == body.MemberEnd() || !details->value.IsArray()) return;
  for (const auto& d : details->value.GetArray()) {
    if (!d.IsObject()) continue;
    std::string where;
    if (const std::string id = text(d, "flow_id", ""); !id.empty()) where = "flow/" + id;
    if (const std::string path = text(d, "path", ""); !path.empty()) {
      where += (where.empty() ? "" : " ") + path;
    }
    if (where.empty()) {
      if (auto i = d.FindMember("index"); i != d.MemberEnd() && i->value.IsUint64()) {
        where = "item " + std::to_string(i->value.GetUint64());
      }
    }
    std::cerr << "  " << printable((where.empty() ? "" : where + ": ") + text(d, "message", ""))
              << "\n";
  }
}

std::optional<Response> call(Client& client, const std::string& method, const std::string& path,
                             std::initializer_list<long> ok, const std::string& body,
                             const std::vector<std::string>& headers, const std::string& what) {
  Outcome out = client.request(method, path, body, headers);
  if (!out.response) {
    std::cerr << "error: " << (what.empty() ? "" : what + ": ") << out.error << "\n";
    return std::nullopt;
  }
  for (long s : ok) {
    if (out.response->status == s) return std::move(out.response);
  }
  printApiError(*out.response, what);
  return std::nullopt;
}

bool parseBody(const Response& r, rapidjson::Document& doc) {
  json::ParseError err;
  if (json::parse(r.body, doc, &err)) return true;
  std::cerr << "error: the server's answer is not JSON (" << err.message << ")\n";
  return false;
}

std::string wholeSeconds(const std::string& iso_time) {
  const size_t dot = iso_time.find('.');
  if (dot == std::string::npos || iso_time.empty() || iso_time.back() != 'Z') return iso_time;
  return iso_time.substr(0, dot) + "Z";
}

std::string printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  char hex[8];
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
    } else if (c < 0x20 || c == 0x7F) {
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      std::snprintf(hex, sizeof hex, "\\u00%02X", static_cast<unsigned char>(s[++i]));
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool isAlreadyExistsProblem(const rapidjson::Value& problem) {
  return text(problem, "path", "") == "/flow_id" &&
         text(problem, "message", "").find("already exists") != std::string::npos;
}

std::string nowIso() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace sluice::cli::ctl
