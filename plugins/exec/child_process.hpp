// One supervised child process of the `exec` flow type: spawned in a process group of its own
// (pgid = pid) with PR_SET_PDEATHSIG, stdin from /dev/null, stdout and stderr on pipes, no other
// descriptor and no signal disposition of the engine; signalled as a group; reaped exactly once.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace sluice::exec {

/// Everything the child needs, prepared before fork() (the child only makes system calls).
struct SpawnSpec {
  std::string path;               // absolute path of the executable
  std::vector<std::string> argv;  // argv[0] as configured
  std::vector<std::string> env;   // "NAME=value"
  std::string cwd;                // absolute directory
};

class ChildProcess {
 public:
  ChildProcess() = default;
  /// A child still unreaped (an early return, an exception) is SIGKILLed with its group and
  /// reaped here: no process and no zombie outlives the object.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// Forks and executes `spec` from the calling thread (the child's PR_SET_PDEATHSIG follows
  /// that thread: it must live until reap()). "" once the exec succeeded, else why not, such as
  /// "cannot run '/bin/x': Permission denied" (the child is reaped then).
  std::string spawn(const SpawnSpec& spec);

  pid_t pid() const { return pid_; }
  /// Read ends of the child's stdout and stderr (non-blocking), -1 once closed.
  int stdoutFd() const { return out_fd_; }
  int stderrFd() const { return err_fd_; }
  /// A pidfd that becomes readable when the child exits (it is not reaped by that), or -1 when
  /// the kernel has no pidfd_open: then poll leaderExited().
  int exitFd() const { return pidfd_; }
  /// Whether the child has exited, without reaping it (waitid with WNOWAIT).
  bool leaderExited() const;
  /// kill(-pgid, sig) while the child is not reaped (its pgid cannot be reused until then).
  void signalGroup(int sig) const;
  /// Waits for the child and reaps it: its wait status, or nothing when it was reaped elsewhere.
  std::optional<int> reap();
  bool reaped() const { return reaped_; }
  /// Closes one of the read ends (stdoutFd()/stderrFd()).
  void closeOutput(int fd);

 private:
  void closeAll();

  pid_t pid_ = -1;
  bool reaped_ = false;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int pidfd_ = -1;
};

/// "SIGKILL" for 9; "signal 64" style text for a signal without a name.
std::string signalName(int sig);

}  // namespace sluice::exec
