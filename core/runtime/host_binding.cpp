#include "core/runtime/host_binding.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/model/wall_clock.hpp"

namespace sluice {
namespace {
HostBinding* self(void* ctx) { return static_cast<HostBinding*>(ctx); }
}  // namespace

HostBinding::HostBinding(std::string flow_id, Incarnation incarnation, std::string files_root,
                         Store* store, FlowSignals* signals, FlowLogs* logs)
    : id_(std::move(flow_id)),
      incarnation_(incarnation),
      files_root_(std::move(files_root)),
      store_(store),
      signals_(signals),
      logs_(logs) {
  sluice_host& h = table_;
  h.struct_size = sizeof(sluice_host);
  h.abi_major = SLUICE_ABI_MAJOR;
  h.abi_minor = SLUICE_ABI_MINOR;
  h.ctx = this;
  h.flow_id = id_.c_str();
  h.flow_id_len = id_.size();
  h.log = &log;
  h.counter_add = &counterAdd;
  h.gauge_set = &gaugeSet;
  h.is_cancelled = &isCancelled;
  h.is_paused = &isPaused;
  h.now_ms = &nowMs;
  h.state_get = &stateGet;
  h.state_put = &statePut;
  h.state_delete = &stateDelete;
  h.is_stop_requested = &isStopRequested;
  h.files_root = files_root_.c_str();
  h.files_root_len = files_root_.size();
  h.state_lookup = &stateLookup;
  h.stop_fd = &stopFd;
  h.output = &output;
}

void HostBinding::detach() {
  flushOutput();
  {
    std::lock_guard lock(store_mu_);
    store_ = nullptr;
  }
  std::lock_guard lock(mu_);
  logs_ = nullptr;
  signals_ = nullptr;
  metrics_detached_.store(true, std::memory_order_release);
}

void HostBinding::log(void* ctx, int32_t level, const char* msg, size_t len) {
  spdlog::level::level_enum l = spdlog::level::err;
  switch (level) {
    case SLUICE_LOG_TRACE:
      l = spdlog::level::trace;
      break;
    case SLUICE_LOG_DEBUG:
      l = spdlog::level::debug;
      break;
    case SLUICE_LOG_INFO:
      l = spdlog::level::info;
      break;
    case SLUICE_LOG_WARN:
      l = spdlog::level::warn;
      break;
    default:
      break;
  }
  spdlog::log(l, "flow {}: {}", self(ctx)->id_, std::string_view(msg, len));
}

void HostBinding::output(void* ctx, int32_t stream, const char* data, size_t len) {
  auto* b = self(ctx);
  const int32_t s = stream == SLUICE_OUTPUT_STDERR ? SLUICE_OUTPUT_STDERR : SLUICE_OUTPUT_STDOUT;
  std::lock_guard lock(b->mu_);
  if (b->logs_ == nullptr) return;
  std::vector<std::string> lines;
  b->out_[s - 1].feed(std::string_view(data, len),
                      [&](std::string_view line) { lines.emplace_back(line); });
  b->logs_->append(b->id_, s, lines);
}

void HostBinding::dropOutput() {
  std::lock_guard lock(mu_);
  logs_ = nullptr;
}

void HostBinding::flushOutput() {
  std::lock_guard lock(mu_);
  if (logs_ == nullptr) return;
  for (int32_t s : {SLUICE_OUTPUT_STDOUT, SLUICE_OUTPUT_STDERR}) {
    std::vector<std::string> lines;
    out_[s - 1].flush([&](std::string_view line) { lines.emplace_back(line); });
    logs_->append(id_, s, lines);
  }
}

void HostBinding::counterAdd(void* ctx, const char* name, size_t len, int64_t delta) {
  auto* b = self(ctx);
  if (!b->metrics_detached_.load(std::memory_order_acquire)) {
    b->metrics_.add(std::string(name, len), delta);
  }
}

void HostBinding::gaugeSet(void* ctx, const char* name, size_t len, double value) {
  auto* b = self(ctx);
  if (!b->metrics_detached_.load(std::memory_order_acquire)) {
    b->metrics_.set(std::string(name, len), value);
  }
}

int32_t HostBinding::isCancelled(void* ctx) {
  auto* b = self(ctx);
  std::lock_guard lock(b->mu_);
  return b->signals_ == nullptr || b->signals_->cancel.load() ? 1 : 0;
}

int32_t HostBinding::isPaused(void* ctx) {
  auto* b = self(ctx);
  std::lock_guard lock(b->mu_);
  return b->signals_ != nullptr && b->signals_->pause_requested.load() ? 1 : 0;
}

int32_t HostBinding::stopFd(void* ctx) {
  auto* b = self(ctx);
  std::lock_guard lock(b->mu_);
  if (b->signals_ != nullptr) return b->signals_->stopFd();
  return b->detached_wake_.fd(true);  // detached: stopped for good
}

int32_t HostBinding::isStopRequested(void* ctx) {
  auto* b = self(ctx);
  std::lock_guard lock(b->mu_);
  return b->signals_ == nullptr || b->signals_->stop_requested.load() ? 1 : 0;
}

int64_t HostBinding::nowMs(void*) { return wallClockMs(); }

int32_t HostBinding::stateLookup(void* ctx, const char* key, size_t len, sluice_value_sink sink,
                                 void* sink_ctx) {
  auto* b = self(ctx);
  std::optional<std::string> value;
  {
    // The store call is made under the lock (detach waits for it); the sink is plugin code and
    // is called after the lock is released: it may call host functions.
    std::lock_guard lock(b->store_mu_);
    if (b->store_ == nullptr) return SLUICE_ERROR;
    auto r = b->store_->stateGet(b->incarnation_, std::string(key, len));
    if (!r.ok()) {
      spdlog::error("flow {}: reading state '{}' failed: {}", b->id_, std::string(key, len),
                    r.error().message);
      return SLUICE_ERROR;
    }
    value = std::move(r.value());
  }
  if (!value) return SLUICE_ABSENT;
  sink(sink_ctx, value->data(), value->size());
  return SLUICE_OK;
}

int32_t HostBinding::stateGet(void* ctx, const char* key, size_t len, sluice_value_sink sink,
                              void* sink_ctx) {
  // ABI 1.0 semantics: anything but a value is an error.
  return stateLookup(ctx, key, len, sink, sink_ctx) == SLUICE_OK ? SLUICE_OK : SLUICE_ERROR;
}

int32_t HostBinding::statePut(void* ctx, const char* key, size_t len, const char* value,
                              size_t value_len) {
  auto* b = self(ctx);
  std::lock_guard lock(b->store_mu_);
  if (b->store_ == nullptr) return SLUICE_ERROR;
  auto r =
      b->store_->statePut(b->incarnation_, std::string(key, len), std::string(value, value_len));
  return r.ok() ? SLUICE_OK : SLUICE_ERROR;
}

int32_t HostBinding::stateDelete(void* ctx, const char* key, size_t len) {
  auto* b = self(ctx);
  std::lock_guard lock(b->store_mu_);
  if (b->store_ == nullptr) return SLUICE_ERROR;
  auto r = b->store_->stateDelete(b->incarnation_, std::string(key, len));
  return r.ok() ? SLUICE_OK : SLUICE_ERROR;
}

}  // namespace sluice
