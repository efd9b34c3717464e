// The HTTP edge: a Pistache handler that frames, limits and times every connection before a
// request reaches the routes (docs/architecture.md, "The HTTP edge").
//
// It replaces Pistache's Http::Handler::onInput: the edge's RequestFramer finds each request's
// bounds and refuses malformed or oversized ones at once, then Pistache's parser is fed exactly
// one complete request at a time. Responses carry keep-alive as HTTP/1.1 defines it, and a
// connection that asked to close is closed once its response is written.
#pragma once

#include <pistache/http.h>
#include <pistache/peer.h>

#include <memory>
#include <optional>
#include <string_view>

#include "api/http/connection.hpp"
#include "api/http/reply.hpp"

namespace sluice::http {

/// Shared by every clone of the handler (Pistache clones it for each I/O thread).
struct EdgeContext {
  explicit EdgeContext(const EdgeOptions& options)
      : connections(options), in_flight(std::make_shared<InFlight>()) {}
  ConnectionTable connections;
  std::shared_ptr<InFlight> in_flight;
};

class EdgeHandler : public Pistache::Http::Handler {
 public:
  explicit EdgeHandler(std::shared_ptr<EdgeContext> context) : context_(std::move(context)) {}

  /// One complete, well-framed request. Runs on an I/O thread: never block here.
  /// `authorization` is its Authorization header's value, which the framer took out of the
  /// head (request.headers() never has it).
  /// Requests still served while the server drains (health probes); the rest get 503.
  virtual bool servesWhileDraining(const Pistache::Http::Request&) const { return false; }

  virtual void handle(const Pistache::Http::Request& request,
                      std::optional<std::string_view> authorization, const ReplyPtr& reply) = 0;

  /// Only reached if Pistache parsed a request on its own (it does not, with onInput below).
  void onRequest(const Pistache::Http::Request& request,
                 Pistache::Http::ResponseWriter writer) final;

  void onConnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;
  void onDisconnection(const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;
  void onInput(const char* buffer, size_t len,
               const std::shared_ptr<Pistache::Tcp::Peer>& peer) override;

 protected:
  const std::shared_ptr<EdgeContext>& context() const { return context_; }

 private:
  /// Frames and handles the input waiting on `conn`, from any thread, unless another thread is
  /// doing so (it then goes on with what this one would have done).
  static void pump(const std::shared_ptr<Connection>& conn);
  /// With conn->input_mu held: handles stashed requests until one is answered asynchronously.
  void drain(const std::shared_ptr<Pistache::Tcp::Peer>& peer,
             const std::shared_ptr<Connection>& conn);
  void dispatch(const std::shared_ptr<Pistache::Tcp::Peer>& peer,
                const std::shared_ptr<Connection>& conn);
  std::shared_ptr<EdgeContext> context_;
};

}  // namespace sluice::http
