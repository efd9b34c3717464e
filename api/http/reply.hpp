// One response of the REST service, sent exactly once from any thread, and the count of
// requests in flight that a graceful shutdown waits for.
#pragma once

#include <pistache/http.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::http {

class Connection;

/// Requests being handled; closed for new ones while the server drains.
class InFlight {
 public:
  void enter();
  void leave();
  /// Waits until no request is in flight, at most `bound`; false when some still are.
  bool waitIdle(std::chrono::milliseconds bound);
  std::atomic<bool> draining{false};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t count_ = 0;  // guarded by mu_
};

/// The response to one request. Pistache queues the write to the connection's I/O thread, so
/// send() may be called from any thread. A reply dropped unsent answers 500.
class Reply {
 public:
  /// Called after the response, on the sending thread, with input that may now be handled.
  using Resume = void (*)(const std::shared_ptr<Connection>&);

  Reply(Pistache::Http::ResponseWriter writer, std::shared_ptr<Connection> conn,
        std::shared_ptr<InFlight> in_flight, Resume resume = nullptr);
  ~Reply();
  Reply(const Reply&) = delete;
  Reply& operator=(const Reply&) = delete;

  /// Sends `body` as application/json with `code` (and an Allow header for a 405).
  void send(int code, const std::string& body,
            const std::vector<Pistache::Http::Method>& allow = {});

  /// Adds a header to the response. Only before send(), from the thread handling the request.
  void header(std::string name, std::string value);
  /// The body's media type when it is not JSON. Only before send().
  void contentType(std::string type) { content_type_ = std::move(type); }
  /// Runs `observer` with the status actually sent, once, on the sending thread (metrics).
  /// Only before send(), from the thread handling the request.
  void onSent(std::function<void(int)> observer) { on_sent_ = std::move(observer); }

  /// Turns the reply into an open-ended stream (Server-Sent Events): writes a 200 head with
  /// `content_type`, the headers added so far and "Connection: close", and hands the body to
  /// the returned sink. The request stays in flight until the sink ends; the connection then
  /// closes. Null when the connection is already gone.
  std::shared_ptr<class StreamSink> openStream(std::string_view content_type);
  /// Runs `hook` with the status and body just before the response is written (the audit log
  /// makes its entry durable there). When it returns false (or throws), the response is
  /// replaced by a 503 that says the request could not be recorded. Only before send(), from
  /// the thread handling the request.
  void beforeSend(std::function<bool(int, const std::string&)> hook) {
    before_send_ = std::move(hook);
  }

 private:
  void sendNow(int code, const std::string& body, const std::vector<Pistache::Http::Method>& allow);

  std::vector<std::pair<std::string, std::string>> headers_;
  std::string content_type_;  // empty: application/json
  std::function<void(int)> on_sent_;
  std::function<bool(int, const std::string&)> before_send_;
  Pistache::Http::ResponseWriter writer_;
  std::shared_ptr<Connection> conn_;  // null for a request Pistache parsed on its own
  std::shared_ptr<InFlight> in_flight_;
  Resume resume_;
  std::atomic<bool> sent_{false};
};

using ReplyPtr = std::shared_ptr<Reply>;

/// The body of a streamed response. Thread-safe; writes reach the wire in the order given.
class StreamSink : public std::enable_shared_from_this<StreamSink> {
 public:
  StreamSink(std::shared_ptr<Connection> conn, std::shared_ptr<InFlight> in_flight,
             std::function<void(int)> on_sent);
  ~StreamSink();
  StreamSink(const StreamSink&) = delete;
  StreamSink& operator=(const StreamSink&) = delete;

  /// Queues `bytes`; `done(ok)` runs (on an I/O thread) once they are on the wire, or failed.
  /// False, without calling `done`, when the stream has ended or the connection is gone.
  bool write(std::string bytes, std::function<void(bool)> done);
  /// Ends the response once what was written is sent, and closes the connection. Idempotent.
  void end();
  /// False once ended, or once the client has gone.
  bool open() const;

 private:
  std::shared_ptr<Connection> conn_;
  std::shared_ptr<InFlight> in_flight_;
  std::function<void(int)> on_sent_;
  void writeDone();
  /// The response is complete: lets the connection close, and leaves the in-flight count.
  void finishResponse();

  mutable std::mutex mu_;
  bool ended_ = false;     // guarded by mu_: no more writes
  bool finished_ = false;  // guarded by mu_: finishResponse() ran or is running
  int pending_ = 0;        // guarded by mu_: writes not yet on the wire
};

}  // namespace sluice::http
