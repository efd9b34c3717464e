/*
 * Sluice plugin C ABI.
 *
 * This header is the whole contract between the Sluice engine (the host) and a flow plugin (a
 * shared object). Only C types cross it: no C++ exception, no STL object, no ownership transfer
 * except where a comment says so.
 *
 * Versioning: a plugin declares the ABI it needs, not the header it was built with. Its
 * abi_major must equal the engine's SLUICE_ABI_MAJOR, and its abi_minor is the *minimum* engine
 * ABI minor it needs (SLUICE_PLUGIN_MIN_ABI_MINOR, 0 unless the plugin uses something a later
 * minor added): a plugin rebuilt against a newer SDK still loads into an older engine when it uses
 * nothing new. Every struct starts with struct_size so it can grow at its end; a reader never
 * touches a member beyond the struct_size the writer declared (the engine copies every plugin
 * struct into a zeroed struct of its own size, so members a plugin did not declare read as 0).
 *
 * Threads (the hook contract; the engine's code follows it, see docs/plugin-guide.md):
 *  - init runs first and alone; shutdown runs last and alone, once per load.
 *  - validate may run at any time, concurrently with anything, including other validates and the
 *    hooks of any instance: it must be pure (no shared mutable state without a lock).
 *  - The hooks of one instance (create, start, stop, pause, resume, step, reconfigure, destroy)
 *    run one at a time, on the engine's worker pool (or on the host process's main thread), in
 *    the order of the lifecycle; never two of them concurrently.
 *  - run (dedicated-thread flows) is the exception: it runs on its own thread from after start
 *    until it returns, concurrently with stop, pause, resume and reconfigure of the same
 *    instance. destroy runs only after run returned.
 *  - Hooks of different instances, of one type or of several, may run concurrently.
 *  - Host functions may be called from any thread while the instance exists.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI of this header. Defined here only: a plugin that needs a later minor says so with
 * SLUICE_PLUGIN_MIN_ABI_MINOR instead. */
#if defined(SLUICE_ABI_MAJOR) || defined(SLUICE_ABI_MINOR)
#error \
    "SLUICE_ABI_MAJOR/SLUICE_ABI_MINOR are set by sluice/plugin.h; to require a later engine, define SLUICE_PLUGIN_MIN_ABI_MINOR before including it"
#endif
#define SLUICE_ABI_MAJOR 1
#define SLUICE_ABI_MINOR 4

/* The minimum engine ABI minor this plugin needs (what its descriptor declares as abi_minor).
 * 0 by default: the C++ SDK checks host->struct_size before it uses anything later. */
#ifndef SLUICE_PLUGIN_MIN_ABI_MINOR
#define SLUICE_PLUGIN_MIN_ABI_MINOR 0
#endif
#if SLUICE_PLUGIN_MIN_ABI_MINOR > SLUICE_ABI_MINOR
#error "SLUICE_PLUGIN_MIN_ABI_MINOR is newer than this SDK's SLUICE_ABI_MINOR"
#endif

/** Name of the one symbol every plugin exports (extern "C", default visibility). */
#define SLUICE_ENTRY_SYMBOL "sluice_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_EXPORT __attribute__((visibility("default")))
#else
#define SLUICE_EXPORT
#endif

/** Status returned by every hook. */
typedef int32_t sluice_status;
#define SLUICE_OK 0
#define SLUICE_ERROR 1
/** Returned by sluice_host.state_lookup (ABI 1.1) when the key has no value. */
#define SLUICE_ABSENT 2
/** ABI 1.3: returned by step or run when the flow's work is finished. The run completes as
 *  succeeded: the engine calls stop (soft) and destroy, the flow's state becomes `completed`
 *  and its desired state `stopped`. A plugin that returns it declares
 *  SLUICE_PLUGIN_MIN_ABI_MINOR 3 (an engine of ABI 1.2 would take it for a failure). Any other
 *  hook that returns it fails, as with SLUICE_ERROR. */
