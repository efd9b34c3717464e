// sluice::testing::Harness: unit-test a flow type without a running engine.
//
// The harness plays the engine's part in-process: it loads a plugin .so (Harness::load) or takes
// a type compiled into the test (Harness::of<MyFlow>()), hands the plugin a fake host, and offers
// the lifecycle calls with their outcomes. What the host saw (counters, gauges, state, log lines)
// can be read back, the state preset, the clock set, and stop, cancellation and pause raised.
// Framework-neutral: every outcome prints itself, so GoogleTest shows it in a failed EXPECT.
//
//   auto h = sluice::testing::Harness::of<Hello>();
//   ASSERT_TRUE(h.create(R"({"name": "test"})"));
//   ASSERT_TRUE(h.start());
//   EXPECT_TRUE(h.step());
//   EXPECT_EQ(h.counter("greetings"), 1);
//   EXPECT_TRUE(h.stop(sluice::testing::Stop::kSoft));
//
// Link Sluice::testing (it brings Sluice::sdk). Not thread-safe itself, except the host
// functions, which a plugin may call from any thread.
#pragma once

#include <dlfcn.h>
#include <sluice/plugin.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/sdk/flow.hpp"

// RapidJSON for the schema check only, included after the SDK, with its default settings.
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

namespace sluice::testing {

enum class Stop { kSoft = SLUICE_STOP_SOFT, kHard = SLUICE_STOP_HARD };

/// What a hook call came to: ok, or an error with its message. `done` (ok as well): step or
/// run reported the flow's work finished (SLUICE_DONE, ABI 1.3).
struct Outcome {
  bool ok = false;
  std::string error;
  uint32_t next_delay_ms = 0;  // step only: the delay the step asked for
  bool done = false;
  explicit operator bool() const { return ok; }
  friend std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    return os << (o.done ? "done" : o.ok ? "ok" : "error: " + o.error);
  }
};

/// One problem reported by validate.
struct Problem {
  std::string path;  // JSON pointer into config ("" = config itself)
  std::string message;
  friend std::ostream& operator<<(std::ostream& os, const Problem& p) {
    return os << "'" << p.path << "': " << p.message;
  }
};

struct LogLine {
  int32_t level = SLUICE_LOG_INFO;
  std::string message;
};

