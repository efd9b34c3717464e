// The host protocol's frames (host_protocol.hpp), and the fork+exec of a host process.
#include "core/isolation/host_protocol.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

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

bool spawnHost(const std::string& exe_path, pid_t* out_pid, int* out_fd, std::string* error) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    *error = std::string("cannot create the host's socket: ") + std::strerror(errno);
    return false;
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::string exe = exe_path;
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
  *out_fd = sv[0];
  *out_pid = pid;
  return true;
}

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

}  // namespace proto

}  // namespace sluice
