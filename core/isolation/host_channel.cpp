// The engine's side of one host process: frames from the host, and its end.
#include "core/isolation/host_channel.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

namespace sluice {

Channel::~Channel() {
  if (fd >= 0) ::close(fd);
  if (pidfd >= 0) ::close(pidfd);
}

void Channel::sigkill() const {
  if (pidfd >= 0) {
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0U);
  } else if (!reaped) {
    ::kill(pid, SIGKILL);
  }
}

bool Channel::send(const std::string& frame) {
  std::lock_guard wl(write_mu);
  return proto::writeFrame(fd, frame);
}

bool Channel::sendReply(const std::string& frame) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  std::lock_guard wl(write_mu);
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd p{fd, POLLOUT, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      spdlog::warn(
          "flow host {}: it did not read the answer to a host-function call within 1 s; "
          "the answer is dropped",
          pid);
      return false;
    }
  }
  return true;
}

void Channel::frame(std::string_view body,
                    const std::function<void(std::function<void()>)>& answer) {
  proto::Reader r(body);
  switch (r.kind()) {
    case proto::Kind::kResult: {
      Reply reply;
      reply.status = r.i32();
      reply.next = r.u32();
      reply.error = r.str();
      std::lock_guard lock(mu);
      if (waiting.count(r.id()) != 0) results[r.id()] = std::move(reply);
      cv.notify_all();
      break;
    }
    case proto::Kind::kLog: {
      int32_t level = r.i32();
      std::string msg = r.str();
      host->log(host->ctx, level, msg.data(), msg.size());
      break;
    }
    case proto::Kind::kOutput: {
      int32_t stream = r.i32();
      std::string bytes = r.str();
      if (host->struct_size >= SLUICE_HOST_SIZE_1_4 && host->output != nullptr) {
        host->output(host->ctx, stream, bytes.data(), bytes.size());
      }
      break;
    }
    case proto::Kind::kCounter: {
      std::string name = r.str();
      int64_t delta = r.i64();
      host->counter_add(host->ctx, name.data(), name.size(), delta);
      break;
    }
    case proto::Kind::kGauge: {
      std::string name = r.str();
      double v = r.f64();
      host->gauge_set(host->ctx, name.data(), name.size(), v);
      break;
    }
    case proto::Kind::kCall:
      answer([this, copy = std::string(body)] { answerCall(copy); });
      break;
    default:
      break;
  }
}

void Channel::answerCall(std::string_view body) {
  proto::Reader r(body);
  auto fn = static_cast<proto::Fn>(r.u8());
  std::string key = r.str();
  std::string value = r.str();
  int32_t status = SLUICE_OK;
  int64_t number = 0;
  std::string text;
  auto sink = [](void* c, const char* v, size_t n) { static_cast<std::string*>(c)->assign(v, n); };
  switch (fn) {
    case proto::Fn::kIsCancelled:
      number = host->is_cancelled(host->ctx);
      break;
    case proto::Fn::kIsPaused:
      number = host->is_paused(host->ctx);
      break;
    case proto::Fn::kIsStopRequested:
      number = host->is_stop_requested(host->ctx);
      break;
    case proto::Fn::kStateGet:
      status = host->state_get(host->ctx, key.data(), key.size(), sink, &text);
      break;
    case proto::Fn::kStatePut:
      status = host->state_put(host->ctx, key.data(), key.size(), value.data(), value.size());
      break;
    case proto::Fn::kStateDelete:
      status = host->state_delete(host->ctx, key.data(), key.size());
      break;
    case proto::Fn::kStateLookup:
      status = host->state_lookup(host->ctx, key.data(), key.size(), sink, &text);
      break;
  }
  proto::Writer w(proto::Kind::kCallReply, r.id());
  w.i32(status).i64(number).str(text);
  sendReply(w.frame());
}

void Channel::ended(int status) {
  std::string how;
  bool report;
  {
    std::lock_guard lock(mu);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !created) {
      kill_reason = "host process could not run " + exe + " --flow-host (exit code 127)";
    }
    how = kill_reason.empty() ? proto::describeExit(status) : kill_reason;
    dead = true;
    death = how;
    report = !expected_exit && waiting.empty();
  }
  cv.notify_all();
  // The callback may drop the last reference to the flow and so to the Instance: its
  // destructor sees it runs on the reactor's thread and does not wait for it.
  auto report_to = std::move(on_death);
  on_death = nullptr;
  if (report && report_to) report_to(how + " while no hook was running");
  std::lock_guard lock(mu);
  reader_done = true;
  cv.notify_all();
}

}  // namespace sluice
