#include "api/http/reply.hpp"

#include <spdlog/spdlog.h>

#include "api/http/connection.hpp"
#include "api/http/error_json.hpp"

namespace sluice::http {

using namespace Pistache;

namespace {

// A response header Pistache has no class for (it does not write raw headers in responses).
class NamedHeader : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void write(std::ostream& os) const override { os << value_; }
  uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }

 private:
  std::string name_;
  std::string value_;
};

}  // namespace

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
  if (before_send_) {
    bool recorded = false;
    try {
      recorded = before_send_(code, body);
    } catch (const std::exception& e) {
      spdlog::error("before sending a {} response: {}", code, e.what());
    }
    if (!recorded) {
      // Never acknowledge what the audit log could not record.
      headers_.clear();
      return sendNow(503,
                     errorJson("the request could not be recorded in the audit log; "
                               "nothing was acknowledged, see the server's log"),
                     {});
    }
  }
  sendNow(code, body, allow);
}

void Reply::sendNow(int code, const std::string& body, const std::vector<Http::Method>& allow) {
  auto written = Async::Promise<ssize_t>::rejected(std::runtime_error("response not sent"));
  try {
    writer_.headers().add<Http::Header::ContentType>(MIME(Application, Json));
    if (!allow.empty()) writer_.headers().add<Http::Header::Allow>(allow);
    for (auto& [name, value] : headers_) {
      writer_.headers().add(std::make_shared<NamedHeader>(std::move(name), std::move(value)));
    }
    written = writer_.send(static_cast<Http::Code>(code), body);
  } catch (const std::exception& e) {
    spdlog::warn("cannot send response: {}", e.what());
  }
  const bool more = conn_ && conn_->endRequest(std::move(written));
  in_flight_->leave();
  // Requests pipelined behind this one waited for its response: handle them now.
  if (more && resume_) resume_(conn_);
}

void Reply::header(std::string name, std::string value) {
  headers_.emplace_back(std::move(name), std::move(value));
}

}  // namespace sluice::http
