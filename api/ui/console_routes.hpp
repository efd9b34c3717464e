// The routes of the web console: `/` redirects to `/ui/`, `/ui/` serves the page and
// `/ui/{file}` its scripts and styles, to anybody (they hold no data: every call the page makes
// goes through the API with the user's token).
#pragma once

#include <pistache/http.h>

#include <string>

#include "api/http/reply.hpp"
#include "api/ui/console_assets.hpp"

namespace sluice::api::ui {

/// The policy every console file is served with: scripts, styles and connections only from the
/// server itself, no inline code, never framed.
extern const char* const kContentSecurityPolicy;

/// Answers GET /ui/{name} (`name` "index.html" for /ui/): the file with its media type, ETag
/// (304 on If-None-Match), `Cache-Control: no-cache` and the security headers; 404 when there
/// is no such file.
void serveAsset(const ConsoleAssets& assets, const std::string& name,
                const Pistache::Http::Request& req, const http::ReplyPtr& r);

/// Answers GET / with 302 to `/ui/`.
void redirectToConsole(const http::ReplyPtr& r);

}  // namespace sluice::api::ui
