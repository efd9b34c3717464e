// The REST service: the Pistache endpoint with the HTTP edge (api/http/) in front of the routes
// (api/routes/), and the graceful drain. Talks to the engine only through core/engine/engine.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/auth/access_control.hpp"
#include "api/routes/observe_routes.hpp"

namespace sluice {

class Engine;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 5000;  // 0 = any free port
  int threads = 2;       // HTTP I/O threads
  size_t max_body_bytes = size_t{16} * 1024 * 1024;
  size_t max_header_bytes = size_t{64} * 1024;  // request line and headers
  size_t max_connections = 10'000;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::string tls_cert;  // PEM files; both set = HTTPS only
  std::string tls_key;
  auth::AccessOptions access;
  api::ObserveOptions observe;
  std::string console_dir;  // empty: the console's compiled-in files; else read from there
};

/// Loads a TLS certificate (chain) and key as the server would; empty when they can be used,
/// else why not. Lets main refuse a bad pair before any flow starts.
std::string checkTlsFiles(const std::string& cert, const std::string& key);

class Server {
 public:
  /// Binds and starts serving on background threads; throws std::runtime_error when it cannot
  /// bind or the TLS certificate or key cannot be used. `engine` must outlive the server.
  Server(Engine& engine, const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  bool tls() const;
  /// Access control: tokens, the gate, the audit trail.
  auth::AccessControl& access();
  /// Stops accepting new requests (they get 503), waits up to `bound_ms` for requests in flight,
  /// then shuts the endpoint down.
  void drainAndStop(uint32_t bound_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
