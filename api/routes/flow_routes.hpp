// The handlers of /flows, /flows/status, /flows/commands, /flows/validate and /plugins.
#pragma once

#include <pistache/http.h>

#include <string>
#include <vector>

#include "api/http/reply.hpp"
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
  explicit FlowHandlers(Engine& engine) : engine_(engine) {}

  void list(const http::ReplyPtr& r);
  void get(const std::string& id, const http::ReplyPtr& r);
  void statusAll(const http::ReplyPtr& r);
  void statusOne(const std::string& id, const http::ReplyPtr& r);
  void plugins(const http::ReplyPtr& r);
  void create(const Pistache::Http::Request& req, const http::ReplyPtr& r, const AuditPtr& audit);
  void validate(const Pistache::Http::Request& req, const http::ReplyPtr& r);
  void put(const std::string& id, const Pistache::Http::Request& req, const http::ReplyPtr& r,
           const AuditPtr& audit);
  void remove(const std::string& id, const http::ReplyPtr& r, const AuditPtr& audit);
  void command(const Pistache::Http::Request& req, const http::ReplyPtr& r, const AuditPtr& audit);

 private:
  Engine& engine_;  // borrowed: outlives the server
};

}  // namespace sluice::api
