#include "api/routes/api_routes.hpp"

#include <arpa/inet.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "api/routes/admin_routes.hpp"
#include "api/routes/flow_routes.hpp"
#include "api/routes/observe_routes.hpp"
#include "api/routes/percent.hpp"
#include "api/routes/plugin_routes.hpp"
#include "api/routes/responses.hpp"
#include "api/ui/console_routes.hpp"
#include "core/engine/engine.hpp"
#include "core/model/json.hpp"

namespace sluice::api {

using namespace Pistache;
using auth::Role;
using http::ReplyPtr;

namespace {

using M = Http::Method;

/// A matched route: the role it needs, and what runs once the request is admitted.
struct Route {
  const char* tmpl = "other";  // the route's template: the metrics' route label
  bool open = false;           // served without authentication (health, the API document)
  Role needs = Role::kViewer;
  std::vector<std::string> flow_ids;  // for the audit entry
  bool ids_in_body = false;           // a refusal's entry takes them from the body
  std::function<void(const AuditPtr&)> run;
  std::function<void(const auth::Principal&)> run_as;  // instead of run: needs who asks
};

bool mutating(M m) { return m == M::Post || m == M::Put || m == M::Patch || m == M::Delete; }

class ApiRoutes : public http::EdgeHandler {
 public:
  HTTP_PROTOTYPE(ApiRoutes)

  ApiRoutes(Engine& engine, std::shared_ptr<auth::AccessControl> access,
            std::shared_ptr<Observability> observability,
            std::shared_ptr<http::EdgeContext> context,
            std::shared_ptr<const ui::ConsoleAssets> console)
      : EdgeHandler(context),
        engine_(engine),
        access_(std::move(access)),
        console_(std::move(console)),
        observability_(observability),
        flows_(engine, observability->cache),
        admin_(access_->book, engine.store()),
        observe_(engine, observability,
                 [in_flight = context->in_flight] { return in_flight->draining.load(); }) {}

  bool servesWhileDraining(const Http::Request& req) const override {
    return req.method() == M::Get && (req.resource() == "/healthz" || req.resource() == "/readyz");
  }

