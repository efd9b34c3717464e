// The handlers that make Sluice observable: /healthz, /readyz, /metrics, /events and
// /openapi.json, and what they share across the server's I/O threads.
#pragma once

#include <pistache/http.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/events/event_hub.hpp"
#include "api/http/reply.hpp"
#include "api/metrics/http_metrics.hpp"
#include "api/metrics/metrics_page.hpp"
#include "api/routes/read_cache.hpp"
#include "core/runtime/executor.hpp"

namespace sluice {
class Engine;
namespace cluster {
class Membership;
}
}  // namespace sluice

namespace sluice::api {

struct ObserveOptions {
  size_t metrics_flow_limit = 1000;
  std::chrono::milliseconds events_heartbeat{15'000};
  uint64_t events_max_lag = 10'000;
  std::chrono::milliseconds status_max_age{1'000};
  /// This node's membership of its cluster, for GET /cluster (none yet: 503). Set by main once
  /// the port is bound, since the node id defaults to host:port.
  std::function<const cluster::Membership*()> membership;
};

/// One per server, shared by every handler clone.
struct Observability {
  Observability(Engine& engine, const ObserveOptions& options);
  const ObserveOptions options;
  /// Shared with every reply's metrics callback, which may run after the server stopped.
  std::shared_ptr<metrics::HttpMetrics> http = std::make_shared<metrics::HttpMetrics>();
  events::EventHub hub;
  std::shared_ptr<ReadCache> cache;
  /// Builds /metrics pages off the HTTP I/O threads, one at a time: a scrape of many flows
  /// takes milliseconds and must not hold up the other connections of its I/O thread.
  ThreadPool scrapes{1};
};

/// The OpenAPI document, compiled in from api/openapi/openapi.json.
extern const char* const kOpenApiDocument;

class ObserveHandlers {
 public:
  ObserveHandlers(Engine& engine, std::shared_ptr<Observability> shared,
                  std::function<bool()> draining)
      : engine_(engine), shared_(std::move(shared)), draining_(std::move(draining)) {}

  void healthz(const http::ReplyPtr& r);
  void readyz(const http::ReplyPtr& r);
  void metrics(const Pistache::Http::Request& req, const http::ReplyPtr& r);
  /// `who` names the client in the log.
  void events(const Pistache::Http::Request& req, const http::ReplyPtr& r, std::string who);
  void openapi(const http::ReplyPtr& r);
  void cluster(const http::ReplyPtr& r);

 private:
  Engine& engine_;
  std::shared_ptr<Observability> shared_;
  std::function<bool()> draining_;
};

}  // namespace sluice::api
