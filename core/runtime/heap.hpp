// Handing freed memory back to the system after a burst of work (a restore of a million flows).
#pragma once

namespace sluice {

/// Returns the free pages of the process's allocator to the system: jemalloc's arenas are purged
/// when the program runs on jemalloc (the sluice executable does, api/CMakeLists.txt), glibc's
/// heap is trimmed otherwise. Safe from any thread; costs a few milliseconds.
void releaseFreeMemory();

}  // namespace sluice
