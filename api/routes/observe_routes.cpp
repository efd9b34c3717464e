#include "api/routes/observe_routes.hpp"

#include <spdlog/spdlog.h>

#include "api/routes/cluster_routes.hpp"
#include "api/routes/conditional.hpp"
#include "api/routes/responses.hpp"
#include "core/engine/engine.hpp"
#include "core/model/json.hpp"

namespace sluice::api {

using namespace Pistache;
using http::ReplyPtr;

Observability::Observability(Engine& engine, const ObserveOptions& opts)
    : options(opts),
      hub(engine.feed(), events::HubOptions{opts.events_heartbeat, opts.events_max_lag, 256}),
      cache(std::make_shared<ReadCache>(engine, opts.status_max_age)) {}

void ObserveHandlers::healthz(const ReplyPtr& r) { r->send(200, "{\"status\":\"ok\"}"); }

void ObserveHandlers::readyz(const ReplyPtr& r) {
  std::string reason;
  if (draining_()) {
    reason = "the server is shutting down: draining requests";
  } else {
    auto ready = engine_.readiness();
    if (ready.ready) return r->send(200, "{\"ready\":true}");
    reason = ready.reason;
  }
  std::string body = "{\"ready\":false,\"error\":";
  json::appendString(body, reason);
  r->send(503, body + "}");
}

void ObserveHandlers::metrics(const Http::Request& req, const ReplyPtr& r) {
  bool bad = false;
  auto selected = queryList(req, "flow_id", &bad);
  if (bad) return r->send(400, errorBody("flow_id: malformed percent-encoding"));
  metrics::MetricsPageOptions options;
  options.flow_limit = shared_->options.metrics_flow_limit;
  if (selected && selected->size() > options.flow_limit) {
    return r->send(
        400, errorBody("flow_id selects " + std::to_string(selected->size()) + " flows; at most " +
                       std::to_string(options.flow_limit) + " (--metrics-flow-limit) per scrape"));
  }
  r->contentType("text/plain; version=0.0.4; charset=utf-8");
  // The reply keeps the request in flight (the drain waits for it) and may be sent from any
  // thread; the page is built on the scrape thread.
  // Raw pointers: the pool is a member of the Observability, destroyed (and joined) before
  // the metrics it reads; a task that owned the Observability could end up joining itself.
  shared_->scrapes.post([engine = &engine_, http = shared_->http.get(), options, selected, r] {
    r->send(200, metrics::renderMetrics(*engine, *http, options, selected));
  });
}

void ObserveHandlers::cluster(const ReplyPtr& r) {
  const cluster::Membership* membership =
      shared_->options.membership ? shared_->options.membership() : nullptr;
  if (membership == nullptr) return r->send(503, errorBody("cluster membership is not running"));
  // The store is read on the scrape thread, never on an I/O thread.
  shared_->scrapes.post([engine = &engine_, membership, r] {
    int status = 200;
    // One node (SQLite) owns every flow; in a cluster the ownership rows say.
    auto per_node =
        engine->clustered()
            ? engine->flowsPerNode()
            : std::map<std::string, size_t>{{membership->options().node_id, engine->flowCount()}};
    std::string body = clusterDocument(engine->store(), *membership, per_node, &status);
    r->send(status, body);
  });
}

void ObserveHandlers::events(const Http::Request& req, const ReplyPtr& r, std::string who) {
  events::EventFilter filter;
  bool bad = false;
  if (auto ids = queryList(req, "flow_id", &bad)) filter.flow_ids.insert(ids->begin(), ids->end());
  if (auto types = queryList(req, "types", &bad)) {
    filter.state = filter.config = filter.plugin = false;
    for (const auto& t : *types) {
      if (t == "state") {
        filter.state = true;
      } else if (t == "config") {
        filter.config = true;
      } else if (t == "plugin") {
        filter.plugin = true;
      } else {
        return r->send(
            400, errorBody("types: unknown event type '" + t + "' (known: state, config, plugin)"));
      }
    }
  }
  if (bad) return r->send(400, errorBody("malformed percent-encoding in the query string"));
  std::optional<uint64_t> after;
  if (auto last = rawHeader(req, "Last-Event-ID")) {
    const bool digits = !last->empty() && last->size() <= 19 &&
                        last->find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {
      return r->send(400, errorBody("Last-Event-ID must be the id of an event (a whole number)"));
    }
    after = std::stoull(*last);
  }
  if (draining_()) return r->send(503, errorBody("the server is shutting down"));
  // Read before the stream opens: every event after this request is delivered.
  if (!after) after = engine_.feed().last();
  auto sink = r->openStream("text/event-stream");
  if (!sink) return;  // the client is gone
  // "retry" tells EventSource how long to wait before it reconnects.
  sink->write("retry: 2000\n\n", nullptr);
  if (!shared_->hub.subscribe(sink, std::move(filter), after, std::move(who))) sink->end();
}

void ObserveHandlers::openapi(const ReplyPtr& r) { r->send(200, kOpenApiDocument); }

}  // namespace sluice::api
