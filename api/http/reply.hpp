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
#include <string>
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
  std::function<bool(int, const std::string&)> before_send_;
  Pistache::Http::ResponseWriter writer_;
  std::shared_ptr<Connection> conn_;  // null for a request Pistache parsed on its own
  std::shared_ptr<InFlight> in_flight_;
  Resume resume_;
  std::atomic<bool> sent_{false};
};

using ReplyPtr = std::shared_ptr<Reply>;

}  // namespace sluice::http
