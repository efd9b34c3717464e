// Locks held for a few hundred nanoseconds, taken by the workers of a command to 100,000 flows
// at once (the pool's queue, the change feed, the run recorder, the timer's intake): a thread
// that finds one held spins for a moment before it sleeps.
//
// On two cores, sleeping on a held lock cost a futex wait and a context switch here and a
// futex wake in the holder's unlock, microseconds each, where the holder gives the lock up
// within a fraction of one (issue 14: 34,000-44,000 futex calls per command to 100,000 flows;
// 1,900-3,200 with this spin, the registry's shared lock and the timer's fewer wake-ups
// together, docs/benchmarks.md). glibc's PTHREAD_MUTEX_ADAPTIVE_NP does the same for its own
// mutexes; std::mutex cannot ask for it.
// The spin is bounded (a holder that was preempted is waited for in the kernel, as before).
#pragma once

namespace sluice {

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Spins up to kBriefSpins tries of `lockable.try_lock()`, then blocks in `lockable.lock()`.
/// Works with std::mutex and with std::unique_lock (made with std::defer_lock), so that a
/// condition variable can wait on what it locked.
inline constexpr int kBriefSpins = 64;

template <class Lockable>
void lockBriefly(Lockable& lockable) {
  for (int i = 0; i < kBriefSpins; ++i) {
    if (lockable.try_lock()) return;
    cpuRelax();
  }
  lockable.lock();
}

}  // namespace sluice
