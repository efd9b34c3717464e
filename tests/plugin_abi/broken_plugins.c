/* Deliberately broken Sluice plugins, one per BROKEN_KIND, each to be refused with its reason. */
#include <sluice/plugin.h>
#include <stddef.h>
#include <string.h>

static sluice_status ok_create(const sluice_host* h, const char* c, size_t n, void** out,
                               sluice_error* e) {
  (void)h;
  (void)c;
  (void)n;
  (void)e;
  static int instance;
  *out = &instance;
  return SLUICE_OK;
}
static void ok_destroy(void* p) { (void)p; }
static sluice_status ok_start(void* p, sluice_error* e) {
  (void)p;
  (void)e;
  return SLUICE_OK;
}
static sluice_status ok_stop(void* p, int32_t m, sluice_error* e) {
  (void)p;
  (void)m;
  (void)e;
  return SLUICE_OK;
}

static sluice_flow_type type = {sizeof(sluice_flow_type),
                                TYPE_NAME,
                                "broken test type",
                                NULL,
                                0,
                                0,
                                NULL,
                                ok_create,
                                ok_destroy,
                                ok_start,
                                ok_stop,
                                NULL,
                                NULL,
                                NULL};
static const sluice_flow_type* types[] = {&type, NULL};
#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0.0.1"
#endif
#if defined(BROKEN_INIT_FAILS)
static sluice_status failing_init(sluice_error* e) {
  sluice_error_set(e, "connection pool unavailable");
  return SLUICE_ERROR;
}
#endif
static sluice_plugin_descriptor descriptor = {sizeof(sluice_plugin_descriptor),
                                              SLUICE_ABI_MAJOR,
                                              SLUICE_ABI_MINOR,
                                              PLUGIN_NAME,
                                              PLUGIN_VERSION,
                                              1,
                                              types};

SLUICE_EXPORT const sluice_plugin_descriptor* sluice_plugin_entry(void) {
#if defined(BROKEN_NULL_DESCRIPTOR)
  return NULL;
#else
#if defined(BROKEN_WRONG_MAJOR)
  descriptor.abi_major = SLUICE_ABI_MAJOR + 1;
#elif defined(BROKEN_NEWER_MINOR)
  descriptor.abi_minor = SLUICE_ABI_MINOR + 1;
#elif defined(BROKEN_SMALL_DESCRIPTOR)
  descriptor.struct_size = 8;
#elif defined(BROKEN_SMALL_TYPE)
  type.struct_size = 16;
#elif defined(BROKEN_MISSING_HOOK)
  type.start = NULL;
#elif defined(BROKEN_STEP_WITHOUT_HOOK)
  type.flags = SLUICE_FLOW_HAS_STEP;
#elif defined(BROKEN_PLAIN_C)
  descriptor.abi_minor = 0; /* a plugin built before ABI 1.1 keeps working */
#elif defined(BROKEN_UNKNOWN_FLAG)
  type.flags = 0x80u; /* a bit no engine defines yet */
#elif defined(BROKEN_OLD_SIZES)
  /* A plugin of ABI 1.0: its flow type struct ends after `run`, in storage of exactly that size.
   * Once a later minor grows the struct, an engine that read the new fields in place would read
   * past it (ASan says so); the engine copies what was declared into a zeroed struct. Accepted. */
  {
    enum { kOldSize = offsetof(sluice_flow_type, run) + sizeof(void*) };
    static _Alignas(sluice_flow_type) unsigned char old_type[kOldSize];
    memcpy(old_type, &type, kOldSize);
    ((sluice_flow_type*)old_type)->struct_size = kOldSize;
    types[0] = (const sluice_flow_type*)old_type;
    descriptor.abi_minor = 0;
  }
#elif defined(BROKEN_BAD_VERSION)
  descriptor.version = "one";
#elif defined(BROKEN_INIT_FAILS)
  descriptor.init = failing_init;
#elif defined(BROKEN_NEWER_SDK)
  /* A plugin built against a newer SDK (its structs have members this engine does not know)
   * that needs nothing new: abi_minor 0, the minimum it needs. Accepted (the inverted rule). */
  {
    typedef struct {
      sluice_plugin_descriptor known;
      void* later[4];
    } newer_descriptor;
    typedef struct {
      sluice_flow_type known;
      void* later[4];
    } newer_type;
    static newer_type t;
    static const sluice_flow_type* newer_types[1];
    static newer_descriptor d;
    memcpy(&t.known, &type, sizeof type);
    t.known.struct_size = sizeof t;
    t.known.version = "3.1.4";
    newer_types[0] = &t.known;
    memcpy(&d.known, &descriptor, sizeof descriptor);
    d.known.struct_size = sizeof d;
    d.known.abi_minor = 0;
    d.known.flow_types = newer_types;
    return &d.known;
  }
#endif
  return &descriptor;
#endif
}
