// The edge's JSON error body: {"error": message}. The routes build richer ones (with details)
// in api/routes/responses.hpp; both have the same shape.
#pragma once

#include <string>
#include <string_view>

namespace sluice::http {

/// {"error": message}, with the message escaped (invalid UTF-8 is replaced, never echoed raw).
std::string errorJson(std::string_view message);

}  // namespace sluice::http
