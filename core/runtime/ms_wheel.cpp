#include "core/runtime/ms_wheel.hpp"

#include <algorithm>
#include <utility>

namespace sluice {

void MsWheel::add(int64_t ms, Task fn) {
  ms = std::max(ms, cursor_);
  if (ms < cursor_ + kSlots) {
    slot(ms).push_back(std::move(fn));
    ++in_slots_;
    return;
  }
  far_.push_back({ms, seq_++, std::move(fn)});
  std::push_heap(far_.begin(), far_.end(), later);
}

void MsWheel::takeDue(int64_t now_ms, std::vector<Task>& out) {
  if (now_ms < cursor_) return;
  if (in_slots_ > 0) {
    const int64_t last = std::min(now_ms, cursor_ + kSlots - 1);
    for (int64_t ms = cursor_; ms <= last && in_slots_ > 0; ++ms) {
      auto& s = slot(ms);
      if (s.empty()) continue;
      for (auto& fn : s) out.push_back(std::move(fn));
      in_slots_ -= s.size();
      s.clear();  // keeps its capacity for the next round of steps
    }
  }
  cursor_ = now_ms + 1;
  // What now falls within the wheel's reach leaves the heap: into `out` when due, else a slot.
  while (!far_.empty() && far_.front().ms < cursor_ + kSlots) {
    std::pop_heap(far_.begin(), far_.end(), later);
    Far f = std::move(far_.back());
    far_.pop_back();
    if (f.ms <= now_ms) {
      out.push_back(std::move(f.fn));
    } else {
      slot(f.ms).push_back(std::move(f.fn));
      ++in_slots_;
    }
  }
}

std::optional<int64_t> MsWheel::next() const {
  if (in_slots_ > 0) {
    for (int64_t ms = cursor_;; ++ms) {
      if (!slots_[static_cast<size_t>(ms & (kSlots - 1))].empty()) return ms;
    }
  }
  if (!far_.empty()) return far_.front().ms;
  return std::nullopt;
}

void MsWheel::clear() {
  for (auto& s : slots_) s.clear();
  in_slots_ = 0;
  far_.clear();
}

}  // namespace sluice
