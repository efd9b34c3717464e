#include "api/routes/admin_routes.hpp"

#include <ctime>

#include "api/routes/responses.hpp"
#include "core/model/duration.hpp"
#include "core/model/json.hpp"

namespace sluice::api {

using namespace Pistache;
using http::ReplyPtr;

namespace {

constexpr size_t kDefaultAuditLimit = 100;
constexpr size_t kMaxAuditLimit = 1000;

void str(std::string& out, const char* key, std::string_view value, bool first = false) {
  if (!first) out += ',';
  json::appendString(out, key);
  out += ':';
  json::appendString(out, value);
}

std::optional<uint64_t> parseCount(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

std::string isoTime(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string tokenJson(const TokenRecord& t, int64_t now_ms, const std::string& secret) {
  std::string out = "{";
  str(out, "name", t.name, true);
  str(out, "role", t.role);
  str(out, "created", isoTime(t.created_ms));
  out += ",\"expires\":";
  if (t.expires_ms) {
    json::appendString(out, isoTime(*t.expires_ms));
  } else {
    out += "null";
  }
  out += ",\"expired\":";
  out += t.expires_ms && *t.expires_ms <= now_ms ? "true" : "false";
  if (!secret.empty()) str(out, "token", secret);
  return out + "}";
}

void AdminHandlers::listTokens(const ReplyPtr& r) {
  auto tokens = book_.live();
  if (!tokens.ok()) return r->send(500, errorBody(tokens.error().message));
  const int64_t now = auth::nowMs();
  std::string out = "[";
  for (size_t i = 0; i < tokens.value().size(); ++i) {
    if (i > 0) out += ',';
    out += tokenJson(tokens.value()[i], now);
  }
  r->send(200, out + "]");
}

void AdminHandlers::createToken(const Http::Request& req, const ReplyPtr& r,
                                const AuditPtr& audit) {
  rapidjson::Document doc;
  json::ParseError err;
  if (!json::parse(req.body(), doc, &err))
    return r->send(400, parseErrorBody(err.message, err.offset));
  if (!doc.IsObject()) {
    return r->send(400, errorBody("request body must be a JSON object: "
                                  "{\"name\": ..., \"role\": ..., \"expires\": \"30d\"}"));
  }
  std::vector<Problem> problems;
  auto problem = [&](const char* path, std::string msg) {
    problems.push_back({std::nullopt, "", path, std::move(msg)});
  };
  std::string name;
  std::optional<auth::Role> role;
  std::optional<std::chrono::milliseconds> ttl;
  for (const auto& m : doc.GetObject()) {
    const std::string key(m.name.GetString(), m.name.GetStringLength());
    if (key == "name") {
      if (!m.value.IsString()) {
        problem("/name", "name must be a string");
      } else {
        name.assign(m.value.GetString(), m.value.GetStringLength());
        if (auto why = auth::nameProblem(name); !why.empty()) problem("/name", why);
      }
    } else if (key == "role") {
      role = m.value.IsString()
                 ? auth::parseRole(std::string_view(m.value.GetString(), m.value.GetStringLength()))
                 : std::nullopt;
      if (!role) problem("/role", "role must be one of viewer, operator, editor, admin");
    } else if (key == "expires") {
      if (m.value.IsNull()) continue;
      ttl = m.value.IsString()
                ? parseDuration(std::string_view(m.value.GetString(), m.value.GetStringLength()))
                : std::nullopt;
      if (!ttl || ttl->count() <= 0) {
        problem("/expires", "expires must be a positive duration such as \"12h\" or \"30d\"");
      }
    } else {
      problem("", "unknown member \"" + key + "\" (expected name, role, expires)");
    }
  }
  if (doc.FindMember("name") == doc.MemberEnd()) problem("/name", "name is required");
  if (doc.FindMember("role") == doc.MemberEnd()) problem("/role", "role is required");
  if (!problems.empty()) {
    std::string msg = problems.size() == 1 ? problems[0].message
                                           : std::to_string(problems.size()) +
                                                 " problems in the request; no token was created";
    return r->send(400, errorBody(msg, problems));
  }
  if (audit) {
    audit->entry.status = 201;
    audit->entry.detail = "token " + name + " (" + std::string(auth::roleName(*role)) + ")";
  }
  const int64_t now = auth::nowMs();
  auto issued = book_.issue(name, *role, ttl, now, audit.get());
  if (!issued.ok()) {
    return r->send(httpStatus(issued.error().kind, NotFoundAs::k404),
                   errorBody(issued.error().message, issued.error().details));
  }
  r->send(201, tokenJson(issued.value().record, now, issued.value().secret));
}

void AdminHandlers::revokeToken(const std::string& name, const ReplyPtr& r, const AuditPtr& audit) {
  if (audit) {
    audit->entry.status = 200;
    audit->entry.detail = "token " + name;
  }
  auto done = book_.revoke(name, auth::nowMs(), audit.get());
  if (!done.ok()) {
    return r->send(httpStatus(done.error().kind, NotFoundAs::k404),
                   errorBody(done.error().message));
  }
  std::string out = "{";
  str(out, "status", "Token revoked", true);
  str(out, "name", name);
  r->send(200, out + "}");
}

void AdminHandlers::audit(const Http::Request& req, const ReplyPtr& r) {
  uint64_t after = 0;
  size_t limit = kDefaultAuditLimit;
  if (auto a = req.query().get("after")) {
    auto v = parseCount(*a);
    if (!v) return r->send(400, errorBody("after must be a sequence number (0 or more)"));
    after = *v;
  }
  if (auto l = req.query().get("limit")) {
    auto v = parseCount(*l);
    if (!v || *v == 0 || *v > kMaxAuditLimit) {
      return r->send(
          400, errorBody("limit must be a number from 1 to " + std::to_string(kMaxAuditLimit)));
    }
    limit = static_cast<size_t>(*v);
  }
  auto entries = store_.listAudit(after, limit);
  if (!entries.ok()) return r->send(500, errorBody(entries.error().message));
  std::string out = "[";
  for (size_t i = 0; i < entries.value().size(); ++i) {
    const AuditEntry& e = entries.value()[i];
    if (i > 0) out += ',';
    out += "{\"seq\":" + std::to_string(e.seq);
    str(out, "time", isoTime(e.time_ms));
    str(out, "token", e.token);
    str(out, "role", e.role);
    str(out, "remote", e.remote);
    str(out, "method", e.method);
    str(out, "path", e.path);
    out += ",\"flow_ids\":[";
    for (size_t k = 0; k < e.flow_ids.size(); ++k) {
      if (k > 0) out += ',';
      json::appendString(out, e.flow_ids[k]);
    }
    out += "],\"status\":" + std::to_string(e.status) + ",\"error\":";
    if (e.error.empty()) {
      out += "null";
    } else {
      json::appendString(out, e.error);
    }
    out += ",\"detail\":";
    if (e.detail.empty()) {
      out += "null";
    } else {
      json::appendString(out, e.detail);
    }
    out += '}';
  }
  out += ']';
  if (entries.value().size() == limit) {
    r->header("Link", "</audit?after=" + std::to_string(entries.value().back().seq) +
                          "&limit=" + std::to_string(limit) + ">; rel=\"next\"");
  }
  r->send(200, out);
}

}  // namespace sluice::api
