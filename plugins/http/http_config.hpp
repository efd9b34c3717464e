// The `http` flow type's configuration: parsed and checked in one place, for the validate hook
// (every problem, each with its JSON pointer) and for the constructor (the first problem throws).
#pragma once

#include <chrono>
#include <sluice/sdk/config.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::http_flow {

/// One problem of a config: a JSON pointer into it and what is wrong there.
struct ConfigProblem {
  std::string path;
  std::string message;
};

struct HttpConfig {
  std::string url;
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // in document order
  bool has_body = false;
  std::string body;
  std::chrono::milliseconds timeout{30'000};
  std::vector<long> expect_status;  // empty: any 2xx
  std::string output;               // empty: the body is not written

  /// Whether `status` is one the config expects.
  bool expects(long status) const;
  /// The expected statuses as the error messages say them: "200", "200, 201" or "2xx".
  std::string expectedText() const;
};

/// The config's JSON Schema (draft-04): the members and their types, for the engine's check and
/// for clients. The validate hook checks the rest (schemes, header names, durations, paths,
/// unknown members) with a message of its own.
inline constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "description": "One HTTP request per run. url is required; other members are refused.",
  "properties": {
    "url": {"type": "string", "minLength": 1, "maxLength": 8192,
            "description": "required: an http:// or https:// URL"},
    "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]},
    "headers": {"type": "object", "additionalProperties": {"type": "string"},
                "description": "header name (token characters) to value (no CR, LF or NUL)"},
    "body": {"type": "string", "description": "sent as is"},
    "timeout": {"type": "string", "minLength": 1, "maxLength": 32,
                "description": "limit of the whole request: 500ms, 10s, 5m (default 30s)"},
    "expect_status": {"type": "array", "minItems": 1,
                      "items": {"type": "integer", "minimum": 100, "maximum": 599},
                      "description": "statuses that complete the run (default: any 2xx)"},
    "output": {"type": "string", "minLength": 1, "maxLength": 4096,
               "description": "file under the files root the response body is appended to"}
  }
})json";

/// Parses `config` into *out, appending every problem to *problems (none: *out is complete).
void parseConfig(const sluice::sdk::Config& config, HttpConfig* out,
                 std::vector<ConfigProblem>* problems);

/// `url` with the password of its user information, if any, replaced by "***": the form that
/// error messages and logs show.
std::string redactUrl(std::string_view url);

}  // namespace sluice::http_flow
