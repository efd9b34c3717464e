// Conditional requests (RFC 9110 section 13): If-None-Match on reads, If-Match on changes,
// and the query parameters of the paged reads.
#pragma once

#include <pistache/http.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::api {

/// The value of request header `name`, when present.
std::optional<std::string> rawHeader(const Pistache::Http::Request& req, const std::string& name);

/// True when the request's If-None-Match matches `etag` (weak comparison, or "*"): the answer
/// is then 304 with no body.
bool notModified(const Pistache::Http::Request& req, const std::string& etag);

/// The entity tags of the request's If-Match (strong comparison: weak tags match nothing; "*"
/// matches any current version), or nothing when it has none.
std::optional<std::vector<std::string>> ifMatch(const Pistache::Http::Request& req);

/// The decoded value of query parameter `name`; `bad` is set when its percent-encoding is
/// malformed.
std::optional<std::string> queryValue(const Pistache::Http::Request& req, const std::string& name,
                                      bool* bad);

/// A comma-separated query value, each piece percent-decoded (so "%2C" is a comma inside an
/// id); nothing when the parameter is absent or malformed (then `bad` is set).
std::optional<std::vector<std::string>> queryList(const Pistache::Http::Request& req,
                                                  const std::string& name, bool* bad);

/// Percent-encodes `v` for a query string.
std::string queryEncode(std::string_view v);

}  // namespace sluice::api
