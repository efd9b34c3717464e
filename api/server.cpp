#include "server.hpp"

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "core/engine/engine.hpp"
#include "core/model/json.hpp"
#include "percent.hpp"
#include "responses.hpp"

namespace sluice {

using namespace Pistache;

// Shared by every clone of the handler (Pistache clones it per I/O thread).
class ApiState {
 public:
  ApiState(Engine& engine, const ServerOptions& options) : engine(engine), options(options) {}

  Engine& engine;
  const ServerOptions options;
  std::atomic<bool> draining{false};

  void enter() {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  void leave() {
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) cv_.notify_all();
  }
  bool waitIdle(std::chrono::milliseconds bound) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, bound, [&] { return in_flight_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t in_flight_ = 0;  // guarded by mu_
};

namespace {

// One response, sent exactly once, from any thread (Pistache queues the write to the
// connection's I/O thread). A reply dropped without being sent answers 500.
class Reply {
 public:
  Reply(Http::ResponseWriter writer, std::shared_ptr<ApiState> state)
      : writer_(std::move(writer)), state_(std::move(state)) {
    state_->enter();
  }
  ~Reply() {
    if (!sent_) send(500, api::errorBody("internal error: the request was not answered"));
  }
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  void send(int code, const std::string& body, const std::vector<Http::Method>& allow = {}) {
    if (sent_) return;
    sent_ = true;
    try {
      writer_.headers().add<Http::Header::ContentType>(MIME(Application, Json));
      if (!allow.empty()) writer_.headers().add<Http::Header::Allow>(allow);
      writer_.send(static_cast<Http::Code>(code), body);
    } catch (const std::exception& e) {
      spdlog::warn("cannot send response: {}", e.what());
    }
    state_->leave();
  }

