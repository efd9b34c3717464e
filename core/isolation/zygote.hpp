// The host spawner ("zygote") of process isolation: a small process, `sluice --flow-zygote 3`,
// started once from the engine's executable, that forks one flow host per request instead of
// the engine fork+exec'ing its whole executable for each (docs/isolation.md, "Spawning hosts").
//
// Protocol on a SOCK_SEQPACKET pair (one message per datagram, native byte order: both ends are
// the same executable):
//   zygote -> engine  Ready   once, when it serves
//   engine -> zygote  Spawn   {serial} + the host's end of a new socketpair (SCM_RIGHTS)
//   zygote -> engine  Spawned {serial, pid or -errno} + a pidfd of the host (SCM_RIGHTS)
//   zygote -> engine  Exited  {serial, wait status}, once it reaped the host
// The zygote dies with the engine (PR_SET_PDEATHSIG), a host with the zygote. When the zygote
// dies, every host it forked is killed with it (SIGKILL); the next spawn starts a new zygote.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

namespace sluice {

class HostSpawner {
 public:
  struct Host {
    pid_t pid = -1;
    int pidfd = -1;  // signals reach exactly this process, even once reaped (close it)
    int fd = -1;     // the engine's end of the host's socket (close-on-exec)
    uint64_t serial = 0;
  };

  /// The spawner of `exe` (one per executable, for the life of the process); its zygote is
  /// started on first use.
  static HostSpawner& forExecutable(const std::string& exe);

  /// Forks a host running `--flow-host 3` through the zygote. False (why in *error) when the
  /// zygote cannot be started or does not answer: the caller then spawns the host itself.
  bool spawn(Host* out, std::string* error);

  /// Calls `fn` with the host's wait status once the zygote reaped it: at once when it did
  /// already, else on the spawner's thread (keep it short). When the zygote died meanwhile: the
  /// status of a kill by SIGKILL, which is what its death did to the host. Once per serial.
  void onExit(uint64_t serial, std::function<void(int)> fn);

  /// Whether hosts are spawned through a zygote: not when SLUICE_HOST_SPAWN=exec.
  static bool enabled();

  struct State;

 private:
  explicit HostSpawner(std::string exe);
  State* s_;
};

/// The --flow-zygote mode of the sluice binary: serves spawn requests on `ctl_fd`. The hosts
/// it forks rewrite `argv` (its whole command line) to read `sluice-flow-host --flow-host 3`.
int runZygote(int ctl_fd, int argc, char** argv);

}  // namespace sluice