  void handle(const Http::Request& req, std::optional<std::string_view> authorization,
              const ReplyPtr& r) override {
    Route route = resolve(req, r);
    r->onSent([http = observability_->http, method = req.method(), tmpl = route.tmpl,
               started = std::chrono::steady_clock::now()](int code) {
      http->record(
          Http::methodString(method), tmpl, code,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    });
    if (route.open) return route.run(nullptr);
    const std::string remote = req.address().host();
    auth::Admission a = access_->gate.admit(authorization, remote, route.needs);
    AuditPtr audit;
    if ((a.status == 0 && mutating(req.method())) || (a.status != 0 && a.audit)) {
      audit = auth::AuditTrail::begin(a.who.token, a.who.role, remote,
                                      Http::methodString(req.method()), req.resource());
      audit->entry.flow_ids = route.flow_ids;
      // The ids of a refused body are read only for a known token (403): a client without one
      // cannot make the server parse its body.
      if (a.status == 403 && route.ids_in_body) audit->entry.flow_ids = flowIdsInBody(req);
      // The reply may be sent from an engine thread after the server stopped: it keeps the
      // trail alive.
      r->beforeSend([access = access_, audit](int status, const std::string& body) {
        return access->trail.finish(audit, status, body);
      });
    }
    if (a.status == 0) return route.run_as ? route.run_as(a.who) : route.run(audit);
    if (a.status == 401) r->header("WWW-Authenticate", "Bearer realm=\"sluice\"");
    if (a.status == 429) r->header("Retry-After", std::to_string(a.retry_after_s));
    if (a.status == 403 && a.required_role) {
      std::string body = "{\"error\":";
      json::appendString(body, a.error);
      body += ",\"required_role\":";
      json::appendString(body, auth::roleName(*a.required_role));
      return r->send(403, body + "}");
    }
    r->send(a.status, errorBody(a.error));
  }

 private:
  Route resolve(const Http::Request& req, const ReplyPtr& r) {
    Route route;
    auto fail = [&](int code, std::string message, std::vector<M> allow = {}) {
      route.run = [r, code, message = std::move(message), allow = std::move(allow)](
                      const AuditPtr&) { r->send(code, errorBody(message), allow); };
      return route;
    };
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
      auto decoded = percentDecode(path.substr(pos, end - pos));
      if (!decoded) return fail(400, "malformed percent-encoding in the path");
      seg.push_back(std::move(*decoded));
      pos = end;
    }
    const M m = req.method();
    auto allow = [&](std::vector<M> methods) {
      std::string names;
      for (M x : methods) names += std::string(names.empty() ? "" : ", ") + Http::methodString(x);
      return fail(405,
                  "method " + std::string(Http::methodString(m)) + " is not allowed on " +
                      std::string(path) + " (allowed: " + names + ")",
                  std::move(methods));
    };
    auto to = [&](Role needs, std::function<void(const AuditPtr&)> run) {
      route.needs = needs;
      route.run = std::move(run);
      return route;
    };
    const Http::Request* q = &req;
    FlowHandlers* f = &flows_;
    Engine* e = &engine_;
    AdminHandlers* admin = &admin_;
    ObserveHandlers* o = &observe_;
    auto open = [&](const char* tmpl, std::function<void()> run) {
      route.tmpl = tmpl;
      if (m != M::Get) return allow({M::Get});
      route.open = true;
      route.run = [run = std::move(run)](const AuditPtr&) { run(); };
      return route;
    };
    if (seg.empty()) return open("/", [r] { ui::redirectToConsole(r); });
    if (seg[0] == "ui" && seg.size() <= 2) {
      const ui::ConsoleAssets* assets = console_.get();
      std::string name = seg.size() == 1 ? "index.html" : seg[1];
      return open("/ui/{file}", [assets, q, r, name] { ui::serveAsset(*assets, name, *q, r); });
    }
    if (seg.size() == 1 && seg[0] == "whoami") {
      route.tmpl = "/whoami";
      if (m != M::Get) return allow({M::Get});
      route.needs = Role::kViewer;
      route.run_as = [this, r](const auth::Principal& who) { whoami(who, r); };
      return route;
    }
    if (seg.size() == 1 && seg[0] == "healthz") return open("/healthz", [o, r] { o->healthz(r); });
    if (seg.size() == 1 && seg[0] == "readyz") return open("/readyz", [o, r] { o->readyz(r); });
    if (seg.size() == 1 && seg[0] == "openapi.json") {
      return open("/openapi.json", [o, r] { o->openapi(r); });
    }
    if (seg.size() == 1 && seg[0] == "metrics") {
      route.tmpl = "/metrics";
      if (m == M::Get) return to(Role::kViewer, [o, q, r](const AuditPtr&) { o->metrics(*q, r); });
      return allow({M::Get});
    }
    if (seg.size() == 1 && seg[0] == "cluster") {
      route.tmpl = "/cluster";
      if (m == M::Get) return to(Role::kViewer, [o, r](const AuditPtr&) { o->cluster(r); });
      return allow({M::Get});
    }
    if (seg.size() == 1 && seg[0] == "events") {
      route.tmpl = "/events";
      if (m == M::Get) {
        return to(Role::kViewer, [o, q, r](const AuditPtr&) {
          // Pistache 0.0.5 keeps the peer's port in network byte order.
          const uint16_t port = ntohs(static_cast<uint16_t>(q->address().port()));
          o->events(*q, r, q->address().host() + ":" + std::to_string(port));
        });
      }
      return allow({M::Get});
    }
    if (seg.size() == 1 && seg[0] == "flows") {
      route.tmpl = "/flows";
      if (m == M::Get) return to(Role::kViewer, [f, q, r](const AuditPtr&) { f->list(*q, r); });
      if (m == M::Post) {
        route.ids_in_body = true;
        return to(Role::kEditor, [f, q, r](const AuditPtr& a) { f->create(*q, r, a); });
      }
      return allow({M::Get, M::Post});
    }
    if (seg.size() == 2 && seg[0] == "flows") {
      if (seg[1] == "status") {
        route.tmpl = "/flows/status";
        if (m == M::Get) {
          return to(Role::kViewer, [f, q, r](const AuditPtr&) { f->statusAll(*q, r); });
        }
        return allow({M::Get});
      }
      if (seg[1] == "commands") {
        route.tmpl = "/flows/commands";
        if (m == M::Patch) {
          route.ids_in_body = true;
          return to(Role::kOperator, [f, q, r](const AuditPtr& a) { f->command(*q, r, a); });
        }
        return allow({M::Patch});
      }
      if (seg[1] == "validate") {
        route.tmpl = "/flows/validate";
        if (m == M::Post) {
          return to(Role::kEditor, [f, q, r](const AuditPtr&) { f->validate(*q, r); });
        }
        return allow({M::Post});
      }
      std::string id = seg[1];
      route.tmpl = "/flows/{id}";
      if (m == M::Get) {
        return to(Role::kViewer, [f, q, r, id](const AuditPtr&) { f->get(id, *q, r); });
      }
      route.flow_ids = {id};
      if (m == M::Put) {
        return to(Role::kEditor, [f, q, r, id](const AuditPtr& a) { f->put(id, *q, r, a); });
      }
      if (m == M::Delete) {
        return to(Role::kEditor, [f, q, r, id](const AuditPtr& a) { f->remove(id, *q, r, a); });
      }
      route.flow_ids.clear();
      return allow({M::Get, M::Put, M::Delete});
    }
    if (seg.size() == 3 && seg[0] == "flows" && seg[1] == "status") {
      std::string id = seg[2];
      route.tmpl = "/flows/status/{id}";
      if (m == M::Get) {
        return to(Role::kViewer, [f, q, r, id](const AuditPtr&) { f->statusOne(id, *q, r); });
      }
      return allow({M::Get});
    }
    if (seg.size() == 3 && seg[0] == "flows" && seg[2] == "logs") {
      std::string id = seg[1];
      route.tmpl = "/flows/{id}/logs";
      if (m == M::Get) {
        return to(Role::kViewer, [f, q, r, id](const AuditPtr&) { f->logs(id, *q, r); });
      }
      return allow({M::Get});
    }
    if (seg.size() == 1 && seg[0] == "plugins") {
      route.tmpl = "/plugins";
      if (m == M::Get) return to(Role::kViewer, [e, r](const AuditPtr&) { listPlugins(*e, r); });
      return allow({M::Get});
    }
    if (seg.size() == 2 && seg[0] == "plugins" && seg[1] == "reload") {
      route.tmpl = "/plugins/reload";
      if (m == M::Post) {
        return to(Role::kAdmin, [e, r](const AuditPtr&) { reloadPlugins(*e, r); });
      }
      return allow({M::Post});
    }
    if (seg.size() == 1 && seg[0] == "tokens") {
      route.tmpl = "/tokens";
      if (m == M::Get)
        return to(Role::kAdmin, [admin, r](const AuditPtr&) { admin->listTokens(r); });
      if (m == M::Post) {
        return to(Role::kAdmin, [admin, q, r](const AuditPtr& a) { admin->createToken(*q, r, a); });
      }
      return allow({M::Get, M::Post});
    }
    if (seg.size() == 2 && seg[0] == "tokens") {
      route.tmpl = "/tokens/{name}";
      std::string name = seg[1];
      if (m == M::Delete) {
        return to(Role::kAdmin,
                  [admin, r, name](const AuditPtr& a) { admin->revokeToken(name, r, a); });
      }
      return allow({M::Delete});
    }
    if (seg.size() == 1 && seg[0] == "audit") {
      route.tmpl = "/audit";
      if (m == M::Get)
        return to(Role::kAdmin, [admin, q, r](const AuditPtr&) { admin->audit(*q, r); });
      return allow({M::Get});
    }
    return fail(404, "no such resource: " + std::string(path));
  }

