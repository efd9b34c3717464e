// The host functions of one flow: the `sluice_host` table its plugin instances get.
//
// A binding is shared (shared_ptr) by the flow and by every thread that may call it after the
// flow is gone: an orphaned dedicated thread, a host process's reader. Once detached (the flow
// was destroyed, or deleted and stopped), it answers "cancelled" and "stop requested", drops
// metrics, and refuses state reads and writes, so late plugin code touches no freed memory and
// no state of a later flow. No host function calls plugin code while holding the binding's lock.
#pragma once

#include <sluice/plugin.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "core/logs/flow_logs.hpp"
#include "core/runtime/flow_signals.hpp"
#include "core/runtime/small_mutex.hpp"
#include "core/store/store.hpp"

namespace sluice {

class HostBinding : public std::enable_shared_from_this<HostBinding> {
 public:
  /// `store`, `signals` and `logs` are borrowed: valid until detach() returns. `logs` null:
  /// output goes nowhere.
  HostBinding(std::string flow_id, Incarnation incarnation, std::string files_root, Store* store,
              FlowSignals* signals, FlowLogs* logs = nullptr);
  HostBinding(const HostBinding&) = delete;
  HostBinding& operator=(const HostBinding&) = delete;

  /// The table, co-owning this binding (for threads that may outlive the flow).
  std::shared_ptr<const sluice_host> table() { return {shared_from_this(), &table_}; }
  /// From now on every host function answers as for a flow that is gone. Waits for calls in
  /// flight that use the borrowed objects. Idempotent.
  void detach();
  /// Writes the partial lines of output left (a run ended) to the flow's log.
  void flushOutput();
  /// Drops output from now on (the flow is being deleted, its log with it).
  void dropOutput();
  /// The counters and gauges the plugin reports. They live in the binding, beside the flag a
  /// counter_add reads first (no lock of the binding's, no other object: the step path).
  FlowMetrics& metrics() { return metrics_; }

 private:
  static void log(void* ctx, int32_t level, const char* msg, size_t len);
  static void counterAdd(void* ctx, const char* name, size_t len, int64_t delta);
  static void gaugeSet(void* ctx, const char* name, size_t len, double value);
  static int32_t isCancelled(void* ctx);
  static int32_t isPaused(void* ctx);
  static int32_t isStopRequested(void* ctx);
  static int32_t stopFd(void* ctx);
  static int64_t nowMs(void* ctx);
  static int32_t stateGet(void* ctx, const char* key, size_t len, sluice_value_sink sink,
                          void* sink_ctx);
  static int32_t stateLookup(void* ctx, const char* key, size_t len, sluice_value_sink sink,
                             void* sink_ctx);
  static int32_t statePut(void* ctx, const char* key, size_t len, const char* value,
                          size_t value_len);
  static int32_t stateDelete(void* ctx, const char* key, size_t len);
  static void output(void* ctx, int32_t stream, const char* data, size_t len);

  const std::string id_;
  const Incarnation incarnation_;
  const std::string files_root_;
  sluice_host table_{};

  SmallMutex mu_;
  // Store calls hold a lock of their own across the store's time (detach waits for them), so
  // that a slow store never holds back the flow's metrics, output or signals.
  SmallMutex store_mu_;
  Store* store_;                               // guarded by store_mu_; null once detached
  FlowSignals* signals_;                       // guarded by mu_; null once detached
  WakeFd detached_wake_;                       // what stop_fd hands out once detached (raised)
  std::atomic<bool> metrics_detached_{false};  // set by detach(): counters are ignored after
  FlowMetrics metrics_;
  FlowLogs* logs_;       // guarded by mu_; null once detached
  LineSplitter out_[2];  // guarded by mu_: partial lines of stdout and stderr
};

}  // namespace sluice
