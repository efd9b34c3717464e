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

void enterHelperChild(pid_t parent, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  if (fd == 3) {
    ::fcntl(3, F_SETFD, 0);
  } else {
    ::dup2(fd, 3);
  }
  ::syscall(SYS_close_range, 4U, ~0U, 0U);  // nothing of the parent's leaks into the child
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

bool forkExecHelper(const std::string& exe_path, const char* name, const char* mode, int type,
                    pid_t* out_pid, int* out_fd, SpawnStep* failed_at) {
  int sv[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) {
    *failed_at = SpawnStep::kSocket;
    return false;
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::string exe = exe_path;
  std::string arg0 = name;
  std::string arg1 = mode;
  std::string arg2 = "3";
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    errno = err;
    *failed_at = SpawnStep::kFork;
    return false;
  }
  if (pid == 0) {
    enterHelperChild(parent, sv[1]);
    ::execv(exe.c_str(), argv);
    ::_exit(127);
  }
  ::close(sv[1]);
  *out_fd = sv[0];
  *out_pid = pid;
  return true;
}

bool spawnHost(const std::string& exe_path, pid_t* out_pid, int* out_fd, std::string* error) {
  SpawnStep failed_at{};
  if (forkExecHelper(exe_path, "sluice-flow-host", "--flow-host", SOCK_STREAM, out_pid, out_fd,
                     &failed_at)) {
    return true;
  }
  *error = std::string(failed_at == SpawnStep::kSocket ? "cannot create the host's socket: "
                                                       : "cannot fork the host process: ") +
           std::strerror(errno);
  return false;
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
