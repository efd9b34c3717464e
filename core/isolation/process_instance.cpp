// Process isolation, engine side: a plugin instance living in a host process of its own.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "core/isolation/host_protocol.hpp"
#include "core/isolation/instance.hpp"

namespace sluice {
namespace proto {

bool writeFrame(int fd, const std::string& frame) {
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::send(fd, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

namespace {
bool readAll(int fd, char* p, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::recv(fd, p + done, n - done, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += static_cast<size_t>(r);
  }
  return true;
}
}  // namespace

std::optional<std::string> readFrame(int fd) {
  uint32_t n = 0;
  if (!readAll(fd, reinterpret_cast<char*>(&n), 4)) return std::nullopt;
  if (n < 5 || n > kMaxFrame) return std::nullopt;
  std::string body(n, '\0');
  if (!readAll(fd, body.data(), n)) return std::nullopt;
  return body;
}

}  // namespace proto

namespace {

std::string describeExit(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "host process killed by signal " + std::to_string(sig) + " (SIG" +
           (name != nullptr ? name : "?") + ")";
  }
  if (WIFEXITED(status)) {
    return "host process exited with code " + std::to_string(WEXITSTATUS(status));
  }
  return "host process ended";
}

const char* hookName(proto::Kind k) {
  switch (k) {
    case proto::Kind::kCreate:
      return "create";
    case proto::Kind::kStart:
      return "start";
    case proto::Kind::kStop:
      return "stop";
    case proto::Kind::kPause:
      return "pause";
    case proto::Kind::kResume:
      return "resume";
    case proto::Kind::kStep:
      return "step";
    case proto::Kind::kReconfigure:
      return "reconfigure";
    case proto::Kind::kRun:
      return "run";
    case proto::Kind::kDestroy:
      return "destroy";
    default:
      return "?";
  }
}

class ProcessInstance final : public Instance {
 public:
  ProcessInstance(const sluice_host* host, std::shared_ptr<const FlowType> type,
                  std::function<void(const std::string&)> on_death)
      : host_(host), type_(std::move(type)), on_death_(std::move(on_death)) {}

  ~ProcessInstance() override {
    if (pid_ > 0) {
      {
        std::lock_guard lock(mu_);
        expected_exit_ = true;
      }
      if (!isDead()) {
        std::array<char, 256> buf{};
        sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
        call(proto::Writer(proto::Kind::kDestroy, nextId()), proto::Kind::kDestroy, nullptr, &e,
             std::chrono::milliseconds(2000));
      }
      // The host exits after destroy; make sure of it, then reap it.
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::milliseconds(2000), [&] { return dead_; })) {
        lock.unlock();
        ::kill(pid_, SIGKILL);
      }
    }
    if (reader_.joinable()) reader_.join();
    stop_watch_ = true;
    if (watch_.joinable()) watch_.join();
    if (fd_ >= 0) ::close(fd_);
  }

