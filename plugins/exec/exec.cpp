// `exec`: runs config.argv as a supervised child process on the flow's own thread (docs/exec.md).
//
// No shell; argv[0] must resolve (absolute, or a bare name on the engine's PATH) into a directory
// of SLUICE_EXEC_ALLOW (the engine's --exec-allow; unset = the type is off). The child runs in a
// process group of its own with a minimal environment; its stdout and stderr go to the flow's
// log. A stop sends SIGTERM to the group, a cancellation (hard stop, or a soft stop past its
// timeout) SIGKILL; pause and resume send SIGSTOP and SIGCONT. When the leader exits, whatever
// is left of its group is killed. Exit codes in success_codes complete the flow; any other exit,
// a signal or the timeout fails it.
#define SLUICE_PLUGIN_MIN_ABI_MINOR 4  // Status::done() (1.3), Host::output() (1.4)

#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <sluice/sdk/flow.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "exec_config.hpp"

namespace {

using sluice::sdk::Status;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kPollInterval{100};  // re-checks pause, timeout and cancellation
constexpr milliseconds kPollFallback{50};   // without a pidfd, or once a stop was seen
constexpr milliseconds kDrainGrace{1000};   // output still read after the group was killed

class ExecFlow : public sluice::sdk::ThreadFlow {
 public:
  static constexpr const char* kName = "exec";
  static constexpr const char* kDescription =
      "Runs config.argv (no shell) as a supervised child process: output to the flow's log, "
      "stop/pause as signals to its process group; completes on a success exit code.";
  static constexpr const char* kConfigSchema = R"({
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "required": ["argv"],
    "properties": {
      "argv": {"type": "array", "minItems": 1, "items": {"type": "string"}},
      "env": {"type": "object", "additionalProperties": {"type": "string"}},
      "cwd": {"type": "string"},
      "timeout": {"type": "string"},
      "success_codes": {
        "type": "array", "minItems": 1,
        "items": {"type": "integer", "minimum": 0, "maximum": 255}
      }
    }
  })";

  static void validate(const sluice::sdk::Config& config, sluice::sdk::Problems& problems) {
    for (const auto& p : sluice::exec::validateExecConfig(config.root())) {
      problems.add(p.path, p.message);
    }
  }

  ExecFlow(sluice::sdk::Host host, const sluice::sdk::Config& config) : ThreadFlow(host) {
    const auto problems = sluice::exec::parseExecConfig(config.root(), &config_);
    if (!problems.empty()) {
      throw std::invalid_argument("config" + problems.front().path + ": " +
                                  problems.front().message);
    }
  }

  Status start() override {
    if (config_.cwd) {
      const auto dir = host().resolve(*config_.cwd);
      if (!dir.ok()) return Status::error("cwd " + dir.error);
      cwd_ = dir.path.string();
    } else {
      cwd_ = std::string(host().filesRoot());
    }
    struct stat st {};
    if (::stat(cwd_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::error("cwd '" + cwd_ + "' is not a directory");
    }
    if (auto exe = sluice::exec::findAllowedExecutable(config_.argv[0]); !exe.ok()) {
      return Status::error(exe.error);
    }
    return Status::ok();
  }

  Status run() override;

  Status stop(sluice::sdk::StopMode mode) override {
    // run() owns the child and reaps it before it returns; a hard stop that comes while it
    // still runs only hastens the end.
    if (mode == sluice::sdk::StopMode::Hard) signalGroup(SIGKILL);
    return Status::ok();
  }
  Status pause() override {
    signalGroup(SIGSTOP);
    return Status::ok();
  }
  Status resume() override {
    signalGroup(SIGCONT);
    return Status::ok();
  }

 private:
  /// From the engine's threads (pause, resume, stop): signals the group while run() has not
  /// reaped its leader. Under the lock, so that run() cannot reap (and free the pgid for reuse)
  /// between the check and the kill.
  void signalGroup(int sig) {
    std::lock_guard lock(mu_);
    if (pgid_ > 0) ::kill(-pgid_, sig);
  }
  void publishGroup(pid_t pgid) {
    std::lock_guard lock(mu_);
    pgid_ = pgid;
  }
  /// Reads what one pipe has ready into the flow's log; false at EOF (the pipe is closed).
  bool drain(sluice::exec::ChildProcess& child, int fd, int32_t stream, int max_reads);
  Status result(std::optional<int> status, bool stopped, bool timed_out);

  sluice::exec::ExecConfig config_;
  std::string cwd_;
  std::mutex mu_;
  pid_t pgid_ = 0;  // guarded by mu_: the child's process group while it is not reaped
  std::vector<char> buffer_ = std::vector<char>(64 * 1024);
};

