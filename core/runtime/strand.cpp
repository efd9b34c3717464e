#include "core/runtime/strand.hpp"

#include <cstddef>
#include <utility>

namespace sluice {

// The pool's handle on one turn of a strand (a Task, moved, never copied). A pool that stops
// drops its queued tasks without running them; the strand's ops then go with the turn, since
// they may hold the strand's owner, which holds the strand (a cycle that nothing else would
// break).
class Strand::Turn {
 public:
  explicit Turn(std::shared_ptr<Strand> strand) : strand_(std::move(strand)) {}
  Turn(Turn&&) noexcept = default;
  Turn& operator=(Turn&&) = delete;
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;
  ~Turn() {
    if (strand_) strand_->dropQueued();
  }
  void operator()() { std::exchange(strand_, nullptr)->drain(); }

 private:
  std::shared_ptr<Strand> strand_;
};

std::shared_ptr<Strand> Strand::make(ThreadPool* pool) {
  auto strand = std::make_shared<Strand>(pool);
  strand->bind(strand);
  return strand;
}

void Strand::schedule() {
  if (auto self = self_.lock()) {
    pool_->post(Turn(std::move(self)));
  } else {
    dropQueued();  // its owner is being destroyed: nothing could run them
  }
}

void Strand::post(Task op) {
  bool start = false;
  {
    std::lock_guard lock(mu_);
    ops_.push_back(std::move(op));
    if (!active_) {
      active_ = true;
      start = true;
    }
  }
  if (start) schedule();
}

void Strand::dropQueued() {
  std::vector<Task> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(ops_);
    head_ = 0;
    active_ = false;
  }
}

size_t Strand::queued() const {
  std::lock_guard lock(mu_);
  return ops_.size() - head_;
}

void Strand::drain() {
  Task op;
  {
    std::lock_guard lock(mu_);
    if (head_ == ops_.size()) {  // dropped meanwhile
      active_ = false;
      return;
    }
    op = std::move(ops_[head_++]);
    if (head_ == ops_.size()) {
      ops_.clear();  // keeps its capacity: a flow's next op needs no allocation
      head_ = 0;
    } else if (head_ >= 64 && head_ * 2 >= ops_.size()) {
      ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(head_));  // moved-from
      head_ = 0;
    }
  }
  op();
  op = nullptr;  // release what the op held before the next turn
  {
    std::lock_guard lock(mu_);
    if (head_ == ops_.size()) {
      active_ = false;
      return;
    }
  }
  schedule();
}

}  // namespace sluice
