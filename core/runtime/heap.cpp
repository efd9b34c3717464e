#include "core/runtime/heap.hpp"

#include <malloc.h>

#include <cstddef>

// jemalloc's control interface, declared weak: null unless the program links jemalloc (the
// engine library itself does not, so that a program embedding it keeps its own allocator).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace sluice {

void releaseFreeMemory() {
  if (mallctl != nullptr) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages, at once.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
    return;
  }
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace sluice
