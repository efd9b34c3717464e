#include "core/runtime/strand.hpp"

namespace sluice {

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
  if (start) pool_->post([self = shared_from_this()] { self->drain(); });
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
  pool_->post([self = shared_from_this()] { self->drain(); });
}

}  // namespace sluice
