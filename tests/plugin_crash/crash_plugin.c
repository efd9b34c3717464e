/* Plugins that take down (or hang) whatever process loads them, one per CRASH_KIND: the engine
 * must scan them in a child process and never load them itself. When SLUICE_CRASH_MARK names a
 * file, each load appends a line to it first (the test counts the scans). */
#include <signal.h>
#include <sluice/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void mark(void) {
  const char* path = getenv("SLUICE_CRASH_MARK");
  if (path == NULL) return;
  FILE* f = fopen(path, "a");
  if (f == NULL) return;
  fprintf(f, "%s\n", PLUGIN_NAME);
  fclose(f);
}

#if defined(CRASH_ABORT)
__attribute__((constructor)) static void crash_at_load(void) {
  mark();
  abort();
}
#elif defined(CRASH_HANG)
__attribute__((constructor)) static void hang_at_load(void) {
  mark();
  for (;;) pause();
}
#endif

SLUICE_EXPORT const sluice_plugin_descriptor* sluice_plugin_entry(void) {
#if defined(CRASH_SEGV)
  mark();
  raise(SIGSEGV);
#endif
  return NULL;
}
