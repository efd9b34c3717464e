// The reads of the seed's API: GET /flows, /flows/<id>, /flows/status, /flows/status/<id>.
// Each answers an ETag, and 304 with no body when If-None-Match still matches it. The lists
// page in creation order with ?limit=N&after=<flow_id> (a Link header names the next page)
// and filter with ?status= and ?type=; without parameters they answer as the seed does.
#include <cstdint>

#include "api/routes/conditional.hpp"
#include "api/routes/flow_routes.hpp"
#include "api/routes/responses.hpp"
#include "core/engine/engine.hpp"
#include "core/model/content_tag.hpp"

namespace sluice::api {

using namespace Pistache;
using http::ReplyPtr;

namespace {

constexpr uint64_t kMaxPageLimit = 10'000;

// Answers a document with its tag: 304 when the client has it already.
void sendTagged(const Http::Request& req, const ReplyPtr& r, const std::string& body,
                const std::string& etag) {
  r->header("ETag", etag);
  if (notModified(req, etag)) return r->send(304, "");
  r->send(200, body);
}

std::optional<State> stateNamed(std::string_view name) {
  for (State s : kAllStates) {
    if (toString(s) == name) return s;
  }
  return std::nullopt;
}

}  // namespace

void FlowHandlers::list(const Http::Request& req, const ReplyPtr& r) {
  const auto& q = req.query();
  if (q.has("limit") || q.has("after") || q.has("status") || q.has("type")) {
    return page(req, r, false);
  }
  auto doc = cache_->list();
  sendTagged(req, r, *doc->body, doc->etag);
}

void FlowHandlers::statusAll(const Http::Request& req, const ReplyPtr& r) {
  const auto& q = req.query();
  if (q.has("limit") || q.has("after") || q.has("status") || q.has("type")) {
    return page(req, r, true);
  }
  auto doc = cache_->status();
  const auto age = std::chrono::steady_clock::now() - doc->built;
  r->header("Age", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()));
  sendTagged(req, r, *doc->body, doc->etag);
}

void FlowHandlers::get(const std::string& id, const Http::Request& req, const ReplyPtr& r) {
  auto json = engine_.getJson(id);
  if (!json) return r->send(404, errorBody("flow '" + id + "' does not exist"));
  sendTagged(req, r, *json, contentTag(*json));
}

void FlowHandlers::statusOne(const std::string& id, const Http::Request& req, const ReplyPtr& r) {
  auto s = engine_.status(id);
  if (!s) return r->send(404, errorBody("flow '" + id + "' does not exist"));
  const std::string body = statusBody(*s);
  sendTagged(req, r, body, contentTag(body));
}

void FlowHandlers::page(const Http::Request& req, const ReplyPtr& r, bool status) {
  Engine::PageQuery query;
  bool bad = false;
  std::vector<Problem> problems;
  auto problem = [&](std::string message) {
    problems.push_back({std::nullopt, "", "", std::move(message)});
  };
  const std::string limit_rule =
      "limit must be a whole number from 1 to " + std::to_string(kMaxPageLimit);
  if (auto l = queryValue(req, "limit", &bad)) {
    uint64_t v = 0;
    const bool digits =
        !l->empty() && l->size() <= 6 && l->find_first_not_of("0123456789") == std::string::npos;
    if (digits) v = std::stoull(*l);
    if (!digits || v == 0 || v > kMaxPageLimit) {
      problem(limit_rule + ", not '" + *l + "'");
    } else {
      query.limit = static_cast<size_t>(v);
    }
  }
  query.after = queryValue(req, "after", &bad);
  if (auto st = queryValue(req, "status", &bad)) {
    query.status = stateNamed(*st);
    if (!query.status) {
      problem(
          "status must be one of stopped, starting, running, pausing, paused, resuming, "
          "stopping, failed, completed, not '" +
          *st + "'");
    }
  }
  query.type = queryValue(req, "type", &bad);
  if (bad) problem("malformed percent-encoding in the query string");
  if (!problems.empty()) {
    std::string message = problems.size() == 1
                              ? problems[0].message
                              : std::to_string(problems.size()) + " problems in the query string";
    return r->send(400, errorBody(message, problems));
  }

  std::string body;
  std::string last_id;
  bool more = false;
  if (status) {
    auto p = engine_.statusPage(query);
    if (!p.ok()) return r->send(400, errorBody(p.error().message));
    body = statusMapBody(p.value().items);
    more = p.value().more;
    if (!p.value().items.empty()) last_id = p.value().items.back().id;
  } else {
    auto p = engine_.recordsPage(query);
    if (!p.ok()) return r->send(400, errorBody(p.error().message));
    body = "[";
    for (size_t i = 0; i < p.value().items.size(); ++i) {
      if (i > 0) body += ',';
      body += p.value().items[i].second;
    }
    body += ']';
    more = p.value().more;
    if (!p.value().items.empty()) last_id = p.value().items.back().first;
  }
  if (more) {
    std::string next = status ? "/flows/status?" : "/flows?";
    next += "limit=" + std::to_string(query.limit) + "&after=" + queryEncode(last_id);
    if (query.status) next += "&status=" + std::string(toString(*query.status));
    if (query.type) next += "&type=" + queryEncode(*query.type);
    r->header("Link", "<" + next + ">; rel=\"next\"");
  }
  sendTagged(req, r, body, contentTag(body));
}

}  // namespace sluice::api
