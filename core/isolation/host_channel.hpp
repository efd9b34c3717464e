// The engine's side of one host process: its socket, the hook calls awaiting a result, and how
// the host ended. The host reactor (host_reactor.hpp) reads the socket and calls frame() and
// ended(); ProcessInstance (process_instance.cpp) sends hook calls and waits on `cv`.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/isolation/host_protocol.hpp"
#include "core/isolation/instance.hpp"

namespace sluice {

class HostSpawner;

struct Channel {
  HostTable host;  // co-owned: host functions may be called until the host ended
  std::function<void(const std::string&)> on_death;
  pid_t pid = -1;
  int fd = -1;
  int pidfd = -1;                  // signals go through it when set
  HostSpawner* spawner = nullptr;  // the zygote that forked the host (it reaps it), or none
  uint64_t serial = 0;             // the host's serial at its spawner
  std::string exe;
  uint32_t limit_mb = 0;
  uint64_t reactor_id = 0;          // the host's id at the reactor
  std::atomic<bool> reaped{false};  // without a pidfd: the engine reaped it (its pid is free)
  std::atomic<bool> created{false};
  std::mutex write_mu;  // one frame at a time on fd

  struct Reply {
    int32_t status = SLUICE_ERROR;
    uint32_t next = 0;
    std::string error;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint32_t, proto::Kind> waiting;  // guarded by mu: calls awaiting a result
  std::map<uint32_t, Reply> results;        // guarded by mu
  bool dead = false;                        // guarded by mu
  bool expected_exit = false;               // guarded by mu
  bool reader_done = false;                 // guarded by mu: ended() returned
  std::string death;                        // guarded by mu
  std::string kill_reason;                  // guarded by mu

  // The reactor's (only its thread touches them).
  std::string inbuf;        // bytes read, not yet a whole frame
  bool reading = true;      // the socket is still polled (not at EOF)
  bool exit_known = false;  // ended() ran

  ~Channel();

  /// SIGKILL to the host: through its pidfd when it has one, which cannot reach another process
  /// once the host was reaped.
  void sigkill() const;
  /// Sends one frame; false when the host is gone.
  bool send(const std::string& frame);
  /// Sends the answer to a host-function call, waiting at most 1 s for room in the socket (a
  /// host that stopped reading must not hold up the threads that answer every host's calls).
  bool sendReply(const std::string& frame);

  /// One frame the host sent (body without its length). Results, logs, output, metrics run
  /// here; a host-function call is answered through `answer` (run elsewhere: it may take the
  /// store's time).
  void frame(std::string_view body, const std::function<void(std::function<void()>)>& answer);
  /// Answers a kCall frame (any thread).
  void answerCall(std::string_view body);
  /// The host ended with `wait_status` and every frame it sent was handed to frame(): marks it
  /// dead, wakes the callers, reports a death while no hook ran.
  void ended(int wait_status);
};

}  // namespace sluice