  bool spawn(const ProcessOptions& options, const std::string& config, std::string* error) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      *error = std::string("cannot create the host's socket: ") + std::strerror(errno);
      return false;
    }
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    exe_ = options.host_executable;
    std::string exe = exe_;
    std::string arg0 = "sluice-flow-host";
    std::string arg1 = "--flow-host";
    std::string arg2 = "3";
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      *error = std::string("cannot fork the host process: ") + std::strerror(errno);
      ::close(sv[0]);
      ::close(sv[1]);
      return false;
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      if (sv[1] == 3) {
        ::fcntl(3, F_SETFD, 0);
      } else {
        ::dup2(sv[1], 3);
      }
      ::syscall(SYS_close_range, 4U, ~0U, 0U);  // no engine descriptor leaks into the host
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(exe.c_str(), argv);
      ::_exit(127);
    }
    ::close(sv[1]);
    fd_ = sv[0];
    pid_ = pid;
    reader_ = std::thread([this] { readLoop(); });
    if (options.memory_limit_mb > 0) {
      limit_mb_ = options.memory_limit_mb;
      watch_ = std::thread([this] { watchMemory(); });
    }
    std::array<char, 1024> buf{};
    sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
    proto::Writer w(proto::Kind::kCreate, nextId());
    w.str(type_->file)
        .str(type_->name)
        .str(std::string(host_->flow_id, host_->flow_id_len))
        .str(std::string(host_->files_root, host_->files_root_len))
        .str(config);
    if (call(std::move(w), proto::Kind::kCreate, nullptr, &e, std::chrono::milliseconds(0)) !=
        SLUICE_OK) {
      buf.back() = '\0';
      *error = std::string("create hook failed: ") + buf.data();
      return false;
    }
    created_ = true;
    return true;
  }

  int32_t start(sluice_error* e) override { return simple(proto::Kind::kStart, e); }
  int32_t stop(int32_t mode, sluice_error* e) override {
    proto::Writer w(proto::Kind::kStop, nextId());
    w.i32(mode);
    return call(std::move(w), proto::Kind::kStop, nullptr, e);
  }
  int32_t pause(sluice_error* e) override { return simple(proto::Kind::kPause, e); }
  int32_t resume(sluice_error* e) override { return simple(proto::Kind::kResume, e); }
  int32_t step(uint32_t* next, sluice_error* e) override {
    proto::Writer w(proto::Kind::kStep, nextId());
    w.u32(*next);
    return call(std::move(w), proto::Kind::kStep, next, e);
  }
  int32_t reconfigure(const std::string& config, sluice_error* e) override {
    proto::Writer w(proto::Kind::kReconfigure, nextId());
    w.str(config);
    return call(std::move(w), proto::Kind::kReconfigure, nullptr, e);
  }
  int32_t run(sluice_error* e) override { return simple(proto::Kind::kRun, e); }
  bool canReconfigure() const override { return type_->def->reconfigure != nullptr; }
  bool kill() override {
    std::lock_guard lock(mu_);
    if (dead_ || pid_ <= 0) return true;
    if (kill_reason_.empty())
      kill_reason_ =
          "host process killed (SIGKILL) by the engine: plugin code did not return in time";
    ::kill(pid_, SIGKILL);
    return true;
  }

 private:
  struct Reply {
    int32_t status = SLUICE_ERROR;
    uint32_t next = 0;
    std::string error;
  };

  uint32_t nextId() { return next_id_.fetch_add(1); }

  bool isDead() {
    std::lock_guard lock(mu_);
    return dead_;
  }

  int32_t simple(proto::Kind k, sluice_error* e) {
    return call(proto::Writer(k, nextId()), k, nullptr, e);
  }

  // Sends a hook call and waits for its result or the host's death. `bound` 0 = no bound (the
  // flow's deadlines kill the host when needed).
  int32_t call(proto::Writer w, proto::Kind k, uint32_t* next, sluice_error* e,
               std::chrono::milliseconds bound = std::chrono::milliseconds(0)) {
    const std::string& frame = w.frame();
    uint32_t id;
    std::memcpy(&id, frame.data() + 5, 4);
    std::unique_lock lock(mu_);
    if (dead_) {
      sluice_error_set(e, (death_ + " (before the " + hookName(k) + " hook)").c_str());
      return SLUICE_ERROR;
    }
    waiting_.insert({id, k});
    lock.unlock();
    bool sent;
    {
      std::lock_guard wl(write_mu_);
      sent = proto::writeFrame(fd_, frame);
    }
    lock.lock();
    auto ready = [&] { return dead_ || results_.count(id) != 0; };
    if (!sent) {
      cv_.wait_for(lock, std::chrono::milliseconds(2000), ready);
    } else if (bound.count() > 0) {
      cv_.wait_for(lock, bound, ready);
    } else {
      cv_.wait(lock, ready);
    }
    waiting_.erase(id);
    auto it = results_.find(id);
    if (it == results_.end()) {
      std::string why = dead_ ? death_ : "host process did not answer";
      sluice_error_set(e, (why + " while running the " + hookName(k) + " hook").c_str());
      return SLUICE_ERROR;
    }
    Reply r = std::move(it->second);
    results_.erase(it);
    if (next != nullptr) *next = r.next;
    if (r.status != SLUICE_OK) sluice_error_set(e, r.error.c_str());
    return r.status;
  }

  void send(const std::string& frame) {
    std::lock_guard wl(write_mu_);
    proto::writeFrame(fd_, frame);
  }

  void readLoop() {
    while (auto body = proto::readFrame(fd_)) {
      proto::Reader r(*body);
      switch (r.kind()) {
        case proto::Kind::kResult: {
          Reply reply;
          reply.status = r.i32();
          reply.next = r.u32();
          reply.error = r.str();
          std::lock_guard lock(mu_);
          if (waiting_.count(r.id()) != 0) results_[r.id()] = std::move(reply);
          cv_.notify_all();
          break;
        }
        case proto::Kind::kLog: {
          int32_t level = r.i32();
          std::string msg = r.str();
          host_->log(host_->ctx, level, msg.data(), msg.size());
          break;
        }
        case proto::Kind::kCounter: {
          std::string name = r.str();
          int64_t delta = r.i64();
          host_->counter_add(host_->ctx, name.data(), name.size(), delta);
          break;
        }
        case proto::Kind::kGauge: {
          std::string name = r.str();
          double v = r.f64();
          host_->gauge_set(host_->ctx, name.data(), name.size(), v);
          break;
        }
        case proto::Kind::kCall:
          answerCall(r);
          break;
        default:
          break;
      }
    }
    // EOF: the host is gone (exited, crashed, or killed).
    int status = 0;
    ::waitpid(pid_, &status, 0);
    std::string how;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !created_) {
      std::lock_guard lock(mu_);
      kill_reason_ = "host process could not run " + exe_ + " --flow-host (exit code 127)";
    }
    bool report;
    {
      std::lock_guard lock(mu_);
      how = kill_reason_.empty() ? describeExit(status) : kill_reason_;
      dead_ = true;
      death_ = how;
      report = !expected_exit_ && waiting_.empty();
    }
    cv_.notify_all();
    if (report && on_death_) on_death_(how + " while no hook was running");
  }

  void answerCall(proto::Reader& r) {
    auto fn = static_cast<proto::Fn>(r.u8());
    std::string key = r.str();
    std::string value = r.str();
    int32_t status = SLUICE_OK;
    int64_t number = 0;
    std::string text;
    switch (fn) {
      case proto::Fn::kIsCancelled:
        number = host_->is_cancelled(host_->ctx);
        break;
      case proto::Fn::kIsPaused:
        number = host_->is_paused(host_->ctx);
        break;
      case proto::Fn::kIsStopRequested:
        number = host_->is_stop_requested(host_->ctx);
        break;
      case proto::Fn::kStateGet: {
        auto sink = [](void* c, const char* v, size_t n) {
          static_cast<std::string*>(c)->assign(v, n);
        };
        status = host_->state_get(host_->ctx, key.data(), key.size(), sink, &text);
        break;
      }
      case proto::Fn::kStatePut:
        status = host_->state_put(host_->ctx, key.data(), key.size(), value.data(), value.size());
        break;
      case proto::Fn::kStateDelete:
        status = host_->state_delete(host_->ctx, key.data(), key.size());
        break;
    }
    proto::Writer w(proto::Kind::kCallReply, r.id());
    w.i32(status).i64(number).str(text);
    send(w.frame());
  }

  // Resident memory of the host, checked every 50 ms against runtime.memory_limit_mb.
  void watchMemory() {
    const std::string path = "/proc/" + std::to_string(pid_) + "/status";
    while (!stop_watch_) {
      std::ifstream in(path);
      std::string line;
      uint64_t rss_kb = 0;
      while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) rss_kb = std::stoull(line.substr(6));
      }
      if (rss_kb > static_cast<uint64_t>(limit_mb_) * 1024) {
        std::lock_guard lock(mu_);
        if (!dead_) {
          kill_reason_ = "host process killed (SIGKILL): resident memory " +
                         std::to_string(rss_kb / 1024) + " MB over runtime.memory_limit_mb " +
                         std::to_string(limit_mb_);
          ::kill(pid_, SIGKILL);
        }
        return;
      }
      {
        std::lock_guard lock(mu_);
        if (dead_) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  const sluice_host* host_;  // the engine's table for this flow, outlives the instance
  std::shared_ptr<const FlowType> type_;
  std::function<void(const std::string&)> on_death_;
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string exe_;
  std::atomic<bool> created_{false};
  std::thread reader_;
  std::thread watch_;
  std::atomic<bool> stop_watch_{false};
  uint32_t limit_mb_ = 0;
  std::atomic<uint32_t> next_id_{1};
  std::mutex write_mu_;  // one frame at a time on fd_

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, proto::Kind> waiting_;  // guarded by mu_: calls awaiting a result
  std::map<uint32_t, Reply> results_;        // guarded by mu_
  bool dead_ = false;                        // guarded by mu_
  bool expected_exit_ = false;               // guarded by mu_
  std::string death_;                        // guarded by mu_
  std::string kill_reason_;                  // guarded by mu_
};

}  // namespace

std::shared_ptr<Instance> createProcessInstance(const std::shared_ptr<const FlowType>& type,
                                                const sluice_host* host,
                                                const std::string& config_json,
                                                const ProcessOptions& options,
                                                std::function<void(const std::string&)> on_death,
                                                std::string* error) {
  auto instance = std::make_shared<ProcessInstance>(host, type, std::move(on_death));
  if (!instance->spawn(options, config_json, error)) return nullptr;
  return instance;
}

}  // namespace sluice
