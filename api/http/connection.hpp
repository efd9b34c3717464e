// The connections of the HTTP edge: one Connection per TCP peer, and the table that caps their
// number and closes those that are slow, idle or refused.
//
// Threads: a Connection is fed by its Pistache I/O thread, answered from any thread (engine
// callbacks), and inspected by the table's reaper thread. Closing never calls close(2): the
// table shuts the socket down and Pistache, seeing EOF, closes it on its own thread. Pistache
// calls onDisconnection (which unregisters) before it closes the descriptor, and every
// shutdown(2) happens under the table's mutex on a registered connection only, so a descriptor
// number that the kernel has reused is never touched.
#pragma once

#include <pistache/http.h>
#include <pistache/peer.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "api/http/request_framer.hpp"

namespace sluice::http {

using EdgeClock = std::chrono::steady_clock;

/// The limits and timeouts of the edge (documented in docs/configuration.md).
struct EdgeOptions {
  FramerLimits limits;
  /// Longest a request's head may take to arrive, and longest its body may stall.
  std::chrono::milliseconds header_timeout{10'000};
  /// Longest a keep-alive connection may sit idle between requests.
  std::chrono::milliseconds idle_timeout{60'000};
  /// After a refusal: how long the client's remaining bytes are read and dropped before the
  /// connection is closed (so that the client reads the refusal instead of a reset).
  std::chrono::milliseconds linger{1'000};
  /// Open connections served at once; past it new connections get 503 and are closed.
  size_t max_connections = 10'000;
  /// How often the reaper looks for expired connections.
  std::chrono::milliseconds reap_interval{200};
};

class ConnectionTable;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ConnectionTable* table, const std::shared_ptr<Pistache::Tcp::Peer>& peer,
             Pistache::Tcp::Transport* transport, Pistache::Http::Handler* handler,
             const FramerLimits& limits);

  /// Input waits here while a response to an earlier request is outstanding, so that
  /// pipelined requests are handled, and answered, one after the other. Whoever holds
  /// `input_mu` (the I/O thread on input, or the thread that sent the last response) frames it.
  std::mutex input_mu;
  RequestFramer framer;  // guarded by input_mu
  std::string stash;     // guarded by input_mu: bytes received, not framed yet
  std::atomic<bool> pump_requested{false};

  std::shared_ptr<Pistache::Tcp::Peer> peer() const { return peer_.lock(); }
  Pistache::Http::Handler* handler() const { return handler_; }

  /// Before handling input: false when the connection was refused (the input is dropped).
  bool acceptingInput();
  /// Most bytes that may wait in `stash`: one request at its largest.
  size_t maxStash() const {
    return framer_limits_.max_header_bytes + framer_limits_.max_body_bytes;
  }
  /// After handling input: records where the framing stands, for the timeouts.
  void noteInput(bool mid_request, bool in_body);
  /// A complete request is about to be handled: false when it must not be (refused meanwhile).
  bool beginRequest(bool keep_alive);
  /// Its response was handed to Pistache (from any thread), or could not be when `sent` is
  /// false; `on_wire`: every byte of it is written already (a stream whose writes all
  /// completed). Returns true when input may be waiting to be handled now.
  bool endRequest(bool sent, bool on_wire = false);
  /// True when no request is being handled.
  bool idle();
  /// The connection closes once the current response is sent (a stream without a length).
  void closeAfterResponse();

  /// Answers `status` with a JSON error naming `message`, then closes the connection. Waits for
  /// the responses of requests already being handled, so responses keep their order.
  void refuse(int status, const std::string& message);

 private:
  friend class ConnectionTable;
  enum class Action { kNone, kTimeout, kClose };
  Action due(EdgeClock::time_point now, const EdgeOptions& options);
  void sendRefusal(int status, const std::string& message);
  void closeAfter(bool sent, bool on_wire = false);
  void halfClose();

  ConnectionTable* const table_;  // outlives every connection
  const FramerLimits framer_limits_;
  const int fd_;
  Pistache::Tcp::Transport* const transport_;  // borrowed: Pistache's, lives with the endpoint
  Pistache::Http::Handler* const handler_;     // borrowed: the handler clone of that transport
  const std::weak_ptr<Pistache::Tcp::Peer> peer_;

  std::mutex mu_;
  bool refused_ = false;                                        // guarded by mu_
  std::optional<std::pair<int, std::string>> pending_refusal_;  // guarded by mu_
  bool close_after_response_ = false;                           // guarded by mu_
  int in_flight_ = 0;                                           // guarded by mu_
  bool mid_request_ = false;                                    // guarded by mu_
  bool in_body_ = false;                                        // guarded by mu_
  bool served_one_ = false;                                     // guarded by mu_
  EdgeClock::time_point since_;                    // guarded by mu_: start of the current wait
  std::optional<EdgeClock::time_point> close_at_;  // guarded by mu_
  bool registered_ = false;                        // guarded by the table's mutex
  bool counted_ = false;                           // guarded by the table's mutex
};

class ConnectionTable {
 public:
  explicit ConnectionTable(EdgeOptions options);
  ~ConnectionTable();
  ConnectionTable(const ConnectionTable&) = delete;
  ConnectionTable& operator=(const ConnectionTable&) = delete;

  const EdgeOptions& options() const { return options_; }

  /// Registers a new connection; false when --max-connections are already open (the
  /// connection is registered all the same, uncounted, until it is closed).
  bool add(const std::shared_ptr<Connection>& conn);
  /// Pistache is about to close the connection's descriptor.
  void remove(const std::shared_ptr<Connection>& conn);
  /// shutdown(2) of the connection's socket, if it is still registered.
  void shutdownSocket(Connection& conn, int how);
  /// Connections counted against --max-connections.
  size_t counted();
  /// Stops the reaper and every later shutdown(2): called before Pistache's endpoint (and the
  /// transports the connections point to) goes away.
  void stop();

 private:
  void reapLoop();

  const EdgeOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> conns_;  // guarded by mu_
  size_t counted_ = 0;                                                  // guarded by mu_
  bool stopping_ = false;                                               // guarded by mu_
  std::thread reaper_;
};

}  // namespace sluice::http
