#include "api/http/edge_handler.hpp"

#include <spdlog/spdlog.h>

#include <string_view>
#include <thread>

#include "api/http/error_json.hpp"

namespace sluice::http {

using namespace Pistache;

namespace {

constexpr const char* kConnectionData = "sluice.connection";

std::shared_ptr<Connection> connectionOf(const std::shared_ptr<Tcp::Peer>& peer) {
  return std::static_pointer_cast<Connection>(peer->tryGetData(kConnectionData));
}

// HTTP/1.1 keeps a connection open unless the client says "close"; HTTP/1.0 closes it unless
// the client says "keep-alive".
bool keepAlive(const Http::Request& request) {
  auto header = request.headers().tryGet<Http::Header::Connection>();
  if (header) return header->control() == Http::ConnectionControl::KeepAlive;
  return request.version() == Http::Version::Http11;
}

}  // namespace

void EdgeHandler::onRequest(const Http::Request& request, Http::ResponseWriter writer) {
  // Not framed by the edge: the Authorization header is still among the parsed headers.
  std::optional<std::string> authorization;
  if (auto h = request.headers().tryGet<Http::Header::Authorization>()) {
    authorization = h->value();
  } else if (auto raw = request.headers().tryGetRaw("Authorization")) {
    authorization = raw->value();
  }
  handle(request, authorization ? std::optional<std::string_view>(*authorization) : std::nullopt,
         std::make_shared<Reply>(std::move(writer), nullptr, context_->in_flight));
}

void EdgeHandler::onConnection(const std::shared_ptr<Tcp::Peer>& peer) {
  // What Pistache's own onConnection does: a parser per connection, sized for one request.
  peer->putData(ParserData, std::make_shared<Http::RequestParser>(getMaxRequestSize()));
  auto conn = std::make_shared<Connection>(&context_->connections, peer, transport(), this,
                                           context_->connections.options().limits);
  peer->putData(kConnectionData, conn);
  if (!context_->connections.add(conn)) {
    conn->refuse(503, "the server has " +
                          std::to_string(context_->connections.options().max_connections) +
                          " open connections, its limit (--max-connections): try again later");
  }
}

void EdgeHandler::onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) {
  if (auto conn = connectionOf(peer)) context_->connections.remove(conn);
}

void EdgeHandler::onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) {
  auto conn = connectionOf(peer);
  if (!conn || !conn->acceptingInput()) return;  // refused or closing: dropped unread
  {
    std::lock_guard lock(conn->input_mu);
    if (conn->stash.size() + len > conn->maxStash()) {
      conn->stash.clear();
      conn->stash.shrink_to_fit();
      return conn->refuse(400,
                          "more pipelined bytes than one request may hold wait behind an "
                          "earlier request");
    }
    conn->stash.append(buffer, len);
  }
  pump(conn);
}

void EdgeHandler::pump(const std::shared_ptr<Connection>& conn) {
  conn->pump_requested = true;
  while (conn->pump_requested.load()) {
    std::unique_lock lock(conn->input_mu, std::try_to_lock);
    if (!lock.owns_lock()) return;  // the holder sees pump_requested once it lets go
    conn->pump_requested = false;
    auto peer = conn->peer();
    if (!peer || !conn->acceptingInput()) return;
    static_cast<EdgeHandler*>(conn->handler())->drain(peer, conn);
  }
}

void EdgeHandler::drain(const std::shared_ptr<Tcp::Peer>& peer,
                        const std::shared_ptr<Connection>& conn) {
  auto parser = getParser(peer);
  std::string_view rest(conn->stash);
  // A request waits while the response to the one before it is outstanding.
  while (conn->idle()) {
    Frame f = conn->framer.next(rest);
    rest.remove_prefix(f.consumed);
    if (f.kind == Frame::Kind::kNeedMore) break;
    if (f.kind == Frame::Kind::kReject) {
      parser->reset();
      if (f.status != 0) conn->refuse(f.status, f.message);
      rest = {};
      break;
    }
    if (f.kind == Frame::Kind::kHead) {
      // Cannot fail: the parser holds one request, and the framer bounded it.
      parser->feed(conn->framer.head().data(), conn->framer.head().size());
      if (conn->framer.expectsContinue()) {
        static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        peer->send(Pistache::RawBuffer(kContinue, kContinue.size()));
      }
    } else if (f.kind == Frame::Kind::kBody) {
      parser->feed(rest.data() - f.consumed, f.consumed);
    } else if (f.kind == Frame::Kind::kComplete) {
      dispatch(peer, conn);
      if (!conn->acceptingInput()) {
        rest = {};
        break;
      }
    }
  }
  conn->stash.erase(0, conn->stash.size() - rest.size());
  conn->noteInput(conn->framer.midRequest(), conn->framer.inBody());
}

// Parses the one complete request the parser holds and hands it to the routes.
void EdgeHandler::dispatch(const std::shared_ptr<Tcp::Peer>& peer,
                           const std::shared_ptr<Connection>& conn) {
  auto parser = getParser(peer);
  auto& request = parser->request;
  try {
    if (parser->parse() != Http::Private::State::Done) {
      parser->reset();
      return conn->refuse(400, "malformed request: it could not be parsed");
    }
  } catch (const Http::HttpError& e) {
    parser->reset();
    const int code = e.code() >= 400 && e.code() < 600 && e.code() != 500 ? e.code() : 400;
    return conn->refuse(code, "malformed request: " + e.reason());
  } catch (const std::exception& e) {
    parser->reset();
    return conn->refuse(400, std::string("malformed request: ") + e.what());
  }
  const bool keep_alive = keepAlive(request);
  if (!conn->beginRequest(keep_alive)) {
    parser->reset();
    return;
  }
  Http::ResponseWriter writer(request.version(), transport(), this, peer);
  request.copyAddress(peer->address());
  writer.headers().add<Http::Header::Connection>(keep_alive ? Http::ConnectionControl::KeepAlive
                                                            : Http::ConnectionControl::Close);
  peer->setIdle(false);
  auto reply = std::make_shared<Reply>(std::move(writer), conn, context_->in_flight, &pump);
  if (context_->in_flight->draining && !servesWhileDraining(request)) {
    reply->send(503, errorJson("the server is shutting down"));
  } else {
    try {
      handle(request, conn->framer.authorization(), reply);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", Http::methodString(request.method()), request.resource(),
                    e.what());
      reply->send(500, errorJson(std::string("internal error: ") + e.what()));
    }
  }
  parser->reset();
}

}  // namespace sluice::http
