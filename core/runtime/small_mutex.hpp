// A mutex of four bytes, for the locks that every flow holds several of.
//
// std::mutex is a pthread_mutex_t of 40 bytes. A flow has six (its state, its submissions, its
// run writes, its kill handle, its strand, its stop descriptor) and a running one four more in
// its host binding: at a million flows that is 240 to 400 MB of mutexes (issue 14). This one is a
// single futex word, through C++20's atomic wait and notify (libstdc++ waits on the word itself
// with a futex for 32-bit types): Drepper's three-state mutex ("Futexes Are Tricky", 2011). 0 is
// free, 1 is locked, 2 is locked with possible waiters: an unlock wakes one waiter only when there
// may be one, so an uncontended lock and unlock is one compare-exchange and one exchange, as with
// glibc's.
//
// What it does not do: no condition_variable (use std::mutex where one waits on a condition),
// no recursion, no priority inheritance, no robustness. Boost has no mutex smaller than the
// pthread one either (boost::mutex wraps it).
#pragma once

#include <atomic>
#include <cstdint>

#include "core/runtime/brief_lock.hpp"

namespace sluice {

class SmallMutex {
 public:
  SmallMutex() = default;
  SmallMutex(const SmallMutex&) = delete;
  SmallMutex& operator=(const SmallMutex&) = delete;

  void lock() {
    uint32_t seen = 0;
    if (state_.compare_exchange_strong(seen, 1, std::memory_order_acquire)) return;
    // Held: most holders give it up within a fraction of a microsecond (core/runtime/
    // brief_lock.hpp), so look again for a moment before sleeping.
    for (int i = 0; i < kBriefSpins; ++i) {
      cpuRelax();
      seen = state_.load(std::memory_order_relaxed);
      if (seen == 0 && state_.compare_exchange_weak(seen, 1, std::memory_order_acquire)) return;
    }
    // Contended: mark it as waited for, and sleep while it stays held.
    if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      state_.wait(2, std::memory_order_relaxed);
      seen = state_.exchange(2, std::memory_order_acquire);
    }
  }

  bool try_lock() {
    uint32_t seen = 0;
    return state_.compare_exchange_strong(seen, 1, std::memory_order_acquire);
  }

  void unlock() {
    if (state_.exchange(0, std::memory_order_release) == 2) state_.notify_one();
  }

 private:
  std::atomic<uint32_t> state_{0};
};

}  // namespace sluice
