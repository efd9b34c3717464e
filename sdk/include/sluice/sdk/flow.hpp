// Header-only C++ layer over the Sluice C ABI (sluice/plugin.h).
//
// A flow type is a class deriving from sluice::sdk::Flow (lifecycle only),
// sluice::sdk::StepFlow (the engine calls step() periodically on its pool) or
// sluice::sdk::ThreadFlow (run() gets a thread of its own), with:
//   static constexpr const char* kName;         // the type name
//   static constexpr const char* kDescription;  // one line
//   T(sluice::sdk::Host host, const sluice::sdk::Config& config);
// and optionally:
//   static constexpr const char* kConfigSchema;  // JSON Schema text of `config`
//   static void validate(const sluice::sdk::Config&, sluice::sdk::Problems&);
//   static constexpr uint32_t kStepIntervalMs;   // default delay between steps
//   Status reconfigure(const sluice::sdk::Config&);  // apply a new config in place (no restart)
//   static constexpr const char* kVersion;       // the type's own version ("1.2.0")
// A plugin lists its types once: SLUICE_PLUGIN("name", "1.0.0", MyFlow, OtherFlow).
// Every exception thrown by a hook is caught here and becomes an error status with its message.
#pragma once

#include <sluice/plugin.h>

#include <concepts>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "sluice/sdk/config.hpp"
#include "sluice/sdk/files.hpp"

namespace sluice::sdk {

enum class StopMode { Soft = SLUICE_STOP_SOFT, Hard = SLUICE_STOP_HARD };

/// Result of a hook: ok, or an error with a message.
class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }
  /// From step() or run(): the flow's work is finished, and the run succeeded (SLUICE_DONE,
  /// ABI 1.3: define SLUICE_PLUGIN_MIN_ABI_MINOR 3 before including the SDK to use it).
  static Status done() {
    Status s;
    s.done_ = true;
    return s;
  }
  bool isOk() const { return !message_.has_value(); }
  bool isDone() const { return done_; }
  const std::string& message() const { return *message_; }

 private:
  explicit Status(std::string m) : message_(std::move(m)) {}
  std::optional<std::string> message_;
  bool done_ = false;
};