 private:
  Http::ResponseWriter writer_;
  std::shared_ptr<ApiState> state_;
  bool sent_ = false;
};

using ReplyPtr = std::shared_ptr<Reply>;

void sendError(const ReplyPtr& r, const Error& e, api::NotFoundAs nf) {
  r->send(api::httpStatus(e.kind, nf), api::errorBody(e.message, e.details));
}

// Parses a request body; answers 400 itself and returns false on failure.
bool parseBody(const Http::Request& req, const ReplyPtr& r, rapidjson::Document& doc) {
  json::ParseError err;
  if (!json::parse(req.body(), doc, &err)) {
    r->send(400, api::parseErrorBody(err.message, err.offset));
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

class ApiHandler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(ApiHandler)

  explicit ApiHandler(std::shared_ptr<ApiState> state) : state_(std::move(state)) {}

  void onRequest(const Http::Request& req, Http::ResponseWriter writer) override {
    auto reply = std::make_shared<Reply>(std::move(writer), state_);
    try {
      route(req, reply);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", Http::methodString(req.method()), req.resource(), e.what());
      reply->send(500, api::errorBody(std::string("internal error: ") + e.what()));
    }
  }

 private:
  Engine& engine() { return state_->engine; }

  void route(const Http::Request& req, const ReplyPtr& r) {
    if (state_->draining) {
      r->send(503, api::errorBody("the server is shutting down"));
      return;
    }
    if (req.body().size() > state_->options.max_body_bytes) {
      r->send(413, api::errorBody("request body of " + std::to_string(req.body().size()) +
                                  " bytes is over the limit of " +
                                  std::to_string(state_->options.max_body_bytes) + " bytes"));
      return;
    }
    // Split the raw path, then decode each segment: an escaped '/' stays inside its segment.
    std::string_view path = req.resource();
    std::vector<std::string> seg;
    size_t pos = 0;
    while (pos < path.size()) {
      if (path[pos] == '/') {
        ++pos;
        continue;
      }
      size_t end = path.find('/', pos);
      if (end == std::string_view::npos) end = path.size();
      auto decoded = api::percentDecode(path.substr(pos, end - pos));
      if (!decoded) {
        r->send(400, api::errorBody("malformed percent-encoding in the path"));
        return;
      }
      seg.push_back(std::move(*decoded));
      pos = end;
    }
    const Http::Method m = req.method();
    using M = Http::Method;
    auto allow = [&](const std::vector<M>& methods) {
      std::string names;
      for (M x : methods) names += std::string(names.empty() ? "" : ", ") + Http::methodString(x);
      r->send(
          405,
          api::errorBody("method " + std::string(Http::methodString(m)) + " is not allowed on " +
                         std::string(path) + " (allowed: " + names + ")"),
          methods);
    };
    if (seg.size() == 1 && seg[0] == "flows") {
      if (m == M::Get) return listFlows(r);
      if (m == M::Post) return createFlows(req, r);
      return allow({M::Get, M::Post});
    }
    if (seg.size() == 2 && seg[0] == "flows") {
      if (seg[1] == "status") {
        if (m == M::Get) return statusAll(r);
        return allow({M::Get});
      }
      if (seg[1] == "commands") {
        if (m == M::Patch) return command(req, r);
        return allow({M::Patch});
      }
      if (seg[1] == "validate") {
        if (m == M::Post) return validateFlows(req, r);
        return allow({M::Post});
      }
      if (m == M::Get) return getFlow(seg[1], r);
      if (m == M::Put) return putFlow(seg[1], req, r);
      if (m == M::Delete) return deleteFlow(seg[1], r);
      return allow({M::Get, M::Put, M::Delete});
    }
    if (seg.size() == 3 && seg[0] == "flows" && seg[1] == "status") {
      if (m == M::Get) return statusOne(seg[2], r);
      return allow({M::Get});
    }
    if (seg.size() == 1 && seg[0] == "plugins") {
      if (m == M::Get) {
        return r->send(
            200, api::pluginsBody(engine().plugins().plugins(), engine().plugins().refused()));
      }
      return allow({M::Get});
    }
    r->send(404, api::errorBody("no such resource: " + std::string(path)));
  }

  void listFlows(const ReplyPtr& r) { r->send(200, *engine().listJson()); }

  void getFlow(const std::string& id, const ReplyPtr& r) {
    auto json = engine().getJson(id);
    if (!json) return r->send(404, api::errorBody("flow '" + id + "' does not exist"));
    r->send(200, *json);
  }

  void statusAll(const ReplyPtr& r) { r->send(200, api::statusMapBody(engine().statusAll())); }

  void statusOne(const std::string& id, const ReplyPtr& r) {
    auto s = engine().status(id);
    if (!s) return r->send(404, api::errorBody("flow '" + id + "' does not exist"));
    r->send(200, api::statusBody(*s));
  }

  void createFlows(const Http::Request& req, const ReplyPtr& r) {
    rapidjson::Document doc;
    if (!parseBody(req, r, doc)) return;
    if (!doc.IsArray()) {
      return r->send(400,
                     api::errorBody("request body must be a JSON array of configuration objects"));
    }
    std::vector<Problem> problems;
    auto specs = parseBatch(doc, problems);
    if (!problems.empty()) {
      // Report every problem: the valid elements are still checked against the engine.
      mergeByIndex(problems, engineProblems(engine(), specs));
      return r->send(400, api::errorBody(problemsSummary(problems, "nothing was added"), problems));
    }
    std::vector<FlowSpec> only;
    only.reserve(specs.size());
    for (auto& s : specs) only.push_back(std::move(s.second));
    auto created = engine().create(std::move(only));
    if (!created.ok()) {
      Error e = created.error();
      if (e.kind == ErrorKind::kInvalid)
        e.message = problemsSummary(e.details, "nothing was added");
      return sendError(r, e, api::NotFoundAs::k400);
    }
    r->send(201, api::createdBody(created.value()));
  }

  void validateFlows(const Http::Request& req, const ReplyPtr& r) {
    rapidjson::Document doc;
    if (!parseBody(req, r, doc)) return;
    if (!doc.IsArray()) {
      return r->send(400,
                     api::errorBody("request body must be a JSON array of configuration objects"));
    }
    std::vector<Problem> problems;
    auto specs = parseBatch(doc, problems);
    mergeByIndex(problems, engineProblems(engine(), specs));
    r->send(200, api::validateBody(problems));
  }

  void putFlow(const std::string& id, const Http::Request& req, const ReplyPtr& r) {
    rapidjson::Document doc;
    if (!parseBody(req, r, doc)) return;
    if (!doc.IsObject()) {
      return r->send(400, api::errorBody("request body must be a JSON configuration object"));
    }
    FlowSpec spec;
    std::vector<Problem> problems;
    if (!parseFlowSpec(doc, id, &spec, problems)) {
      for (auto& p : problems) p.flow_id = id;
      return r->send(400,
                     api::errorBody(problemsSummary(problems, "nothing was changed"), problems));
    }
    engine().update(std::move(spec), [r](Result<std::string> result) {
      if (!result.ok()) return sendError(r, result.error(), api::NotFoundAs::k400);
      r->send(200, result.value());
    });
  }

  void deleteFlow(const std::string& id, const ReplyPtr& r) {
    engine().remove(id, [r, id](Result<Outcome> result) {
      if (!result.ok()) return sendError(r, result.error(), api::NotFoundAs::k400);
      r->send(200, api::deletedBody(id, result.value()));
    });
  }

  void command(const Http::Request& req, const ReplyPtr& r) {
    rapidjson::Document doc;
    if (!parseBody(req, r, doc)) return;
    if (!doc.IsObject()) {
      return r->send(400, api::errorBody("request body must be a JSON object with a command"));
    }
    std::vector<Problem> problems;
    auto problem = [&](const char* path, std::string msg) {
      problems.push_back({std::nullopt, "", path, std::move(msg)});
    };
    CommandRequest request;
    auto c = doc.FindMember("command");
    if (c == doc.MemberEnd()) {
      problem("/command", "command is required (start, stop, pause or resume)");
    } else if (!c->value.IsString()) {
      problem("/command", "command must be a string (start, stop, pause or resume)");
    } else if (auto cmd = commandFromString(
                   std::string_view(c->value.GetString(), c->value.GetStringLength()))) {
      request.command = *cmd;
    } else {
      problem("/command", "unknown command \"" +
                              std::string(c->value.GetString(), c->value.GetStringLength()) +
                              "\" (expected start, stop, pause or resume)");
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
      return r->send(400,
                     api::errorBody(problemsSummary(problems, "no flow was changed"), problems));
    }
    const Command cmd = request.command;
    engine().command(request, [r, cmd](Result<std::vector<CommandDetail>> result) {
      if (!result.ok()) return sendError(r, result.error(), api::NotFoundAs::k400);
      r->send(200, api::commandBody(cmd, result.value()));
    });
  }

  std::shared_ptr<ApiState> state_;
};

}  // namespace

struct Server::Impl {
  std::shared_ptr<ApiState> state;
  std::unique_ptr<Http::Endpoint> endpoint;
  bool stopped = false;
};

Server::Server(Engine& engine, const ServerOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->state = std::make_shared<ApiState>(engine, options);
  Address addr(options.host, Port(options.port));
  impl_->endpoint = std::make_unique<Http::Endpoint>(addr);
  // Pistache limits the whole request (headers included) and answers a plain-text 413 past its
  // limit. Its limit is twice ours (plus room for headers), so that a body somewhat over
  // --max-body-bytes still gets our JSON 413; only grossly oversized requests get Pistache's.
  auto opts = Http::Endpoint::options()
                  .threads(options.threads)
                  .flags(Tcp::Options::ReuseAddr)
                  .maxRequestSize(2 * options.max_body_bytes + size_t{64} * 1024)
                  .maxResponseSize(size_t{256} * 1024 * 1024);
  impl_->endpoint->init(opts);
  impl_->endpoint->setHandler(Http::make_handler<ApiHandler>(impl_->state));
  impl_->endpoint->serveThreaded();
}

Server::~Server() {
  if (!impl_->stopped) drainAndStop(5000);
}

uint16_t Server::port() const { return static_cast<uint16_t>(impl_->endpoint->getPort()); }

void Server::drainAndStop(uint32_t bound_ms) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->state->draining = true;
  if (!impl_->state->waitIdle(std::chrono::milliseconds(bound_ms))) {
    spdlog::warn("requests still in flight after {} ms; shutting down anyway", bound_ms);
  }
  impl_->endpoint->shutdown();
  impl_->endpoint.reset();
}

}  // namespace sluice
