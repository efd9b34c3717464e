#include "core/store/pg/pg_listener.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

#include "core/store/pg/pg_connection.hpp"

namespace sluice::pg {

Listener::Listener(std::string url, std::vector<std::string> channels,
                   std::function<void(const std::string&, const std::string&)> on_notify,
                   std::function<void()> on_reconnect)
    : url_(std::move(url)),
      channels_(std::move(channels)),
      on_notify_(std::move(on_notify)),
      on_reconnect_(std::move(on_reconnect)),
      thread_([this] { run(); }) {}

Listener::~Listener() {
  stop_ = true;
  thread_.join();
}

bool Listener::waitListening(std::chrono::milliseconds bound) {
  std::unique_lock lock(mu_);
  return listening_cv_.wait_for(lock, bound, [&] { return listening_; });
}

void Listener::run() {
  bool warned = false;
  while (!stop_) {
    auto opened = Connection::open(url_);
    bool listening = opened.ok();
    for (size_t i = 0; listening && i < channels_.size(); ++i) {
      const std::string sql = "LISTEN " + channels_[i];
      listening = opened.value()->exec(sql.c_str()).ok();
    }
    if (!listening) {
      if (!warned) spdlog::warn("store notifications: cannot listen; retrying every second");
      warned = true;
      for (int i = 0; i < 10 && !stop_; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      continue;
    }
    warned = false;
    // Every LISTEN that took effect, the first included: what changed before it was not heard.
    on_reconnect_();
    {
      std::lock_guard lock(mu_);
      listening_ = true;
    }
    listening_cv_.notify_all();
    PGconn* c = opened.value()->get();
    while (!stop_) {
      pollfd fd{PQsocket(c), POLLIN, 0};
      if (fd.fd < 0) break;
      const int ready = ::poll(&fd, 1, 200);
      if (ready < 0) continue;
      if (ready > 0 && PQconsumeInput(c) == 0) break;  // the connection is gone
      while (PGnotify* n = PQnotifies(c)) {
        std::string channel = n->relname, payload = n->extra;
        PQfreemem(n);
        on_notify_(channel, payload);
      }
      if (PQstatus(c) != CONNECTION_OK) break;
    }
  }
}

}  // namespace sluice::pg