  // GET /whoami: the token's name and role, for a client that must know what it may do (the
  // console hides what the role does not allow). On an open server: anonymous, admin.
  void whoami(const auth::Principal& who, const ReplyPtr& r) {
    const bool open = access_->gate.open();
    std::string body = "{\"token\":";
    json::appendString(body, who.token);
    body += ",\"role\":";
    json::appendString(body, open ? std::string("admin") : who.role);
    body += open ? ",\"auth\":\"open\"}" : ",\"auth\":\"required\"}";
    r->send(200, body);
  }

  Engine& engine_;  // borrowed: outlives the server
  std::shared_ptr<auth::AccessControl> access_;
  std::shared_ptr<const ui::ConsoleAssets> console_;
  std::shared_ptr<Observability> observability_;
  FlowHandlers flows_;
  AdminHandlers admin_;
  ObserveHandlers observe_;
};

}  // namespace

std::shared_ptr<http::EdgeHandler> makeApiRoutes(Engine& engine,
                                                 std::shared_ptr<auth::AccessControl> access,
                                                 std::shared_ptr<Observability> observability,
                                                 std::shared_ptr<http::EdgeContext> context,
                                                 std::shared_ptr<const ui::ConsoleAssets> console) {
  return std::make_shared<ApiRoutes>(engine, std::move(access), std::move(observability),
                                     std::move(context), std::move(console));
}

}  // namespace sluice::api