#define SLUICE_DONE 3

/** Stop modes passed to the stop hook. */
#define SLUICE_STOP_SOFT 0 /* finish the work in flight, flush, checkpoint */
#define SLUICE_STOP_HARD 1 /* abandon the work in flight as fast as possible */

/** Log levels for sluice_host.log. */
#define SLUICE_LOG_TRACE 0
#define SLUICE_LOG_DEBUG 1
#define SLUICE_LOG_INFO 2
#define SLUICE_LOG_WARN 3
#define SLUICE_LOG_ERROR 4

/** Output streams for sluice_host.output (ABI 1.4). */
#define SLUICE_OUTPUT_STDOUT 1
#define SLUICE_OUTPUT_STDERR 2

/** Flow type flags (at most one of them). */
#define SLUICE_FLOW_HAS_STEP 1u         /* the engine schedules the step hook while the flow runs */
#define SLUICE_FLOW_DEDICATED_THREAD 2u /* the run hook gets a thread of its own while it runs */

/**
 * Error out-parameter of the hooks. Owned by the host, valid for the duration of the call only.
 * A plugin that returns SLUICE_ERROR should say why with sluice_error_set().
 */
typedef struct sluice_error {
  uint32_t struct_size;
  char* message;   /* host-owned buffer of `capacity` bytes */
  size_t capacity; /* including the terminating NUL */
} sluice_error;

/** Copies `msg` (truncated to fit, NUL-terminated) into the error. Safe with a NULL error. */
static inline void sluice_error_set(sluice_error* err, const char* msg) {
  if (err == NULL || err->message == NULL || err->capacity == 0 || msg == NULL) return;
  size_t n = strlen(msg);
  if (n >= err->capacity) n = err->capacity - 1;
  memcpy(err->message, msg, n);
  err->message[n] = '\0';
}

/**
 * Sink for configuration problems found by the validate hook. Owned by the host, valid for the
 * duration of the call only. `path` is a JSON pointer into the flow's `config` ("" = config
 * itself, "/interval_ms" = one member); strings are copied by the host.
 */
typedef struct sluice_problems {
  uint32_t struct_size;
  void* ctx;
  void (*add)(void* ctx, const char* path, size_t path_len, const char* message,
              size_t message_len);
} sluice_problems;

/** Receives a value from sluice_host.state_get; the bytes are valid during the call only. */
typedef void (*sluice_value_sink)(void* sink_ctx, const char* value, size_t value_len);

/**
 * Functions the host offers to one flow instance. The table and `ctx` are owned by the host and
 * stay valid from create until destroy returns. Every function is thread-safe.
 */
