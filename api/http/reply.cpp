#include "api/http/reply.hpp"

#include <spdlog/spdlog.h>

#include "api/http/connection.hpp"
#include "api/http/error_json.hpp"

namespace sluice::http {

using namespace Pistache;

void InFlight::enter() {
  std::lock_guard lock(mu_);
  ++count_;
}

void InFlight::leave() {
  std::lock_guard lock(mu_);
  if (--count_ == 0) cv_.notify_all();
}

bool InFlight::waitIdle(std::chrono::milliseconds bound) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, bound, [&] { return count_ == 0; });
}

Reply::Reply(Http::ResponseWriter writer, std::shared_ptr<Connection> conn,
             std::shared_ptr<InFlight> in_flight, Resume resume)
    : writer_(std::move(writer)),
      conn_(std::move(conn)),
      in_flight_(std::move(in_flight)),
      resume_(resume) {
  in_flight_->enter();
}

Reply::~Reply() {
  if (!sent_) send(500, errorJson("internal error: the request was not answered"));
}

void Reply::send(int code, const std::string& body, const std::vector<Http::Method>& allow) {
  if (sent_.exchange(true)) return;
  auto written = Async::Promise<ssize_t>::rejected(std::runtime_error("response not sent"));
  try {
    writer_.headers().add<Http::Header::ContentType>(MIME(Application, Json));
    if (!allow.empty()) writer_.headers().add<Http::Header::Allow>(allow);
    written = writer_.send(static_cast<Http::Code>(code), body);
  } catch (const std::exception& e) {
    spdlog::warn("cannot send response: {}", e.what());
  }
  const bool more = conn_ && conn_->endRequest(std::move(written));
  in_flight_->leave();
  // Requests pipelined behind this one waited for its response: handle them now.
  if (more && resume_) resume_(conn_);
}

}  // namespace sluice::http
