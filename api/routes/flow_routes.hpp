// The handlers of /flows, /flows/status, /flows/commands, /flows/validate and /plugins.
#pragma once

#include <pistache/http.h>

#include <memory>
#include <string>
#include <vector>

#include "api/http/reply.hpp"
#include "api/routes/read_cache.hpp"
#include "core/store/access.hpp"

namespace sluice {
class Engine;
}

namespace sluice::api {

/// The flow ids a POST /flows or PATCH /flows/commands body names, for the audit entry of a
/// request refused before its handler ran; empty when the body is not JSON.
std::vector<std::string> flowIdsInBody(const Pistache::Http::Request& req);

/// Each handler answers through `r`, now or later from an engine thread. A handler that
/// changes flows passes `audit` (null when not audited) to the engine, which stores the entry
/// in the change's transaction.
class FlowHandlers {
 public:
  FlowHandlers(Engine& engine, std::shared_ptr<ReadCache> cache)
      : engine_(engine), cache_(std::move(cache)) {}

  // Reads (flow_reads.cpp): ETag and If-None-Match on each; paging and filters on the lists.
  void list(const Pistache::Http::Request& req, const http::ReplyPtr& r);
  void get(const std::string& id, const Pistache::Http::Request& req, const http::ReplyPtr& r);
  void statusAll(const Pistache::Http::Request& req, const http::ReplyPtr& r);
  void statusOne(const std::string& id, const Pistache::Http::Request& req,
                 const http::ReplyPtr& r);
  /// GET /flows/<id>/logs?tail=N (flow_logs.cpp).
  void logs(const std::string& id, const Pistache::Http::Request& req, const http::ReplyPtr& r);
  void create(const Pistache::Http::Request& req, const http::ReplyPtr& r, const AuditPtr& audit);
  void validate(const Pistache::Http::Request& req, const http::ReplyPtr& r);
  void put(const std::string& id, const Pistache::Http::Request& req, const http::ReplyPtr& r,
           const AuditPtr& audit);
  void remove(const std::string& id, const Pistache::Http::Request& req, const http::ReplyPtr& r,
              const AuditPtr& audit);
  void command(const Pistache::Http::Request& req, const http::ReplyPtr& r, const AuditPtr& audit);

 private:
  /// GET /flows and GET /flows/status with paging or filters.
  void page(const Pistache::Http::Request& req, const http::ReplyPtr& r, bool status);

  Engine& engine_;  // borrowed: outlives the server
  std::shared_ptr<ReadCache> cache_;
};

}  // namespace sluice::api
