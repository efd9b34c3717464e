#include "core/runtime/strand.hpp"

#include <utility>

namespace sluice {

// The pool's handle on one turn of a strand. A pool that stops drops its queued tasks without
// running them; the strand's ops then go with the turn, since they may hold the strand's owner,
// which holds the strand (a cycle that nothing else would break).
class Strand::Turn {
 public:
  explicit Turn(std::shared_ptr<Strand> strand) : strand_(std::move(strand)) {}
  Turn(const Turn&) = delete;
  Turn& operator=(const Turn&) = delete;
  ~Turn() {
    if (strand_) strand_->dropQueued();
  }
  void run() { std::exchange(strand_, nullptr)->drain(); }

 private:
  std::shared_ptr<Strand> strand_;
};

void Strand::schedule() {
  pool_->post([turn = std::make_shared<Turn>(shared_from_this())] { turn->run(); });
}

void Strand::post(std::function<void()> op) {
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
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(ops_);
    active_ = false;
  }
}

size_t Strand::queued() const {
  std::lock_guard lock(mu_);
  return ops_.size();
}

void Strand::drain() {
  std::function<void()> op;
  {
    std::lock_guard lock(mu_);
    if (ops_.empty()) {  // dropped meanwhile
      active_ = false;
      return;
    }
    op = std::move(ops_.front());
    ops_.pop_front();
  }
  op();
  op = nullptr;  // release what the op held before the next turn
  {
    std::lock_guard lock(mu_);
    if (ops_.empty()) {
      active_ = false;
      return;
    }
  }
  schedule();
}

}  // namespace sluice
