#include "api/ui/console_routes.hpp"

#include "api/routes/conditional.hpp"
#include "api/routes/responses.hpp"

namespace sluice::api::ui {

const char* const kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

void serveAsset(const ConsoleAssets& assets, const std::string& name,
                const Pistache::Http::Request& req, const http::ReplyPtr& r) {
  auto asset = assets.find(name);
  if (!asset) {
    return r->send(404, errorBody("the console has no file '" + name + "'"));
  }
  r->header("ETag", asset->etag);
  r->header("Cache-Control", "no-cache");
  r->header("Content-Security-Policy", kContentSecurityPolicy);
  r->header("X-Content-Type-Options", "nosniff");
  r->header("Referrer-Policy", "no-referrer");
  if (notModified(req, asset->etag)) return r->send(304, "");
  r->contentType(asset->media_type);
  r->send(200, asset->body);
}

void redirectToConsole(const http::ReplyPtr& r) {
  r->header("Location", "/ui/");
  r->send(302, "{\"location\":\"/ui/\"}");
}

}  // namespace sluice::api::ui