typedef struct sluice_host {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  void* ctx;           /* pass back as the first argument of every function below */
  const char* flow_id; /* NUL-terminated, valid until destroy */
  size_t flow_id_len;
  /** Writes a log line tagged with the flow id. */
  void (*log)(void* ctx, int32_t level, const char* message, size_t message_len);
  /** Adds `delta` to the counter `name` shown in the flow's status metrics. */
  void (*counter_add)(void* ctx, const char* name, size_t name_len, int64_t delta);
  /** Sets the gauge `name` shown in the flow's status metrics. */
  void (*gauge_set)(void* ctx, const char* name, size_t name_len, double value);
  /** 1 once a hard stop was requested (checked by long-running steps), else 0. */
  int32_t (*is_cancelled)(void* ctx);
  /** 1 while the flow is asked to pause, else 0. */
  int32_t (*is_paused)(void* ctx);
  /** Wall-clock time in milliseconds since the Unix epoch. */
  int64_t (*now_ms)(void* ctx);
  /**
   * Durable per-flow key/value state (checkpoints), kept in the engine's store, surviving engine
   * restarts, deleted with the flow. state_get calls `sink` once with the value and returns
   * SLUICE_OK, or returns SLUICE_ERROR when the key has no value or on a store error (it cannot
   * tell them apart: use state_lookup, ABI 1.1, when the host has it).
   */
  sluice_status (*state_get)(void* ctx, const char* key, size_t key_len, sluice_value_sink sink,
                             void* sink_ctx);
  sluice_status (*state_put)(void* ctx, const char* key, size_t key_len, const char* value,
                             size_t value_len);
  sluice_status (*state_delete)(void* ctx, const char* key, size_t key_len);
  /** 1 once a stop (soft or hard) of the flow was requested, else 0. A dedicated-thread flow's
   *  run hook returns when it turns 1 (finishing its unit of work on a soft stop). */
  int32_t (*is_stop_requested)(void* ctx);
  /** Absolute path of the engine's files root (--files-root), NUL-terminated: the only
   *  directory tree flows that touch files may use. Valid until destroy. */
  const char* files_root;
  size_t files_root_len;
  /* ---- ABI 1.1: present when struct_size >= SLUICE_HOST_SIZE_1_1 ---- */
  /**
   * Like state_get, but tells the cases apart: SLUICE_OK (sink called once with the value),
   * SLUICE_ABSENT (the key has no value) or SLUICE_ERROR (the store failed: the state is unknown,
   * do not start over as if it were absent). `sink` is called with no host lock held, so it may
   * call host functions.
   */
  sluice_status (*state_lookup)(void* ctx, const char* key, size_t key_len, sluice_value_sink sink,
                                void* sink_ctx);
  /* ---- ABI 1.2: present when struct_size >= SLUICE_HOST_SIZE_1_2 ---- */
  /**
   * A file descriptor that becomes readable once a stop (soft or hard) or a cancellation is
   * requested: a dedicated-thread flow that blocks in poll()/select() on its own I/O adds it to
   * its set and wakes promptly. Owned by the host: never read, write or close it. -1 when the
   * host cannot offer one (then poll with a timeout and check is_stop_requested).
   */
  int32_t (*stop_fd)(void* ctx);
  /* ---- ABI 1.4: present when struct_size >= SLUICE_HOST_SIZE_1_4 ---- */
  /**
   * Appends `len` bytes of the output of the flow's work (`stream`: SLUICE_OUTPUT_STDOUT or
   * SLUICE_OUTPUT_STDERR), such as a child process's, to the flow's log, which
   * GET /flows/{id}/logs serves. The bytes need not be whole lines nor valid UTF-8: the host
   * splits them into lines per stream, timestamps each line, escapes what is not UTF-8 and
   * bounds the log's size (it rotates).
   */
  void (*output)(void* ctx, int32_t stream, const char* data, size_t len);
} sluice_host;

/** Size of sluice_host in ABI 1.0, 1.1, 1.2 (and 1.3, which added no host function) and 1.4: a
 * plugin checks host->struct_size against these before it touches a member added later. */
#define SLUICE_HOST_SIZE_1_0 (offsetof(sluice_host, files_root_len) + sizeof(size_t))
#define SLUICE_HOST_SIZE_1_1 (offsetof(sluice_host, state_lookup) + sizeof(void*))
#define SLUICE_HOST_SIZE_1_2 (offsetof(sluice_host, stop_fd) + sizeof(void*))
#define SLUICE_HOST_SIZE_1_4 (offsetof(sluice_host, output) + sizeof(void*))

/**
 * One flow type. Static storage in the plugin: it must live as long as the library is loaded.
 * Required hooks: create, destroy, start, stop; step when flags has SLUICE_FLOW_HAS_STEP; run when
 * flags has SLUICE_FLOW_DEDICATED_THREAD.
 * Optional hooks (NULL = nothing to do): validate, pause, resume; reconfigure (NULL = an update
 * of a running flow restarts it).
 */
