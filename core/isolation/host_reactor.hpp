// One reactor serves every host process's socket (process isolation): an epoll thread reads the
// frames of all hosts; four threads answer their host-function calls (state reads and writes
// take the store's time; the reactor never waits for them); one more checks the resident memory
// of the hosts that have runtime.memory_limit_mb. 1000 hosts cost these six threads, not a
// reader each (docs/isolation.md, "One reactor for every host").
#pragma once

#include <memory>
#include <thread>

#include "core/isolation/host_channel.hpp"

namespace sluice {

class HostReactor {
 public:
  /// The process's reactor, started on first use; it lives as long as the process.
  static HostReactor& instance();

  /// Serves `ch` from now on: its frames, and its end (its pidfd says it exited and waitpid
  /// tells how, or its spawner reports it reaped). The socket stays blocking for senders; the
  /// reactor reads it with MSG_DONTWAIT.
  void add(const std::shared_ptr<Channel>& ch);

  /// The thread that calls Channel::frame() and Channel::ended().
  std::thread::id thread() const;

  struct State;

 private:
  HostReactor();
  State* s_;
};

}  // namespace sluice
