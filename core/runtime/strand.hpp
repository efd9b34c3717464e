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
#include "core/runtime/small_mutex.hpp"
#include "core/runtime/task.hpp"

namespace sluice {

class Strand {
 public:
  /// Bind it before the first post; or use make().
  explicit Strand(ThreadPool* pool) : pool_(pool) {}
  Strand(const Strand&) = delete;
  Strand& operator=(const Strand&) = delete;

  /// A strand of its own (what bind() takes is its own shared_ptr).
  static std::shared_ptr<Strand> make(ThreadPool* pool);
  /// How the pool's turns hold the strand: a shared_ptr to it, which may share the ownership of
  /// the object it is a member of (a flow's strand lives inside the flow: no allocation and no
  /// control block of its own). Called once, before the first post.
  void bind(const std::shared_ptr<Strand>& self) { self_ = self; }

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
  void schedule();  // posts a turn to the pool (drops the ops when the strand is going away)
  void drain();

  ThreadPool* pool_;  // borrowed, outlives the strand's ops
  std::weak_ptr<Strand> self_;
  mutable SmallMutex mu_;
  // guarded by mu_: the queue is ops_[head_..]. A vector, not a deque: an empty std::deque
  // allocates 576 bytes, and every flow has a strand (100,000 flows: 58 MB).
  std::vector<Task> ops_;
  size_t head_ = 0;      // guarded by mu_
  bool active_ = false;  // guarded by mu_: a drain is posted or running
};

}  // namespace sluice
