#include "api/http/error_json.hpp"

#include "core/model/json.hpp"

namespace sluice::http {

std::string errorJson(std::string_view message) {
  std::string out = "{\"error\":";
  json::appendString(out, message);
  out += '}';
  return out;
}

}  // namespace sluice::http
