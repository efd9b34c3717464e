// The handlers of /tokens and /audit (admin only).
#pragma once

#include <pistache/http.h>

#include <string>

#include "api/auth/token_book.hpp"
#include "api/http/reply.hpp"
#include "core/store/store.hpp"

namespace sluice::api {

class AdminHandlers {
 public:
  AdminHandlers(auth::TokenBook& book, Store& store) : book_(book), store_(store) {}

  void listTokens(const http::ReplyPtr& r);
  void createToken(const Pistache::Http::Request& req, const http::ReplyPtr& r,
                   const AuditPtr& audit);
  void revokeToken(const std::string& name, const http::ReplyPtr& r, const AuditPtr& audit);
  void audit(const Pistache::Http::Request& req, const http::ReplyPtr& r);

 private:
  auth::TokenBook& book_;
  Store& store_;
};

/// JSON of a token without its secret; with `secret` when it is not empty (POST /tokens only).
std::string tokenJson(const TokenRecord& t, int64_t now_ms, const std::string& secret = "");
/// "2026-11-29T02:30:00.123Z"
std::string isoTime(int64_t ms);

}  // namespace sluice::api