bool ExecFlow::drain(sluice::exec::ChildProcess& child, int fd, int32_t stream, int max_reads) {
  for (int i = 0; i < max_reads; ++i) {
    const ssize_t n = ::read(fd, buffer_.data(), buffer_.size());
    if (n > 0) {
      host().output(stream, std::string_view(buffer_.data(), static_cast<size_t>(n)));
      host().counterAdd("bytes_out", n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    child.closeOutput(fd);  // EOF, or an error that ends the stream just the same
    return false;
  }
  return true;
}

Status ExecFlow::run() {
  if (host().stopRequested()) return Status::ok();
  // The executable and the allow-list again: either may have changed since validation.
  const auto exe = sluice::exec::findAllowedExecutable(config_.argv[0]);
  if (!exe.ok()) return Status::error(exe.error);
  sluice::exec::ChildProcess child;  // reaped on every way out of this function
  const sluice::exec::SpawnSpec spec{
      exe.path, config_.argv, sluice::exec::childEnvironment(host().flowId(), config_), cwd_};
  if (std::string why = child.spawn(spec); !why.empty()) return Status::error(why);
  const pid_t pid = child.pid();
  publishGroup(pid);
  // Declared after `child`, so destroyed before it: on every way out (an error return, an
  // exception) the pgid is withdrawn before ~ChildProcess reaps the leader and frees it.
  struct Unpublish {
    ExecFlow* flow;
    ~Unpublish() { flow->publishGroup(0); }
  } unpublish{this};
  host().counterAdd("runs");
  host().gaugeSet("pid", pid);
  host().info("started " + exe.path + " as pid " + std::to_string(pid));

  bool paused = false, stop_sent = false, kill_sent = false, timed_out = false, exited = false;
  std::optional<int> status;
  milliseconds active{0};  // time the child ran unpaused, for the timeout
  Clock::time_point last = Clock::now(), drain_until{};
  while (true) {
    const Clock::time_point now = Clock::now();
    const bool cancelled = host().cancelled();
    const bool stop_seen = cancelled || host().stopRequested();
    if (!exited) {
      if (!paused) active += std::chrono::duration_cast<milliseconds>(now - last);
      if (cancelled && !kill_sent) {
        child.signalGroup(SIGKILL);
        kill_sent = stop_sent = true;
      } else if (stop_seen && !stop_sent) {
        child.signalGroup(SIGTERM);
        child.signalGroup(SIGCONT);  // a stopped (paused) process handles SIGTERM only then
        stop_sent = true;
        paused = false;
      } else if (config_.timeout && active >= *config_.timeout && !kill_sent) {
        child.signalGroup(SIGKILL);
        kill_sent = timed_out = true;
      }
      // Pause: reconciled here as well as by the hooks (a pause before the child existed, a
      // resume racing a pause).
      const bool want_paused = host().pauseRequested() && !stop_sent && !kill_sent;
      if (want_paused != paused) {
        child.signalGroup(want_paused ? SIGSTOP : SIGCONT);
        paused = want_paused;
      }
    } else if ((child.stdoutFd() < 0 && child.stderrFd() < 0) || now >= drain_until || cancelled) {
      break;
    }
    last = now;

    std::vector<pollfd> fds;
    for (int fd : {child.stdoutFd(), child.stderrFd()}) {
      if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    }
    const int exit_fd = exited ? -1 : child.exitFd();
    if (exit_fd >= 0) fds.push_back({exit_fd, POLLIN, 0});
    // The stop descriptor stays readable once raised: watched only until the stop is seen.
    if (!stop_seen && host().stopFd() >= 0) fds.push_back({host().stopFd(), POLLIN, 0});
    milliseconds wait = stop_seen || (!exited && exit_fd < 0) ? kPollFallback : kPollInterval;
    if (exited) {
      wait = std::min(wait, std::chrono::duration_cast<milliseconds>(drain_until - now));
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait.count(), 0))) < 0 &&
        errno != EINTR) {
      return Status::error(std::string("poll failed: ") + std::strerror(errno));
    }
    bool leader_exited = false;
    for (const pollfd& p : fds) {
      if (p.revents == 0 || p.fd == host().stopFd()) continue;
      if (p.fd == exit_fd) {
        leader_exited = true;
      } else {
        const int32_t stream =
            p.fd == child.stdoutFd() ? SLUICE_OUTPUT_STDOUT : SLUICE_OUTPUT_STDERR;
        drain(child, p.fd, stream, 4);
      }
    }
    if (!exited && (leader_exited || (exit_fd < 0 && child.leaderExited()))) {
      // The leader is gone but not reaped, so its pgid is still ours: nothing of the group
      // outlives it.
      child.signalGroup(SIGKILL);
      publishGroup(0);
      status = child.reap();
      exited = true;
      drain_until = Clock::now() + kDrainGrace;
      host().gaugeSet("pid", 0);
    }
  }
  // What is still buffered (a process outside the group may hold a pipe open: not waited for).
  if (child.stdoutFd() >= 0) drain(child, child.stdoutFd(), SLUICE_OUTPUT_STDOUT, 64);
  if (child.stderrFd() >= 0) drain(child, child.stderrFd(), SLUICE_OUTPUT_STDERR, 64);
  return result(status, stop_sent && !timed_out, timed_out);
}

Status ExecFlow::result(std::optional<int> status, bool stopped, bool timed_out) {
  if (status && WIFEXITED(*status)) {
    host().gaugeSet("exit_code", WEXITSTATUS(*status));
  } else if (status && WIFSIGNALED(*status)) {
    host().gaugeSet("exit_code", 128 + WTERMSIG(*status));
  }
  if (timed_out) {
    host().warn("timed out: killed the process group");
    return Status::error("timed out after " + config_.timeout_text +
                         " (the process group was killed)");
  }
  if (stopped) {
    host().info("stopped: the process group was signalled");
    return Status::ok();
  }
  if (!status) return Status::error("the exit status of the child is unknown (reaped elsewhere)");
  if (WIFSIGNALED(*status)) {
    const int sig = WTERMSIG(*status);
    return Status::error("killed by signal " + std::to_string(sig) + " (" +
                         sluice::exec::signalName(sig) + ")");
  }
  const int code = WEXITSTATUS(*status);
  std::string codes;
  for (int c : config_.success_codes) {
    if (c == code) {
      host().info("exited with code " + std::to_string(code));
      return Status::done();
    }
    codes += (codes.empty() ? "" : ", ") + std::to_string(c);
  }
  return Status::error("exited with code " + std::to_string(code) + " (success codes: " + codes +
                       ")");
}

}  // namespace

SLUICE_PLUGIN("exec", "1.0.0", ExecFlow)
