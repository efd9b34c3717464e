// A strand: operations run one at a time, in the order posted, on a ThreadPool's workers.
//
// Why not boost::asio::strand: the engine's pool must add a replacement worker when plugin code
// pins one (thread isolation) and retire it when that code returns, which asio::thread_pool
// cannot do; and a queued operation must be droppable when the pool stops (it holds the last
// references to its flow). This is the 40 lines asio's strand would replace.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "core/runtime/executor.hpp"
#include "core/runtime/task.hpp"

namespace sluice {

class Strand : public std::enable_shared_from_this<Strand> {
 public:
  explicit Strand(ThreadPool* pool) : pool_(pool) {}
  Strand(const Strand&) = delete;
  Strand& operator=(const Strand&) = delete;

  /// Queues `op` (any thread, never blocks on an op). One op runs per pool turn, so a busy
  /// strand does not starve the others.
  void post(Task op);
  /// Forgets queued ops (the pool stopped: nothing will run them). Destroys them outside the
  /// lock: they may hold the last references to their owner.
  void dropQueued();
  /// Ops queued and not yet run (tests).
  size_t queued() const;

 private:
  class Turn;
  void schedule();  // posts a turn to the pool
  void drain();

  ThreadPool* pool_;  // borrowed, outlives the strand's ops
  mutable std::mutex mu_;
  // guarded by mu_: the queue is ops_[head_..]. A vector, not a deque: an empty std::deque
  // allocates 576 bytes, and every flow has a strand (100,000 flows: 58 MB).
  std::vector<Task> ops_;
  size_t head_ = 0;      // guarded by mu_
  bool active_ = false;  // guarded by mu_: a drain is posted or running
};

}  // namespace sluice