/// The host functions of one instance. Cheap to copy; valid until the instance is destroyed.
class Host {
 public:
  explicit Host(const sluice_host* host) : host_(host) {}
  std::string_view flowId() const { return {host_->flow_id, host_->flow_id_len}; }
  void log(int32_t level, std::string_view msg) const {
    host_->log(host_->ctx, level, msg.data(), msg.size());
  }
  void info(std::string_view msg) const { log(SLUICE_LOG_INFO, msg); }
  void warn(std::string_view msg) const { log(SLUICE_LOG_WARN, msg); }
  void error(std::string_view msg) const { log(SLUICE_LOG_ERROR, msg); }
  void counterAdd(std::string_view name, int64_t delta = 1) const {
    host_->counter_add(host_->ctx, name.data(), name.size(), delta);
  }
  void gaugeSet(std::string_view name, double value) const {
    host_->gauge_set(host_->ctx, name.data(), name.size(), value);
  }
  /// True once a hard stop was requested (or a soft stop passed its timeout).
  bool cancelled() const { return host_->is_cancelled(host_->ctx) != 0; }
  /// True once any stop was requested (dedicated-thread flows return from run()).
  bool stopRequested() const { return host_->is_stop_requested(host_->ctx) != 0; }
  /// The engine's files root: the only directory tree a flow may read or write.
  std::string_view filesRoot() const { return {host_->files_root, host_->files_root_len}; }
  /// `relative` resolved under the files root (symlinks included), or why it cannot be: not
  /// relative, "..", a trailing "/", or a path that leads out of the root (sluice/sdk/files.hpp).
  ResolvedPath resolve(std::string_view relative) const {
    return resolveUnder(std::filesystem::path(std::string(filesRoot())), relative);
  }
  bool pauseRequested() const { return host_->is_paused(host_->ctx) != 0; }
  /// A descriptor that becomes readable once a stop or cancellation is requested: poll() it with
  /// your own I/O to wake promptly (never read or close it). -1 from a host older than ABI 1.2.
  int stopFd() const {
    if (host_->struct_size < SLUICE_HOST_SIZE_1_2 || host_->stop_fd == nullptr) return -1;
    return host_->stop_fd(host_->ctx);
  }
  int64_t nowMs() const { return host_->now_ms(host_->ctx); }
  /// Appends output of the flow's work (a child process's stdout or stderr, say) to the flow's
  /// log (GET /flows/{id}/logs): any bytes, not necessarily whole lines. A host older than
  /// ABI 1.4 has no flow log: the bytes go to its log as info lines instead (false is returned).
  bool output(int32_t stream, std::string_view bytes) const {
    if (host_->struct_size >= SLUICE_HOST_SIZE_1_4 && host_->output != nullptr) {
      host_->output(host_->ctx, stream, bytes.data(), bytes.size());
      return true;
    }
    if (!bytes.empty()) info(bytes);
    return false;
  }
  /// Durable state: the stored value of `key`, or nothing.
  std::optional<std::string> stateGet(std::string_view key) const {
    std::string out;
    auto sink = [](void* c, const char* v, size_t n) {
      static_cast<std::string*>(c)->assign(v, n);
    };
    if (host_->state_get(host_->ctx, key.data(), key.size(), sink, &out) != SLUICE_OK) {
      return std::nullopt;
    }
    return out;
  }
  /// What stateLookup found.
  struct StateRead {
    enum class Kind { kValue, kAbsent, kError } kind = Kind::kAbsent;
    std::string value;  // when kValue
    bool ok() const { return kind != Kind::kError; }
    bool has_value() const { return kind == Kind::kValue; }
  };
  /// Durable state that tells "absent" from "the store failed" (ABI 1.1 hosts; an older host
  /// cannot tell them apart, and every failure reads as absent there).
  StateRead stateLookup(std::string_view key) const {
    StateRead out;
    auto sink = [](void* c, const char* v, size_t n) {
      static_cast<std::string*>(c)->assign(v, n);
    };
    if (host_->struct_size < SLUICE_HOST_SIZE_1_1 || host_->state_lookup == nullptr) {
      if (host_->state_get(host_->ctx, key.data(), key.size(), sink, &out.value) == SLUICE_OK) {
        out.kind = StateRead::Kind::kValue;
      }
      return out;
    }
    switch (host_->state_lookup(host_->ctx, key.data(), key.size(), sink, &out.value)) {
      case SLUICE_OK:
        out.kind = StateRead::Kind::kValue;
        break;
      case SLUICE_ABSENT:
        out.kind = StateRead::Kind::kAbsent;
        break;
      default:
        out.kind = StateRead::Kind::kError;
        break;
    }
    return out;
  }
  bool statePut(std::string_view key, std::string_view value) const {
    return host_->state_put(host_->ctx, key.data(), key.size(), value.data(), value.size()) ==
           SLUICE_OK;
  }
  bool stateDelete(std::string_view key) const {
    return host_->state_delete(host_->ctx, key.data(), key.size()) == SLUICE_OK;
  }
  const sluice_host* raw() const { return host_; }

 private:
  const sluice_host* host_;  // borrowed from the engine, valid until destroy returns
};

/// Collects configuration problems in validate().
class Problems {
 public:
  explicit Problems(const sluice_problems* p) : p_(p) {}
  void add(std::string_view path, std::string_view message) {
    ++count_;
    p_->add(p_->ctx, path.data(), path.size(), message.data(), message.size());
  }
  int count() const { return count_; }

 private:
  const sluice_problems* p_;  // borrowed for the duration of validate
  int count_ = 0;
};

/// Base of every flow type: lifecycle hooks with do-nothing defaults.
class Flow {
 public:
  explicit Flow(Host host) : host_(host) {}
  virtual ~Flow() = default;
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  virtual Status start() { return Status::ok(); }
  virtual Status stop(StopMode) { return Status::ok(); }
  virtual Status pause() { return Status::ok(); }
  virtual Status resume() { return Status::ok(); }

  const Host& host() const { return host_; }

 private:
  Host host_;
};

/// Controls the scheduling of the next step.
class StepControl {
 public:
  explicit StepControl(uint32_t* next_delay_ms) : next_(next_delay_ms) {}
  /// Asks to be called again at once (work was done and more is waiting).
  void again() { *next_ = 0; }
  void nextIn(uint32_t ms) { *next_ = ms; }
  uint32_t delayMs() const { return *next_; }

 private:
  uint32_t* next_;
};

