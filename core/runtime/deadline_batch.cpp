#include "core/runtime/deadline_batch.hpp"

#include <memory>

namespace sluice {

void DeadlineBatch::add(std::chrono::milliseconds after, Task fn) {
  for (auto& g : groups_) {
    if (g.after == after) {
      g.fns.push_back(std::move(fn));
      return;
    }
  }
  groups_.push_back({after, {}});
  groups_.back().fns.push_back(std::move(fn));
}

void DeadlineBatch::arm() {
  if (groups_.empty()) return;
  const auto now = Clock::now();
  for (auto& g : groups_) {
    auto fns = std::make_shared<std::vector<Task>>(std::move(g.fns));
    timer_->at(now + g.after, [fns] {
      for (auto& fn : *fns) fn();
    });
  }
  groups_.clear();
}

}  // namespace sluice
