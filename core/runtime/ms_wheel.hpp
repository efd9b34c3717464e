// The timer's store for the callbacks that are never cancelled (every step of every flow): a
// wheel of one slot per millisecond, 4,096 of them, and a heap for what lies further ahead.
// Adding is a push onto the slot's vector, which keeps its capacity, and taking what is due is
// a walk over the slots passed since the last walk: no allocation and no ordered tree per
// step. The timer fires on whole milliseconds anyway, so a slot per millisecond loses nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/runtime/task.hpp"

namespace sluice {

class MsWheel {
 public:
  static constexpr int64_t kSlots = 4096;

  /// `now_ms`: the current millisecond (the first one not yet taken).
  explicit MsWheel(int64_t now_ms) : cursor_(now_ms), slots_(kSlots) {}

  /// Adds `fn`, due at millisecond `ms` (a whole millisecond at or after its due time); one
  /// already past is due at the next take.
  void add(int64_t ms, Task fn);
  /// Moves into `out` everything due at or before millisecond `now_ms`.
  void takeDue(int64_t now_ms, std::vector<Task>& out);
  /// The earliest millisecond something is due at; none when empty.
  std::optional<int64_t> next() const;
  size_t size() const { return in_slots_ + far_.size(); }
  void clear();

 private:
  struct Far {
    int64_t ms;
    uint64_t seq;  // keeps the order of adds for the same millisecond
    Task fn;
  };
  static bool later(const Far& a, const Far& b) {
    return a.ms != b.ms ? a.ms > b.ms : a.seq > b.seq;
  }
  std::vector<Task>& slot(int64_t ms) { return slots_[static_cast<size_t>(ms & (kSlots - 1))]; }

  int64_t cursor_;  // the slots hold milliseconds [cursor_, cursor_ + kSlots)
  std::vector<std::vector<Task>> slots_;
  size_t in_slots_ = 0;
  std::vector<Far> far_;  // a min-heap (std::push_heap with later()): cursor_ + kSlots and on
  uint64_t seq_ = 0;
};

}  // namespace sluice