class Harness {
 public:
  /// A flow type compiled into the test (a class the SDK adapts, see sluice/sdk/flow.hpp).
  template <class T>
  static Harness of() {
    return Harness(sluice::sdk::flowType<T>(), nullptr);
  }
  /// Flow type `type_name` of the plugin file `so_path` (loaded with dlopen; unloaded with the
  /// harness). Throws std::runtime_error when it cannot be loaded or has no such type.
  static Harness load(const std::string& so_path, const std::string& type_name) {
    void* handle = ::dlopen(so_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
    std::shared_ptr<void> lib(handle, [](void* h) { ::dlclose(h); });
    auto entry = reinterpret_cast<sluice_plugin_entry_fn>(::dlsym(handle, SLUICE_ENTRY_SYMBOL));
    if (entry == nullptr) throw std::runtime_error(so_path + ": no " SLUICE_ENTRY_SYMBOL);
    sluice_plugin_descriptor d{};
    const sluice_plugin_descriptor* given = entry();
    if (given == nullptr) throw std::runtime_error(so_path + ": null descriptor");
    std::memcpy(&d, given, std::min<size_t>(given->struct_size, sizeof d));
    if (d.abi_major != SLUICE_ABI_MAJOR || d.abi_minor > SLUICE_ABI_MINOR) {
      throw std::runtime_error(so_path + ": needs ABI " + std::to_string(d.abi_major) + "." +
                               std::to_string(d.abi_minor));
    }
    const sluice_flow_type* found = nullptr;
    for (uint32_t i = 0; i < d.flow_type_count; ++i) {
      const sluice_flow_type* t = d.flow_types[i];
      if (t != nullptr && t->name != nullptr && type_name == t->name) found = t;
    }
    if (found == nullptr) throw std::runtime_error(so_path + ": no flow type '" + type_name + "'");
    // The plugin-level hooks, as the engine calls them: init once per load, shutdown before
    // the library is unloaded.
    if (d.init != nullptr) {
      char message[1024] = "";
      sluice_error err{sizeof(sluice_error), message, sizeof message};
      if (d.init(&err) != SLUICE_OK) {
        throw std::runtime_error(so_path + ": plugin init failed: " + message);
      }
    }
    if (d.shutdown != nullptr) {
      lib = std::shared_ptr<void>(handle, [shutdown = d.shutdown, keep = lib](void*) mutable {
        shutdown();
        keep.reset();  // then dlclose
      });
    }
    return Harness(found, std::move(lib));
  }

  // Not copyable or movable: a dedicated-thread flow's run() works on this object. Harness::of
  // and Harness::load return a prvalue, so `auto h = Harness::of<T>();` needs neither.
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;
  ~Harness() {
    if (state_ && instance_ != nullptr) destroy();
    if (state_ && !state_->files_root.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(state_->files_root, ec);
    }
  }

  // ---- the lifecycle, as the engine drives it
  /// What the engine checks before a config is accepted: the type's JSON Schema (as the engine
  /// checks it, with RapidJSON's validator; the first violation), then its validate hook. The
  /// problems found (empty = valid).
  std::vector<Problem> validate(const std::string& config_json) const {
    std::vector<Problem> out;
    if (type_.config_schema != nullptr) {
      rapidjson::Document schema_doc;
      schema_doc.Parse(type_.config_schema);
      rapidjson::Document config;
      config.Parse(config_json.data(), config_json.size());
      if (schema_doc.HasParseError()) return {{"", "the type's config_schema is not valid JSON"}};
      if (config.HasParseError()) return {{"", "config is not valid JSON"}};
      rapidjson::SchemaDocument schema(schema_doc);
      rapidjson::SchemaValidator validator(schema);
      if (!config.Accept(validator)) {
        rapidjson::StringBuffer where;
        validator.GetInvalidDocumentPointer().Stringify(where);
        return {{where.GetString(), std::string("does not satisfy the type's schema (") +
                                        validator.GetInvalidSchemaKeyword() + ")"}};
      }
    }
    if (type_.validate == nullptr) return out;
    sluice_problems sink{sizeof(sluice_problems), &out,
                         [](void* ctx, const char* p, size_t pn, const char* m, size_t mn) {
                           static_cast<std::vector<Problem>*>(ctx)->push_back(
                               {std::string(p, pn), std::string(m, mn)});
                         }};
    const sluice_status rc = type_.validate(config_json.data(), config_json.size(), &sink);
    if (rc != SLUICE_OK && out.empty()) out.push_back({"", "validate failed without a reason"});
    return out;
  }
  /// create: a new instance from `config_json` (the previous one, if any, is destroyed first).
  Outcome create(const std::string& config_json = "{}") {
    if (instance_ != nullptr) destroy();
    resetSignals();
    return call([&](sluice_error* e) {
      return type_.create(&state_->table, config_json.data(), config_json.size(), &instance_, e);
    });
  }
  Outcome start() {
    Outcome o = call([&](sluice_error* e) { return type_.start(need(), e); });
    if (o.ok && (type_.flags & SLUICE_FLOW_DEDICATED_THREAD) != 0) startRun();
    return o;
  }
  /// One step; `next_delay_ms` of the outcome is the delay the step asked for.
  Outcome step() {
    if (type_.step == nullptr) return {false, "flow type has no step hook", 0};
    uint32_t next = type_.step_interval_ms;
    Outcome o = call([&](sluice_error* e) { return type_.step(need(), &next, e); });
    o.next_delay_ms = next;
    return o;
  }
  Outcome pause() {
    state_->paused = true;
    if (type_.pause == nullptr) return {true, "", 0};
    return call([&](sluice_error* e) { return type_.pause(need(), e); });
  }
  Outcome resume() {
    state_->paused = false;
    if (type_.resume == nullptr) return {true, "", 0};
    return call([&](sluice_error* e) { return type_.resume(need(), e); });
  }
  /// stop: raises the stop request (and cancellation for a hard stop), waits for a
  /// dedicated-thread flow's run() to return (its outcome: runOutcome()), then calls stop.
  Outcome stop(Stop mode = Stop::kSoft) {
    state_->stop_requested = true;
    if (mode == Stop::kHard) state_->cancelled = true;
    state_->wake();
    awaitRun();
    return call([&](sluice_error* e) { return type_.stop(need(), static_cast<int32_t>(mode), e); });
  }
  Outcome reconfigure(const std::string& config_json) {
    if (type_.reconfigure == nullptr) return {false, "flow type cannot reconfigure in place", 0};
    return call([&](sluice_error* e) {
      return type_.reconfigure(need(), config_json.data(), config_json.size(), e);
    });
  }
  /// destroy: releases the instance (called by the destructor when the test did not).
  void destroy() {
    if (instance_ == nullptr) return;
    state_->stop_requested = true;
    state_->wake();
    awaitRun();
    type_.destroy(instance_);
    instance_ = nullptr;
  }
  /// A dedicated-thread flow: the outcome of run() once it returned.
  std::optional<Outcome> runOutcome() const {
    std::lock_guard lock(state_->mu);
    return state_->run_outcome;
  }
  /// A dedicated-thread flow: whether run() has returned (on its own, or after a stop).
  bool runEnded() const { return runOutcome().has_value(); }
  /// How long stop() and destroy() wait for run() before they raise cancellation, as the
  /// engine's stop timeout does (default 5 s).
  void setStopTimeout(std::chrono::milliseconds timeout) { stop_timeout_ = timeout; }

  // ---- what the host saw
  int64_t counter(const std::string& name) const {
    std::lock_guard lock(state_->mu);
    auto it = state_->counters.find(name);
    return it == state_->counters.end() ? 0 : it->second;
  }
  std::optional<double> gauge(const std::string& name) const {
    std::lock_guard lock(state_->mu);
    auto it = state_->gauges.find(name);
    if (it == state_->gauges.end()) return std::nullopt;
    return it->second;
  }
  std::vector<LogLine> logs() const {
    std::lock_guard lock(state_->mu);
    return state_->logs;
  }
  /// The bytes the flow wrote to `stream` through output() (ABI 1.4), in order.
  std::string output(int32_t stream = SLUICE_OUTPUT_STDOUT) const {
    std::lock_guard lock(state_->mu);
    auto it = state_->output.find(stream);
    return it == state_->output.end() ? std::string() : it->second;
  }
  /// Whether a captured log line contains `text`.
  bool logged(const std::string& text) const {
    for (const auto& l : logs()) {
      if (l.message.find(text) != std::string::npos) return true;
    }
    return false;
  }
  /// Durable state: preset before create to test a resume from a checkpoint, read after.
  void setState(const std::string& key, const std::string& value) {
    std::lock_guard lock(state_->mu);
    state_->state[key] = value;
  }
  std::optional<std::string> state(const std::string& key) const {
    std::lock_guard lock(state_->mu);
    auto it = state_->state.find(key);
    if (it == state_->state.end()) return std::nullopt;
    return it->second;
  }
  /// Makes every state function fail as a broken store would (state_lookup: SLUICE_ERROR).
  void failState(bool fail) { state_->state_fails = fail; }

  // ---- what the test controls
  /// The clock now_ms returns (ms since the Unix epoch); advance it with advanceClock.
  void setClock(int64_t now_ms) { state_->now_ms = now_ms; }
  void advanceClock(int64_t ms) { state_->now_ms += ms; }
  /// Raises cancellation (what a hard stop or a soft stop past its timeout does).
  void cancel() {
    state_->cancelled = true;
    state_->wake();
  }
  /// The files root handed to the plugin: a fresh temporary directory, removed with the harness.
  const std::filesystem::path& filesRoot() const { return state_->files_root; }
  const std::string& flowId() const { return state_->flow_id; }
  /// The raw flow type, for checks on what it declares (flags, schema, version).
  const sluice_flow_type& type() const { return type_; }

 private:
  struct HostState {
    std::mutex mu;
    std::map<std::string, int64_t> counters;   // guarded by mu
    std::map<std::string, double> gauges;      // guarded by mu
    std::map<std::string, std::string> state;  // guarded by mu
    std::vector<LogLine> logs;                 // guarded by mu
    std::map<int32_t, std::string> output;     // guarded by mu
    std::optional<Outcome> run_outcome;        // guarded by mu
    std::condition_variable run_done;
    std::atomic<bool> cancelled{false}, stop_requested{false}, paused{false}, state_fails{false};
    std::atomic<int64_t> now_ms{1'700'000'000'000};
    int stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // readable once stop or cancel
    ~HostState() {
      if (stop_fd >= 0) ::close(stop_fd);
    }
    void wake() {
      const uint64_t one = 1;
      if (stop_fd >= 0) [[maybe_unused]]
        auto n = ::write(stop_fd, &one, sizeof one);
    }
    std::string flow_id = "test-flow";
    std::filesystem::path files_root;
    std::string files_root_text;
    sluice_host table{};
  };

  Harness(const sluice_flow_type* type, std::shared_ptr<void> library)
      : library_(std::move(library)), state_(std::make_unique<HostState>()) {
    std::memcpy(&type_, type, std::min<size_t>(type->struct_size, sizeof type_));
    std::string dir = (std::filesystem::temp_directory_path() / "sluice-harness-XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("harness: mkdtemp failed");
    state_->files_root = std::filesystem::canonical(dir);
    state_->files_root_text = state_->files_root.string();
    bindHost();
  }

  static HostState* hs(void* ctx) { return static_cast<HostState*>(ctx); }

  void bindHost() {
    sluice_host& h = state_->table;
    h.struct_size = sizeof(sluice_host);
    h.abi_major = SLUICE_ABI_MAJOR;
    h.abi_minor = SLUICE_ABI_MINOR;
    h.ctx = state_.get();
    h.flow_id = state_->flow_id.c_str();
    h.flow_id_len = state_->flow_id.size();
    h.files_root = state_->files_root_text.c_str();
    h.files_root_len = state_->files_root_text.size();
    h.log = [](void* c, int32_t level, const char* m, size_t n) {
      std::lock_guard lock(hs(c)->mu);
      hs(c)->logs.push_back({level, std::string(m, n)});
    };
    h.counter_add = [](void* c, const char* n, size_t nl, int64_t d) {
      std::lock_guard lock(hs(c)->mu);
      hs(c)->counters[std::string(n, nl)] += d;
    };
    h.gauge_set = [](void* c, const char* n, size_t nl, double v) {
      std::lock_guard lock(hs(c)->mu);
      hs(c)->gauges[std::string(n, nl)] = v;
    };
    h.is_cancelled = [](void* c) -> int32_t { return hs(c)->cancelled ? 1 : 0; };
    h.is_paused = [](void* c) -> int32_t { return hs(c)->paused ? 1 : 0; };
    h.is_stop_requested = [](void* c) -> int32_t { return hs(c)->stop_requested ? 1 : 0; };
    h.now_ms = [](void* c) -> int64_t { return hs(c)->now_ms; };
    h.stop_fd = [](void* c) -> int32_t { return hs(c)->stop_fd; };
    h.output = [](void* c, int32_t stream, const char* data, size_t n) {
      std::lock_guard lock(hs(c)->mu);
      hs(c)->output[stream].append(data, n);
    };
    h.state_lookup = [](void* c, const char* k, size_t kn, sluice_value_sink sink,
                        void* sctx) -> sluice_status {
      if (hs(c)->state_fails) return SLUICE_ERROR;
      std::string value;
      {
        std::lock_guard lock(hs(c)->mu);
        auto it = hs(c)->state.find(std::string(k, kn));
        if (it == hs(c)->state.end()) return SLUICE_ABSENT;
        value = it->second;
      }
      sink(sctx, value.data(), value.size());  // no lock held: the sink may call the host
      return SLUICE_OK;
    };
    h.state_get = [](void* c, const char* k, size_t kn, sluice_value_sink sink,
                     void* sctx) -> sluice_status {
      sluice_status rc = hs(c)->table.state_lookup(c, k, kn, sink, sctx);
      return rc == SLUICE_OK ? SLUICE_OK : SLUICE_ERROR;
    };
    h.state_put = [](void* c, const char* k, size_t kn, const char* v, size_t vn) -> sluice_status {
      if (hs(c)->state_fails) return SLUICE_ERROR;
      std::lock_guard lock(hs(c)->mu);
      hs(c)->state[std::string(k, kn)] = std::string(v, vn);
      return SLUICE_OK;
    };
    h.state_delete = [](void* c, const char* k, size_t kn) -> sluice_status {
      if (hs(c)->state_fails) return SLUICE_ERROR;
      std::lock_guard lock(hs(c)->mu);
      hs(c)->state.erase(std::string(k, kn));
      return SLUICE_OK;
    };
  }

  void* need() const {
    if (instance_ == nullptr) throw std::logic_error("Harness: call create() first");
    return instance_;
  }

  template <class Fn>
  static Outcome call(Fn&& fn) {
    char buf[1024] = "";
    sluice_error e{sizeof(sluice_error), buf, sizeof buf};
    const sluice_status rc = fn(&e);
    buf[sizeof buf - 1] = '\0';
    if (rc == SLUICE_OK) return {true, "", 0};
    if (rc == SLUICE_DONE) return {true, "", 0, true};
    return {false, buf[0] != '\0' ? buf : "no message", 0};
  }

  void resetSignals() {
    state_->cancelled = false;
    state_->stop_requested = false;
    state_->paused = false;
    uint64_t value = 0;
    while (state_->stop_fd >= 0 && ::read(state_->stop_fd, &value, sizeof value) > 0) {
    }
    std::lock_guard lock(state_->mu);
    state_->run_outcome.reset();
  }

  void startRun() {
    joinRun();
    run_ = std::thread([state = state_.get(), run = type_.run, instance = instance_] {
      Outcome o = call([&](sluice_error* e) { return run(instance, e); });
      std::lock_guard lock(state->mu);
      state->run_outcome = o;
      state->run_done.notify_all();
    });
  }
  // Waits for run() up to the stop timeout, then raises cancellation (as the engine escalates a
  // soft stop) and waits for it to return.
  void awaitRun() {
    if (!run_.joinable()) return;
    {
      std::unique_lock lock(state_->mu);
      if (!state_->run_done.wait_for(lock, stop_timeout_,
                                     [&] { return state_->run_outcome.has_value(); })) {
        state_->cancelled = true;
        state_->wake();
      }
    }
    joinRun();
  }
  void joinRun() {
    if (run_.joinable()) run_.join();
  }

  std::shared_ptr<void> library_;  // the loaded .so, if any: unloaded last
  sluice_flow_type type_{};
  std::unique_ptr<HostState> state_;
  void* instance_ = nullptr;
  std::thread run_;
  std::chrono::milliseconds stop_timeout_{5000};
};

}  // namespace sluice::testing
