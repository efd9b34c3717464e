#include "child_process.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace sluice::exec {
namespace {

/// What a child that could not exec writes to the status pipe before _exit(127).
struct ExecFailure {
  int stage;
  int error;
};
enum Stage : int { kSetup = 1, kChdir = 2, kExec = 3 };

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

/// Moves a descriptor that landed on 0, 1 or 2 (an engine started with a closed stdio) above
/// them, so that the child's dup2 onto 0..2 cannot clobber it.
int aboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return moved;
}

bool makePipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  fds[0] = aboveStdio(fds[0]);
  fds[1] = aboveStdio(fds[1]);
  return fds[0] >= 0 && fds[1] >= 0;
}

// ---- in the child, between fork and execve: async-signal-safe calls only

[[noreturn]] void childFail(int status_fd, int stage) {
  const ExecFailure failure{stage, errno};
  ssize_t n = 0;
  do {
    n = ::write(status_fd, &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  ::_exit(127);
}

bool closeRange(unsigned first, unsigned last) {
#ifdef SYS_close_range
  if (first > last) return true;
  return ::syscall(SYS_close_range, first, last, 0u) == 0;
#else
  (void)first;
  (void)last;
  return false;
#endif
}

/// Closes every descriptor from 3 up, except `keep` (the CLOEXEC status pipe).
void closeInherited(int keep, long open_max) {
  const auto k = static_cast<unsigned>(keep);
  if (closeRange(3, k - 1) && closeRange(k + 1, ~0u)) return;
  for (long fd = 3; fd < open_max; ++fd) {
    if (fd != keep) ::close(static_cast<int>(fd));
  }
}

[[noreturn]] void runChild(const char* path, char* const* argv, char* const* envp, const char* cwd,
                           int devnull, int out_w, int err_w, int status_w, pid_t parent,
                           long open_max) {
  if (::setpgid(0, 0) != 0) childFail(status_w, kSetup);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) childFail(status_w, kSetup);
  if (::getppid() != parent) ::_exit(127);  // the engine died before the prctl took effect
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);  // EINVAL for some
  }
  sigset_t none;
  ::sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) childFail(status_w, kSetup);
  if (::dup2(devnull, 0) < 0 || ::dup2(out_w, 1) < 0 || ::dup2(err_w, 2) < 0) {
    childFail(status_w, kSetup);
  }
  if (::chdir(cwd) != 0) childFail(status_w, kChdir);
  closeInherited(status_w, open_max);
  ::execve(path, argv, envp);
  childFail(status_w, kExec);
}

std::vector<char*> pointers(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    signalGroup(SIGKILL);
    ::kill(pid_, SIGKILL);  // in case it never reached its own group
    reap();
  }
  closeAll();
}

void ChildProcess::closeAll() {
  closeFd(out_fd_);
  closeFd(err_fd_);
  closeFd(pidfd_);
}

std::string ChildProcess::spawn(const SpawnSpec& spec) {
  const std::string what = "cannot run '" + spec.path + "': ";
  if (pid_ > 0) return what + "a child is already running";
  // Everything the child uses is prepared here: after fork it allocates nothing.
  std::vector<char*> argv = pointers(spec.argv);
  std::vector<char*> envp = pointers(spec.env);
  const long open_max = ::sysconf(_SC_OPEN_MAX) > 0 ? ::sysconf(_SC_OPEN_MAX) : 1024;
  int out[2] = {-1, -1}, err[2] = {-1, -1}, status[2] = {-1, -1};
  int devnull = aboveStdio(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto closeAllFds = [&] {
    for (int* fd : {&out[0], &out[1], &err[0], &err[1], &status[0], &status[1], &devnull}) {
      closeFd(*fd);
    }
  };
  if (devnull < 0 || !makePipe(out) || !makePipe(err) || !makePipe(status)) {
    const std::string why = std::strerror(errno);
    closeAllFds();
    return what + "cannot create its pipes: " + why;
  }
  // Signals stay blocked across fork, so that no handler of the engine runs in the child before
  // it restores the default dispositions.
  sigset_t all, old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    runChild(spec.path.c_str(), argv.data(), envp.data(), spec.cwd.c_str(), devnull, out[1], err[1],
             status[1], parent, open_max);
  }
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) {
    closeAllFds();
    return what + "fork failed: " + std::strerror(fork_errno);
  }
  pid_ = pid;
  reaped_ = false;
  ::setpgid(pid, pid);  // as the child does itself: whichever comes first (EACCES after exec)
  closeFd(out[1]);
  closeFd(err[1]);
  closeFd(status[1]);
  closeFd(devnull);
  // EOF on the status pipe: its CLOEXEC write end closed with a successful execve.
  ExecFailure failure{};
  size_t got = 0;
  while (got < sizeof failure) {
    const ssize_t n =
        ::read(status[0], reinterpret_cast<char*>(&failure) + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  closeFd(status[0]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  if (got == sizeof failure) {
    reap();
    closeAll();
    pid_ = -1;
    const std::string why = std::strerror(failure.error);
    if (failure.stage == kChdir)
      return what + "cannot change directory to '" + spec.cwd + "': " + why;
    if (failure.stage == kExec) return what + why;
    return what + "cannot set up the child process: " + why;
  }
  for (int fd : {out_fd_, err_fd_}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
#ifdef SYS_pidfd_open
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd_ >= 0) ::fcntl(pidfd_, F_SETFD, FD_CLOEXEC);
#endif
  return "";
}

bool ChildProcess::leaderExited() const {
  if (pid_ <= 0 || reaped_) return true;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;  // reaped elsewhere: gone
  }
  return info.si_pid == pid_;
}

void ChildProcess::signalGroup(int sig) const {
  if (pid_ > 0 && !reaped_) ::kill(-pid_, sig);
}

std::optional<int> ChildProcess::reap() {
  if (pid_ <= 0 || reaped_) return std::nullopt;
  int status = 0;
  pid_t r = -1;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  closeFd(pidfd_);
  if (r != pid_) return std::nullopt;
  return status;
}

void ChildProcess::closeOutput(int fd) {
  if (fd < 0) return;
  if (fd == out_fd_) closeFd(out_fd_);
  if (fd == err_fd_) closeFd(err_fd_);
}

std::string signalName(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig); abbrev != nullptr) {
    return std::string("SIG") + abbrev;
  }
  return "signal " + std::to_string(sig);
}

}  // namespace sluice::exec
