// What every `sluice ctl` subcommand shares: the global options, the client made from them,
// exit codes, output formats, and the one way API errors are printed.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/cli/ctl/ctl_client.hpp"
#include "core/model/json.hpp"

namespace sluice::cli::ctl {

/// Exit codes: scripts can trust them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the API refused, a flow failed, the server unreachable
inline constexpr int kExitUsage = 2;   // bad command line or bad input files

enum class Format { kTable, kJson, kYaml };
Format parseFormat(const std::string& text);  // "table", "json" or "yaml" (CLI11 checked it)

/// The options of `sluice ctl` itself (accepted after any of its subcommands too).
struct Globals {
  std::string server;  // --server / SLUICE_URL; empty: $app_url, else http://127.0.0.1:5000
  std::string token;   // --token / SLUICE_TOKEN
  std::string cacert;  // --cacert / SLUICE_CACERT
  std::string request_timeout = "60s";
};

/// The base URL the client talks to, from `flag` or its defaults.
std::string resolveServer(const std::string& flag);

/// A client for the globals (their durations were validated by CLI11).
std::unique_ptr<Client> makeClient(const Globals& g);

/// Prints "error: [<what>: ]<status>: <error>" and one line per entry of the body's `details`
/// ("  flow/x /config/interval_ms: message") on stderr.
void printApiError(const Response& r, const std::string& what = "");

/// Sends a request; returns the response when its status is one of `ok`. Otherwise prints the
/// API's error (or the transport failure) and returns nothing.
std::optional<Response> call(Client& client, const std::string& method, const std::string& path,
                             std::initializer_list<long> ok, const std::string& body = "",
                             const std::vector<std::string>& headers = {},
                             const std::string& what = "");

/// Parses a response body; prints an error and returns false when it is not JSON.
bool parseBody(const Response& r, rapidjson::Document& doc);

/// A member of an object as text for a table: strings as they are, numbers and booleans
/// written out, null or absent as `fallback`.
std::string text(const rapidjson::Value& object, const char* key,
                 const std::string& fallback = "-");

/// A JSON value as text for a table (see text()).
std::string scalarText(const rapidjson::Value& v, const std::string& fallback = "-");

/// "2026-11-30T01:02:03.456Z" -> "2026-11-30T01:02:03Z" (other text is kept as it is).
std::string wholeSeconds(const std::string& iso_time);

/// The current UTC time as "2026-11-30T01:02:03Z".
std::string nowIso();

/// `s` made safe for a terminal, for every human-readable line (tables, watch lines, error
/// messages) that prints text from the server or the files: line breaks and tabs become
/// spaces, the other C0 controls and DEL print as `\xHH`, the C1 controls (U+0080-U+009F,
/// UTF-8 0xC2 0x80-0x9F) as `\u00HH`. So no escape sequence reaches the terminal.
std::string printable(const std::string& s);

/// Whether a problem of POST /flows/validate is the one a creation check reports for a
/// flow_id the server already has (which an update expects). The server's wording, matched
/// here and nowhere else: "flow_id '<id>' already exists" at path /flow_id
/// (core/engine/engine.cpp, Engine's batch validation); change both together.
bool isAlreadyExistsProblem(const rapidjson::Value& problem);

}  // namespace sluice::cli::ctl