/// A flow the engine drives by calling step() on its worker pool while the flow runs.
class StepFlow : public Flow {
 public:
  using Flow::Flow;
  virtual Status step(StepControl& control) = 0;
};

/// A flow whose run() gets a thread of its own from start until it is stopped. run() must return
/// once host().stopRequested() is true, and idle while host().pauseRequested() is true.
class ThreadFlow : public Flow {
 public:
  using Flow::Flow;
  virtual Status run() = 0;
};

namespace detail {

inline void setError(sluice_error* err, const char* what) { sluice_error_set(err, what); }

template <class Fn>
sluice_status guarded(sluice_error* err, Fn&& fn) noexcept {
  try {
    Status s = fn();
    if (s.isDone()) return SLUICE_DONE;
    if (s.isOk()) return SLUICE_OK;
    setError(err, s.message().c_str());
    return SLUICE_ERROR;
  } catch (const std::exception& e) {
    setError(err, e.what());
  } catch (...) {
    setError(err, "unknown exception");
  }
  return SLUICE_ERROR;
}

template <class T>
concept HasValidate = requires(const Config& c, Problems& p) {
  T::validate(c, p);
};
template <class T>
concept HasSchema = requires {
  T::kConfigSchema;
};
template <class T>
concept HasVersion = requires {
  T::kVersion;
};
template <class T>
concept HasInterval = requires {
  T::kStepIntervalMs;
};
template <class T>
concept HasReconfigure = requires(T& t, const Config& c) {
  { t.reconfigure(c) } -> std::same_as<Status>;
};

// A class that declares a hook with the wrong signature would silently not be called (a
// non-static validate, a stop() without its mode): these catch it at compile time.
template <class T>
concept DeclaresValidate = requires {
  &T::validate;
};
template <class T>
concept DeclaresReconfigure = requires {
  &T::reconfigure;
};
template <class T>
concept StartOk = requires {
  static_cast<Status (T::*)()>(&T::start);
};
template <class T>
concept StopOk = requires {
  static_cast<Status (T::*)(StopMode)>(&T::stop);
};
template <class T>
concept PauseOk = requires {
  static_cast<Status (T::*)()>(&T::pause);
};
template <class T>
concept ResumeOk = requires {
  static_cast<Status (T::*)()>(&T::resume);
};

template <class T>
constexpr bool checkHooks() {
  static_assert(!DeclaresValidate<T> || HasValidate<T>,
                "a flow type's validate must be declared "
                "`static void validate(const sluice::sdk::Config&, sluice::sdk::Problems&)`");
  static_assert(!DeclaresReconfigure<T> || HasReconfigure<T>,
                "a flow type's reconfigure must be declared "
                "`sluice::sdk::Status reconfigure(const sluice::sdk::Config&)`");
  static_assert(StartOk<T>, "start must be declared `sluice::sdk::Status start() override`");
  static_assert(StopOk<T>,
                "stop must be declared `sluice::sdk::Status stop(sluice::sdk::StopMode) override`");
  static_assert(PauseOk<T>, "pause must be declared `sluice::sdk::Status pause() override`");
  static_assert(ResumeOk<T>, "resume must be declared `sluice::sdk::Status resume() override`");
  return true;
}

template <class T>
struct Adapter {
  static Flow* self(void* p) { return static_cast<Flow*>(p); }

  static sluice_status validate(const char* json, size_t len, const sluice_problems* problems) {
    Problems out(problems);
    try {
      Config config;
      std::string parse_error;
      if (!config.parse(std::string_view(json, len), &parse_error)) {
        out.add("", parse_error);
        return SLUICE_ERROR;
      }
      if constexpr (HasValidate<T>) T::validate(config, out);
    } catch (const std::exception& e) {
      out.add("", std::string("validate failed: ") + e.what());
    } catch (...) {
      out.add("", "validate failed: unknown exception");
    }
    return out.count() == 0 ? SLUICE_OK : SLUICE_ERROR;
  }

