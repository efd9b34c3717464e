// GET /flows/<id>/logs?tail=N: the last N lines of a flow's log (what its work wrote: an exec
// flow's stdout and stderr). JSON by default; plain text lines with Accept: text/plain.
#include <pistache/http_headers.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>

#include "api/routes/conditional.hpp"
#include "api/routes/flow_routes.hpp"
#include "api/routes/responses.hpp"
#include "core/engine/engine.hpp"

namespace sluice::api {

using namespace Pistache;
using http::ReplyPtr;

namespace {

constexpr uint64_t kDefaultTail = 100;
constexpr uint64_t kMaxTail = 10'000;

bool wantsText(const Http::Request& req) {
  const auto accept = req.headers().tryGetRaw("Accept");
  if (!accept) return false;
  const std::string& v = accept->value();
  return v.find("text/plain") != std::string::npos &&
         v.find("application/json") == std::string::npos;
}

}  // namespace

void FlowHandlers::logs(const std::string& id, const Http::Request& req, const ReplyPtr& r) {
  bool bad = false;
  uint64_t tail = kDefaultTail;
  const std::string rule = "tail must be a whole number from 1 to " + std::to_string(kMaxTail);
  if (auto t = queryValue(req, "tail", &bad)) {
    const bool digits =
        !t->empty() && t->size() <= 6 && t->find_first_not_of("0123456789") == std::string::npos;
    tail = digits ? std::stoull(*t) : 0;
    if (tail == 0 || tail > kMaxTail) {
      return r->send(400, errorBody("invalid query string: " + rule + ", not '" + *t + "'",
                                    {{std::nullopt, "", "", rule}}));
    }
  }
  if (bad) {
    return r->send(400, errorBody("invalid query string: malformed percent-encoding"));
  }
  auto lines = engine_.logs(id, static_cast<size_t>(tail));
  if (!lines.ok()) {
    const int code = lines.error().kind == ErrorKind::kNotFound ? 404 : 500;
    return r->send(code, errorBody(lines.error().message));
  }
  if (wantsText(req)) {
    std::string body;
    for (const LogLine& l : lines.value()) {
      body += l.time + ' ' + l.stream + ' ' + l.text + '\n';
    }
    r->contentType("text/plain; charset=utf-8");
    return r->send(200, body);
  }
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  w.Key("flow_id");
  w.String(id.c_str(), static_cast<rapidjson::SizeType>(id.size()));
  w.Key("lines");
  w.StartArray();
  for (const LogLine& l : lines.value()) {
    w.StartObject();
    w.Key("time");
    w.String(l.time.c_str(), static_cast<rapidjson::SizeType>(l.time.size()));
    w.Key("stream");
    w.String(l.stream.c_str(), static_cast<rapidjson::SizeType>(l.stream.size()));
    w.Key("text");
    w.String(l.text.c_str(), static_cast<rapidjson::SizeType>(l.text.size()));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  r->send(200, std::string(out.GetString(), out.GetSize()));
}

}  // namespace sluice::api