typedef struct sluice_flow_type {
  uint32_t struct_size;
  const char* name;          /* unique across all loaded plugins: [A-Za-z0-9._-]+ */
  const char* description;   /* one line, may be NULL */
  const char* config_schema; /* JSON Schema (draft-04) text of `config`, may be NULL */
  uint32_t flags;            /* SLUICE_FLOW_* */
  uint32_t step_interval_ms; /* default delay between two steps */

  /** Checks a config (JSON object text) without creating anything; reports through `problems`.
   *  Called on an engine worker with a deadline; must not block. */
  sluice_status (*validate)(const char* config_json, size_t config_len,
                            const sluice_problems* problems);
  /** Creates an instance from a validated config. `host` lives until destroy returns. */
  sluice_status (*create)(const sluice_host* host, const char* config_json, size_t config_len,
                          void** out_instance, sluice_error* err);
  /** Releases an instance; called once, after stop (or after a failed start). */
  void (*destroy)(void* instance);
  sluice_status (*start)(void* instance, sluice_error* err);
  /** mode: SLUICE_STOP_SOFT or SLUICE_STOP_HARD. */
  sluice_status (*stop)(void* instance, int32_t mode, sluice_error* err);
  sluice_status (*pause)(void* instance, sluice_error* err);
  sluice_status (*resume)(void* instance, sluice_error* err);
  /** One unit of work. `*next_delay_ms` holds step_interval_ms on entry; set it to 0 to be
   *  called again at once (work was done and more is waiting). SLUICE_DONE (ABI 1.3): the
   *  flow's work is finished; SLUICE_ERROR: the run failed. */
  sluice_status (*step)(void* instance, uint32_t* next_delay_ms, sluice_error* err);
  /** Applies a new, validated config to a running or paused instance in place. On error the
   *  instance must keep working with its previous config. Called on the strand (never during a
   *  step); for a dedicated-thread flow, concurrently with run: synchronise. */
  sluice_status (*reconfigure)(void* instance, const char* config_json, size_t config_len,
                               sluice_error* err);
  /** Dedicated-thread flows: the flow's work, on a thread of its own, started after start.
   *  Returns once is_stop_requested turns 1 (soft: finish the unit in flight; is_cancelled 1:
   *  abandon it); idles while is_paused is 1. Returning earlier ends the flow: SLUICE_DONE
   *  (ABI 1.3) completes it, SLUICE_ERROR fails it, and SLUICE_OK leaves it stopped (as
   *  before ABI 1.3). */
  sluice_status (*run)(void* instance, sluice_error* err);
  /* ---- ABI 1.2: read as NULL from an older plugin ---- */
  /** Semantic version of this flow type, "MAJOR.MINOR.PATCH"; NULL = the plugin's version.
   *  Several versions of one type may be loaded side by side (configurations pin them with
   *  "type": "name@1" or "name@1.2.0"). */
  const char* version;
} sluice_flow_type;

/** What the entry symbol returns. Static storage in the plugin. */
typedef struct sluice_plugin_descriptor {
  uint32_t struct_size;
  uint16_t abi_major; /* SLUICE_ABI_MAJOR the plugin was built with */
  uint16_t abi_minor; /* the minimum engine ABI minor it needs (SLUICE_PLUGIN_MIN_ABI_MINOR) */
  const char* name;
  const char* version; /* semantic version "MAJOR.MINOR.PATCH" */
  uint32_t flow_type_count;
  const sluice_flow_type* const* flow_types;
  /* ---- ABI 1.2: read as NULL from an older plugin ---- */
  /** Called once per load, before any flow type is used (and never concurrently with anything
   *  else of the plugin), for shared resources such as connection pools. SLUICE_ERROR refuses
   *  the plugin with the message. NULL = nothing to do. */
  sluice_status (*init)(sluice_error* err);
  /** Called once before the library is unloaded, after the last instance was destroyed and the
   *  last validate returned. NULL = nothing to do. */
  void (*shutdown)(void);
} sluice_plugin_descriptor;

/** Type of the entry symbol `sluice_plugin_entry`. */
typedef const sluice_plugin_descriptor* (*sluice_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_PLUGIN_H */
