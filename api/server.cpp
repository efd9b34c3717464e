#include "api/server.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pistache/endpoint.h>
#include <spdlog/spdlog.h>

#include "api/http/edge_handler.hpp"
#include "api/routes/api_routes.hpp"
#include "api/ui/console_assets.hpp"
#include "core/engine/engine.hpp"

namespace sluice {

using namespace Pistache;

std::string checkTlsFiles(const std::string& cert, const std::string& key) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        &SSL_CTX_free);
  auto why = [](const std::string& what) {
    std::string out = what;
    char buf[256];
    while (unsigned long e = ERR_get_error()) {
      ERR_error_string_n(e, buf, sizeof buf);
      out += std::string(": ") + buf;
    }
    return out;
  };
  ERR_clear_error();
  if (!ctx) return why("cannot create a TLS context");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return why("cannot load the certificate " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return why("cannot load the private key " + key);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return why("the private key " + key + " does not match the certificate " + cert);
  }
  return "";
}

struct Server::Impl {
  std::shared_ptr<auth::AccessControl> access;  // shared with the handlers and their replies
  std::shared_ptr<http::EdgeContext> edge;
  std::shared_ptr<api::Observability> observability;
  bool tls = false;
  std::unique_ptr<Http::Endpoint> endpoint;
  bool stopped = false;
};

Server::Server(Engine& engine, const ServerOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->access = std::make_shared<auth::AccessControl>(engine.store(), options.access);
  http::EdgeOptions edge;
  edge.limits.max_body_bytes = options.max_body_bytes;
  edge.limits.max_header_bytes = options.max_header_bytes;
  edge.max_connections = options.max_connections;
  edge.header_timeout = options.header_timeout;
  edge.idle_timeout = options.idle_timeout;
  impl_->edge = std::make_shared<http::EdgeContext>(edge);

  Address addr(options.host, Port(options.port));
  impl_->endpoint = std::make_unique<Http::Endpoint>(addr);
  // The edge frames every request before Pistache's parser sees it, so the parser's buffer
  // only ever holds one request that already passed the edge's limits.
  auto opts = Http::Endpoint::options()
                  .threads(options.threads)
                  .flags(Tcp::Options::ReuseAddr | Tcp::Options::CloseOnExec)
                  .maxRequestSize(options.max_header_bytes + options.max_body_bytes + 1024)
                  .maxResponseSize(size_t{256} * 1024 * 1024)
                  // The edge enforces its own timeouts. Pistache's (60 s by default) would cut
                  // a long response such as an /events stream with a raw 408 written into it,
                  // and drop the peer behind the edge's back.
                  .headerTimeout(std::chrono::hours(24 * 365))
                  .bodyTimeout(std::chrono::hours(24 * 365))
                  .keepaliveTimeout(std::chrono::hours(24 * 365));
  impl_->endpoint->init(opts);
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    if (options.tls_cert.empty() || options.tls_key.empty()) {
      throw std::runtime_error("TLS needs both --tls-cert and --tls-key");
    }
    // After init(), which turns TLS off. Throws std::runtime_error naming what OpenSSL refused.
    try {
      impl_->endpoint->useSSL(options.tls_cert, options.tls_key);
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot use the TLS certificate " + options.tls_cert + " and key " +
                               options.tls_key + ": " + e.what());
    }
    impl_->tls = true;
  }
  impl_->observability = std::make_shared<api::Observability>(engine, options.observe);
  impl_->endpoint->setHandler(
      api::makeApiRoutes(engine, impl_->access, impl_->observability, impl_->edge,
                         std::make_shared<const api::ui::ConsoleAssets>(options.console_dir)));
  impl_->endpoint->serveThreaded();
}

Server::~Server() {
  if (!impl_->stopped) drainAndStop(5000);
}

uint16_t Server::port() const { return static_cast<uint16_t>(impl_->endpoint->getPort()); }

bool Server::tls() const { return impl_->tls; }

auth::AccessControl& Server::access() { return *impl_->access; }

void Server::drainAndStop(uint32_t bound_ms) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->edge->in_flight->draining = true;
  // Event streams end first (each gets what it has not seen yet): they are in flight until then.
  impl_->observability->hub.closeAll();
  if (!impl_->edge->in_flight->waitIdle(std::chrono::milliseconds(bound_ms))) {
    spdlog::warn("requests still in flight after {} ms; shutting down anyway", bound_ms);
  }
  impl_->edge->connections.stop();
  impl_->endpoint->shutdown();
  impl_->endpoint.reset();
}

}  // namespace sluice