  static sluice_status create(const sluice_host* host, const char* json, size_t len, void** out,
                              sluice_error* err) {
    return guarded(err, [&] {
      Config config;
      std::string parse_error;
      if (!config.parse(std::string_view(json, len), &parse_error)) {
        return Status::error(parse_error);
      }
      *out = static_cast<Flow*>(new T(Host(host), config));
      return Status::ok();
    });
  }
  static void destroy(void* p) noexcept {
    try {
      delete self(p);
    } catch (...) {
    }
  }
  static sluice_status start(void* p, sluice_error* e) {
    return guarded(e, [&] { return self(p)->start(); });
  }
  static sluice_status stop(void* p, int32_t mode, sluice_error* e) {
    return guarded(e, [&] {
      return self(p)->stop(mode == SLUICE_STOP_HARD ? StopMode::Hard : StopMode::Soft);
    });
  }
  static sluice_status pause(void* p, sluice_error* e) {
    return guarded(e, [&] { return self(p)->pause(); });
  }
  static sluice_status resume(void* p, sluice_error* e) {
    return guarded(e, [&] { return self(p)->resume(); });
  }
  static sluice_status step(void* p, uint32_t* next, sluice_error* e) {
    return guarded(e, [&] {
      StepControl control(next);
      return static_cast<StepFlow*>(self(p))->step(control);
    });
  }

  static sluice_status run(void* p, sluice_error* e) {
    return guarded(e, [&] { return static_cast<ThreadFlow*>(self(p))->run(); });
  }
  static sluice_status reconfigure(void* p, const char* json, size_t len, sluice_error* e) {
    return guarded(e, [&] {
      Config config;
      std::string parse_error;
      if (!config.parse(std::string_view(json, len), &parse_error)) {
        return Status::error(parse_error);
      }
      if constexpr (HasReconfigure<T>) {
        return static_cast<T*>(self(p))->reconfigure(config);
      } else {
        return Status::error("reconfigure is not supported");
      }
    });
  }

  static sluice_flow_type make() {
    sluice_flow_type t{};
    t.struct_size = sizeof(sluice_flow_type);
    t.name = T::kName;
    t.description = T::kDescription;
    if constexpr (HasSchema<T>) t.config_schema = T::kConfigSchema;
    if constexpr (HasVersion<T>) t.version = T::kVersion;
    t.validate = &validate;
    t.create = &create;
    t.destroy = &destroy;
    t.start = &start;
    t.stop = &stop;
    t.pause = &pause;
    t.resume = &resume;
    if constexpr (std::is_base_of_v<StepFlow, T>) {
      t.flags |= SLUICE_FLOW_HAS_STEP;
      t.step = &step;
      if constexpr (HasInterval<T>) {
        t.step_interval_ms = T::kStepIntervalMs;
      } else {
        t.step_interval_ms = 1000;
      }
    }
    if constexpr (std::is_base_of_v<ThreadFlow, T>) {
      t.flags |= SLUICE_FLOW_DEDICATED_THREAD;
      t.run = &run;
    }
    if constexpr (HasReconfigure<T>) t.reconfigure = &reconfigure;
    return t;
  }
};

}  // namespace detail

/// The C descriptor of flow type T (static storage).
template <class T>
const sluice_flow_type* flowType() {
  static_assert(std::is_base_of_v<Flow, T>, "a flow type derives from sluice::sdk::Flow");
  static_assert(detail::checkHooks<T>());
  static const sluice_flow_type type = detail::Adapter<T>::make();
  return &type;
}

}  // namespace sluice::sdk

namespace sluice::sdk::detail {

/// The descriptor SLUICE_PLUGIN and SLUICE_PLUGIN_WITH_HOOKS define.
inline sluice_plugin_descriptor makeDescriptor(const char* name, const char* version,
                                               const sluice_flow_type* const* types, uint32_t count,
                                               sluice_status (*init)(sluice_error*),
                                               void (*shutdown)(void)) {
  sluice_plugin_descriptor d{};
  d.struct_size = sizeof(sluice_plugin_descriptor);
  d.abi_major = SLUICE_ABI_MAJOR;
  d.abi_minor = SLUICE_PLUGIN_MIN_ABI_MINOR;  // what the plugin needs, not what it was built with
  d.name = name;
  d.version = version;
  d.flow_type_count = count;
  d.flow_types = types;
  d.init = init;
  d.shutdown = shutdown;
  return d;
}

/// Adapts a plugin-level init function `Status f()` to the C hook.
template <Status (*F)()>
sluice_status initHook(sluice_error* err) {
  return guarded(err, [] { return F(); });
}
/// Adapts a plugin-level shutdown function `void f()`: exceptions stop here.
template <void (*F)()>
void shutdownHook() {
  try {
    F();
  } catch (...) {
  }
}

}  // namespace sluice::sdk::detail

