// The HTTP side of `sluice ctl`: one libcurl handle that speaks to Sluice's REST API, with
// bounded requests and one unbounded stream (GET /events). A pure client of the public API.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cli::ctl {

struct ClientOptions {
  std::string server;  // base URL, e.g. "http://127.0.0.1:5000" (a path prefix is kept)
  std::string token;   // sent as "Authorization: Bearer <token>"; empty: no such header
  std::string cacert;  // PEM file of the CAs to trust for https; empty: the system's
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{60'000};  // whole request; streams have none
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; the last of repeated ones
  std::string body;

  /// The value of header `lower_name`, empty when absent.
  std::string header(const std::string& lower_name) const;
};

/// How one exchange ended: a response, or why there was none (`error`).
struct Outcome {
  std::optional<Response> response;  // the whole response (a stream: its head, and the body
                                     // when the status was not 200)
  std::string error;                 // a transport failure, already phrased for people
  bool aborted = false;              // a stream the caller stopped (not an error)
};

/// What a stream does with the body of a 200 answer. Called on the thread that called
/// stream(); returning false from either stops the stream (Outcome::aborted).
struct StreamHandlers {
  std::function<bool(std::string_view)> on_data;  // each chunk of a 200 body, as it arrives
  std::function<bool()> keep_going;               // polled at least once a second
};

/// Not thread-safe: one thread at a time. Keeps its connection open between requests.
class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends `method path` (path with its query, from the API's root) with `body` (sent with
  /// Content-Type: application/json when not empty, or when the method is POST, PUT or PATCH)
  /// and extra header lines ("Name: value"). Bounded by the request timeout.
  Outcome request(const std::string& method, const std::string& path, const std::string& body = "",
                  const std::vector<std::string>& headers = {});

  /// GET `path` as a stream, without a time limit but with a stall limit: no byte for
  /// `stall` ends it with an error. Runs until the server ends it, it fails, or a handler
  /// says stop.
  Outcome stream(const std::string& path, const std::vector<std::string>& headers,
                 const StreamHandlers& handlers, std::chrono::seconds stall);

  const std::string& server() const { return options_.server; }

  /// `text` percent-encoded for a path segment or a query value.
  static std::string escape(std::string_view text);

  struct Exchange;  // one request in flight (ctl_client.cpp's callbacks fill it)

 private:
  Outcome perform(Exchange& x);

  ClientOptions options_;
  void* curl_ = nullptr;  // CURL*, owned
};

/// "http://host:port" from what a user wrote: a scheme is added when missing ("host:port"
/// means http), and trailing slashes are dropped.
std::string normalizeServerUrl(std::string url);

/// Whether a normalised server URL is http:// or https:// (any case). Other schemes (file://,
/// ftp://, ...) are usage errors, and libcurl is told to speak HTTP(S) only anyway.
bool hasHttpScheme(const std::string& url);

}  // namespace sluice::cli::ctl
