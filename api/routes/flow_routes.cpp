// The handlers of the seed's API (and /plugins): each maps a request to an engine call and the
// result to a JSON response. Routing, authentication and the audit log are done before a
// handler runs (api_routes.cpp); framing, limits and timeouts by the edge (api/http/).
#include "api/routes/flow_routes.hpp"

#include <algorithm>

#include "api/routes/conditional.hpp"
#include "api/routes/plugin_routes.hpp"
#include "api/routes/responses.hpp"
#include "core/engine/engine.hpp"
#include "core/model/content_tag.hpp"
#include "core/model/json.hpp"

namespace sluice::api {

using namespace Pistache;
using http::ReplyPtr;

namespace {

void sendError(const ReplyPtr& r, const Error& e, NotFoundAs nf) {
  r->send(httpStatus(e.kind, nf), errorBody(e.message, e.details));
}

// Parses a request body; answers 400 itself and returns false on failure.
bool parseBody(const Http::Request& req, const ReplyPtr& r, rapidjson::Document& doc) {
  json::ParseError err;
  if (!json::parse(req.body(), doc, &err)) {
    r->send(400, parseErrorBody(err.message, err.offset));
    return false;
  }
  return true;
}

std::string flowIdOf(const rapidjson::Value& v) {
  if (v.IsObject()) {
    auto it = v.FindMember("flow_id");
    if (it != v.MemberEnd() && it->value.IsString()) {
      return std::string(it->value.GetString(), it->value.GetStringLength());
    }
  }
  return "";
}

// Shape-checks every element of a POST /flows body. Returns the specs of the valid elements with
// their index; appends the problems of the others.
std::vector<std::pair<size_t, FlowSpec>> parseBatch(const rapidjson::Value& arr,
                                                    std::vector<Problem>& problems) {
  std::vector<std::pair<size_t, FlowSpec>> specs;
  for (rapidjson::SizeType i = 0; i < arr.Size(); ++i) {
    FlowSpec spec;
    std::vector<Problem> mine;
    if (parseFlowSpec(arr[i], "", &spec, mine)) {
      specs.emplace_back(i, std::move(spec));
    } else {
      std::string id = flowIdOf(arr[i]);
      for (auto& p : mine) {
        p.index = i;
        p.flow_id = id;
        problems.push_back(std::move(p));
      }
    }
  }
  return specs;
}

// Problems of the valid elements against the engine (types, configs, duplicates, existing ids),
// with indexes mapped back to the request's.
std::vector<Problem> engineProblems(Engine& engine,
                                    const std::vector<std::pair<size_t, FlowSpec>>& specs) {
  std::vector<FlowSpec> only;
  only.reserve(specs.size());
  for (const auto& s : specs) only.push_back(s.second);
  auto problems = engine.validate(only);
  for (auto& p : problems) {
    if (p.index) p.index = specs[*p.index].first;
  }
  return problems;
}

void mergeByIndex(std::vector<Problem>& a, std::vector<Problem> b) {
  a.insert(a.end(), b.begin(), b.end());
  std::stable_sort(a.begin(), a.end(), [](const Problem& x, const Problem& y) {
    return x.index.value_or(0) < y.index.value_or(0);
  });
}

std::string problemsSummary(const std::vector<Problem>& problems, const char* what) {
  if (problems.size() == 1) {
    const Problem& p = problems[0];
    std::string prefix = p.index ? "element " + std::to_string(*p.index) + ": " : "";
    return prefix + p.message;
  }
  return std::to_string(problems.size()) + " problems in the request; " + what;
}

// Parses a body that must be an array of configurations; answers 400 itself when it is not.
bool parseArrayBody(const Http::Request& req, const ReplyPtr& r, rapidjson::Document& doc) {
  if (!parseBody(req, r, doc)) return false;
  if (doc.IsArray()) return true;
  r->send(400, errorBody("request body must be a JSON array of configuration objects"));
  return false;
}

}  // namespace

std::vector<std::string> flowIdsInBody(const Http::Request& req) {
  std::vector<std::string> ids;
  rapidjson::Document doc;
  if (!json::parse(req.body(), doc, nullptr)) return ids;
  if (doc.IsArray()) {  // POST /flows
    for (const auto& v : doc.GetArray()) {
      if (auto id = flowIdOf(v); !id.empty()) ids.push_back(std::move(id));
    }
  } else if (doc.IsObject()) {  // PATCH /flows/commands
    auto it = doc.FindMember("flow_ids");
    if (it != doc.MemberEnd() && it->value.IsArray()) {
      for (const auto& v : it->value.GetArray()) {
        if (v.IsString()) ids.emplace_back(v.GetString(), v.GetStringLength());
      }
    }
  }
  return ids;
}

void FlowHandlers::create(const Http::Request& req, const ReplyPtr& r, const AuditPtr& audit) {
  rapidjson::Document doc;
  if (!parseArrayBody(req, r, doc)) return;
  std::vector<Problem> problems;
  if (audit) {
    for (const auto& v : doc.GetArray()) {
      if (auto id = flowIdOf(v); !id.empty()) audit->entry.flow_ids.push_back(std::move(id));
    }
    audit->entry.status = 201;  // what the entry says when the insert's transaction stores it
  }
  auto specs = parseBatch(doc, problems);
  if (!problems.empty()) {
    // Report every problem: the valid elements are still checked against the engine.
    mergeByIndex(problems, engineProblems(engine_, specs));
    return r->send(400, errorBody(problemsSummary(problems, "nothing was added"), problems));
  }
  std::vector<FlowSpec> only;
  only.reserve(specs.size());
  for (auto& s : specs) only.push_back(std::move(s.second));
  auto created = engine_.create(std::move(only), audit);
  if (!created.ok()) {
    Error e = created.error();
    if (e.kind == ErrorKind::kInvalid) e.message = problemsSummary(e.details, "nothing was added");
    return sendError(r, e, NotFoundAs::k400);
  }
  r->send(201, createdBody(created.value()));
}

void FlowHandlers::validate(const Http::Request& req, const ReplyPtr& r) {
  rapidjson::Document doc;
  if (!parseArrayBody(req, r, doc)) return;
  std::vector<Problem> problems;
  auto specs = parseBatch(doc, problems);
  mergeByIndex(problems, engineProblems(engine_, specs));
  r->send(200, validateBody(problems));
}

void FlowHandlers::put(const std::string& id, const Http::Request& req, const ReplyPtr& r,
                       const AuditPtr& audit) {
  rapidjson::Document doc;
  if (!parseBody(req, r, doc)) return;
  if (!doc.IsObject()) {
    return r->send(400, errorBody("request body must be a JSON configuration object"));
  }
  FlowSpec spec;
  std::vector<Problem> problems;
  if (!parseFlowSpec(doc, id, &spec, problems)) {
    for (auto& p : problems) p.flow_id = id;
    return r->send(400, errorBody(problemsSummary(problems, "nothing was changed"), problems));
  }
  if (audit) audit->entry.status = 200;
  engine_.update(
      std::move(spec),
      [r](Result<std::string> result) {
        if (!result.ok()) return sendError(r, result.error(), NotFoundAs::k400);
        // The handler's thread is done with the reply: this thread alone adds the header.
        r->header("ETag", contentTag(result.value()));
        r->send(200, result.value());
      },
      audit, ifMatch(req));
}

void FlowHandlers::remove(const std::string& id, const Http::Request& req, const ReplyPtr& r,
                          const AuditPtr& audit) {
  // ?force=true deletes a flow others list in runtime.after (they then wait for nothing).
  bool bad = false;
  bool force = false;
  if (auto f = queryValue(req, "force", &bad); f && !bad) {
    if (*f != "true" && *f != "false") {
      return r->send(
          400, errorBody("invalid query string: force must be true or false, not '" + *f + "'",
                         {{std::nullopt, "", "", "force must be true or false"}}));
    }
    force = *f == "true";
  }
  if (bad) return r->send(400, errorBody("invalid query string: malformed percent-encoding"));
  if (audit) audit->entry.status = 200;
  engine_.remove(
      id,
      [r, id](Result<Outcome> result) {
        if (!result.ok()) return sendError(r, result.error(), NotFoundAs::k400);
        r->send(200, deletedBody(id, result.value()));
      },
      audit, ifMatch(req), force);
}

void FlowHandlers::command(const Http::Request& req, const ReplyPtr& r, const AuditPtr& audit) {
  rapidjson::Document doc;
  if (!parseBody(req, r, doc)) return;
  if (!doc.IsObject()) {
    return r->send(400, errorBody("request body must be a JSON object with a command"));
  }
  std::vector<Problem> problems;
  auto problem = [&](const char* path, std::string msg) {
    problems.push_back({std::nullopt, "", path, std::move(msg)});
  };
  CommandRequest request;
  bool upgrade = false;  // plugin versions: api/routes/plugin_routes
  auto c = doc.FindMember("command");
  if (c == doc.MemberEnd()) {
    problem("/command", "command is required (start, stop, pause, resume or upgrade)");
  } else if (!c->value.IsString()) {
    problem("/command", "command must be a string (start, stop, pause, resume or upgrade)");
  } else if (auto cmd = commandFromString(
                 std::string_view(c->value.GetString(), c->value.GetStringLength()))) {
    request.command = *cmd;
  } else if (std::string_view(c->value.GetString(), c->value.GetStringLength()) == "upgrade") {
    upgrade = true;
  } else {
    problem("/command", "unknown command \"" +
                            std::string(c->value.GetString(), c->value.GetStringLength()) +
                            "\" (expected start, stop, pause, resume or upgrade)");
  }
  auto ids = doc.FindMember("flow_ids");
  if (ids != doc.MemberEnd()) {
    if (!ids->value.IsArray()) {
      problem("/flow_ids", "flow_ids must be an array of strings");
    } else {
      std::vector<std::string> list;
      for (rapidjson::SizeType i = 0; i < ids->value.Size(); ++i) {
        const auto& v = ids->value[i];
        if (!v.IsString()) {
          problems.push_back(
              {i, "", "/flow_ids/" + std::to_string(i), "flow_ids must contain only strings"});
        } else {
          list.emplace_back(v.GetString(), v.GetStringLength());
        }
      }
      if (audit) audit->entry.flow_ids = list;
      request.flow_ids = std::move(list);
    }
  }
  auto type = doc.FindMember("type");
  if (type != doc.MemberEnd()) {
    if (!type->value.IsInt() || (type->value.GetInt() != 0 && type->value.GetInt() != 1)) {
      problem("/type", "type must be the integer 0 (soft stop) or 1 (hard stop)");
    } else {
      request.mode = type->value.GetInt() == 1 ? StopMode::kHard : StopMode::kSoft;
    }
  }
  if (!problems.empty()) {
    return r->send(400, errorBody(problemsSummary(problems, "no flow was changed"), problems));
  }
  if (upgrade) {
    if (doc.HasMember("type")) {
      return r->send(400, errorBody("type (the stop mode) applies to stop only; upgrade stops "
                                    "softly and rolls back on failure; no flow was changed"));
    }
    return upgradeFlows(engine_, request.flow_ids, r);
  }
  const Command cmd = request.command;
  if (audit) audit->entry.status = 200;
  engine_.command(
      request,
      [r, cmd](Result<std::vector<CommandDetail>> result) {
        if (!result.ok()) return sendError(r, result.error(), NotFoundAs::k400);
        r->send(200, commandBody(cmd, result.value()));
      },
      audit);
}

}  // namespace sluice::api