/// Defines the plugin's entry symbol: SLUICE_PLUGIN("my-plugin", "1.0.0", FlowA, FlowB).
/// A flow type's version is its kVersion when it declares one, else the plugin's version.
#define SLUICE_PLUGIN(plugin_name, plugin_version, ...)                                       \
  extern "C" SLUICE_EXPORT const sluice_plugin_descriptor* sluice_plugin_entry(void) {        \
    static const sluice_flow_type* const types[] = {SLUICE_DETAIL_TYPES(__VA_ARGS__)};        \
    static const sluice_plugin_descriptor descriptor = ::sluice::sdk::detail::makeDescriptor( \
        plugin_name, plugin_version, types,                                                   \
        static_cast<uint32_t>(sizeof(types) / sizeof(types[0])), nullptr, nullptr);           \
    return &descriptor;                                                                       \
  }

/// As SLUICE_PLUGIN, with plugin-level hooks called once per load: `sluice::sdk::Status
/// init_fn()` before any flow type is used, `void shutdown_fn()` before the library is unloaded
/// (for shared resources such as connection pools). Needs an engine of ABI 1.2 or later to be
/// called; an older engine loads the plugin without calling them (SLUICE_PLUGIN_MIN_ABI_MINOR 2
/// refuses such an engine instead).
#define SLUICE_PLUGIN_WITH_HOOKS(plugin_name, plugin_version, init_fn, shutdown_fn, ...)      \
  extern "C" SLUICE_EXPORT const sluice_plugin_descriptor* sluice_plugin_entry(void) {        \
    static const sluice_flow_type* const types[] = {SLUICE_DETAIL_TYPES(__VA_ARGS__)};        \
    static const sluice_plugin_descriptor descriptor = ::sluice::sdk::detail::makeDescriptor( \
        plugin_name, plugin_version, types,                                                   \
        static_cast<uint32_t>(sizeof(types) / sizeof(types[0])),                              \
        &::sluice::sdk::detail::initHook<init_fn>,                                            \
        &::sluice::sdk::detail::shutdownHook<shutdown_fn>);                                   \
    return &descriptor;                                                                       \
  }

#define SLUICE_DETAIL_TYPE(T) ::sluice::sdk::flowType<T>()
#define SLUICE_DETAIL_TYPES(...) SLUICE_DETAIL_FOR_EACH(SLUICE_DETAIL_TYPE, __VA_ARGS__)
// Up to 8 flow types per plugin.
#define SLUICE_DETAIL_FE_1(M, a) M(a)
#define SLUICE_DETAIL_FE_2(M, a, ...) M(a), SLUICE_DETAIL_FE_1(M, __VA_ARGS__)
#define SLUICE_DETAIL_FE_3(M, a, ...) M(a), SLUICE_DETAIL_FE_2(M, __VA_ARGS__)
#define SLUICE_DETAIL_FE_4(M, a, ...) M(a), SLUICE_DETAIL_FE_3(M, __VA_ARGS__)
#define SLUICE_DETAIL_FE_5(M, a, ...) M(a), SLUICE_DETAIL_FE_4(M, __VA_ARGS__)
#define SLUICE_DETAIL_FE_6(M, a, ...) M(a), SLUICE_DETAIL_FE_5(M, __VA_ARGS__)
#define SLUICE_DETAIL_FE_7(M, a, ...) M(a), SLUICE_DETAIL_FE_6(M, __VA_ARGS__)
#define SLUICE_DETAIL_FE_8(M, a, ...) M(a), SLUICE_DETAIL_FE_7(M, __VA_ARGS__)
#define SLUICE_DETAIL_PICK(_1, _2, _3, _4, _5, _6, _7, _8, N, ...) N
#define SLUICE_DETAIL_FOR_EACH(M, ...)                                                        \
  SLUICE_DETAIL_PICK(__VA_ARGS__, SLUICE_DETAIL_FE_8, SLUICE_DETAIL_FE_7, SLUICE_DETAIL_FE_6, \
                     SLUICE_DETAIL_FE_5, SLUICE_DETAIL_FE_4, SLUICE_DETAIL_FE_3,              \
                     SLUICE_DETAIL_FE_2, SLUICE_DETAIL_FE_1)                                  \
  (M, __VA_ARGS__)
