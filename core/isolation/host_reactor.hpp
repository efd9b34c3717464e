// One reactor serves every host process's socket (process isolation): an epoll thread reads the
// frames of all hosts, a second thread answers their host-function calls (state reads and
// writes take the store's time; the reactor never waits for them), and a third checks the
// resident memory of the hosts that have runtime.memory_limit_mb. 1000 hosts cost these three
// threads, not one reader each (docs/isolation.md, "One reactor for every host").
#pragma once

#include <memory>
#include <thread>

#include "core/isolation/host_channel.hpp"

namespace sluice {

class HostReactor {
 public:
  /// The process's reactor, started on first use; it lives as long as the process.
  static HostReactor& instance();

  /// Serves `ch` from now on: its frames, its end (when its socket reaches EOF, when its pidfd
  /// says it exited, or when its spawner reports it reaped). `ch->fd` becomes non-blocking.
  void add(const std::shared_ptr<Channel>& ch);

  /// The thread that calls Channel::frame() and Channel::ended().
  std::thread::id thread() const;

  struct State;

 private:
  HostReactor();
  State* s_;
};

}  // namespace sluice
