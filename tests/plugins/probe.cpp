// Test plugin `probe`: a step flow whose config injects faults into chosen hooks.
//   interval_ms: delay between steps (default 10); each step adds 1 to `steps`
//   fail: "<hook>"   the hook returns an error
//   throw: "<hook>"  the hook throws
//   block: "<hook>", block_ms: N   the hook sleeps N ms (returning early on cancellation unless
//                                  ignore_cancel is true)
//   bad: true        validate reports a problem at /bad
//   trace_file: "x"  every hook call appends "<hook>\n" to <files root>/x (order of calls)
//   live_dir: "d"    while the instance exists, the file <files root>/d/<address> exists (tests
//                    count live instances of flows that are gone)
//   validate_block_ms: N   validate sleeps N ms (a validate hook that does not return in time)
//   validate_crash: true   validate dereferences a wild pointer (SIGSEGV)
//   done_after: N    the Nth step reports the flow's work finished (SLUICE_DONE, ABI 1.3)
//   fail_after: N    the Nth step fails
// Every hook call adds 1 to the counter `calls.<hook>`.
//
// `probe-thread` is a dedicated-thread flow: run() loops (counter `loops`) until a stop is
// requested, idling (counter `idle`) while paused. exit_after: N returns ok after N loops;
// done_after: N returns done (SLUICE_DONE) after N loops; fail_after: N returns an error;
// ignore_stop: true keeps looping until cancelled;
// ignore_cancel: true with ignore_stop never returns before block_ms. block_on_stop_fd: true
// blocks in poll() on host().stopFd() alone until a stop wakes it (counter `woken`).
//
// `probe-reconf` is a step flow that applies new configs in place (counter `reconfigured`);
// a config with "refuse": true is refused by reconfigure.
#define SLUICE_PLUGIN_MIN_ABI_MINOR 3  // Status::done()
#include <poll.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sluice/sdk/flow.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

using sluice::sdk::Status;

class ProbeFlow : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "probe";
  static constexpr const char* kDescription = "Test flow with injectable faults.";
  static constexpr uint32_t kStepIntervalMs = 10;

  static void validate(const sluice::sdk::Config& config, sluice::sdk::Problems& problems) {
    if (const auto* v = config.find("bad"); v != nullptr && v->isBool() && v->asBool()) {
      problems.add("/bad", "bad is set");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(config.getInt("validate_block_ms", 0)));
    if (const auto* v = config.find("validate_crash"); v != nullptr && v->isBool() && v->asBool()) {
      volatile int* p = reinterpret_cast<volatile int*>(static_cast<uintptr_t>(16));
      *p = 42;  // NOLINT: the point of this mode
    }
  }

  ProbeFlow(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host),
        interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", 10))),
        fail_(config.getString("fail", "")),
        throw_(config.getString("throw", "")),
        block_(config.getString("block", "")),
        block_ms_(config.getInt("block_ms", 0)),
        ignore_cancel_(config.find("ignore_cancel") != nullptr &&
                       config.find("ignore_cancel")->isBool() &&
                       config.find("ignore_cancel")->asBool()),
        trace_file_(config.getString("trace_file", "")) {
    done_after_ = config.getInt("done_after", -1);
    fail_after_ = config.getInt("fail_after", -1);
    inject("create");
    if (auto dir = config.getString("live_dir", ""); !dir.empty()) {
      std::filesystem::create_directories(std::string(host.filesRoot()) + "/" + dir);
      live_file_ = std::string(host.filesRoot()) + "/" + dir + "/" +
                   std::to_string(reinterpret_cast<uintptr_t>(this));
      std::ofstream(live_file_) << "live\n";
    }
  }
  ~ProbeFlow() override {
    if (!live_file_.empty()) std::filesystem::remove(live_file_);
  }

  Status start() override { return inject("start"); }
  Status stop(sluice::sdk::StopMode mode) override {
    host().counterAdd(mode == sluice::sdk::StopMode::Hard ? "stops.hard" : "stops.soft");
    return inject("stop");
  }
  Status pause() override { return inject("pause"); }
  Status resume() override { return inject("resume"); }
  Status step(sluice::sdk::StepControl& control) override {
    if (host().pauseRequested()) host().counterAdd("steps_while_paused");
    Status s = inject("step");
    if (!s.isOk()) return s;
    host().counterAdd("steps");
    control.nextIn(interval_ms_);
    ++steps_;
    if (steps_ == done_after_) return Status::done();
    if (steps_ == fail_after_) {
      return Status::error("probe: failing at step " + std::to_string(steps_));
    }
    return s;
  }

 private:
  int64_t steps_ = 0;
  int64_t done_after_ = -1;
  int64_t fail_after_ = -1;
  Status inject(const std::string& hook) {
    host().counterAdd("calls." + hook);
    if (!trace_file_.empty()) {
      std::ofstream(std::string(host().filesRoot()) + "/" + trace_file_, std::ios::app)
          << hook << "\n";
    }
    if (block_ == hook) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(block_ms_);
      while (std::chrono::steady_clock::now() < until) {
        if (!ignore_cancel_ && host().cancelled()) {
          host().counterAdd("cancelled." + hook);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    if (throw_ == hook) throw std::runtime_error("probe: injected exception in " + hook);
    if (fail_ == hook) return Status::error("probe: injected failure in " + hook);
    return Status::ok();
  }

  uint32_t interval_ms_;
  std::string fail_;
  std::string throw_;
  std::string block_;
  int64_t block_ms_;
  bool ignore_cancel_;
  std::string trace_file_;
  std::string live_file_;
};

bool flag(const sluice::sdk::Config& c, const char* key) {
  const auto* v = c.find(key);
  return v != nullptr && v->isBool() && v->asBool();
}

class ProbeThread : public sluice::sdk::ThreadFlow {
 public:
  static constexpr const char* kName = "probe-thread";
  static constexpr const char* kDescription = "Test dedicated-thread flow.";

  ProbeThread(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : ThreadFlow(host),
        interval_ms_(config.getInt("interval_ms", 2)),
        exit_after_(config.getInt("exit_after", -1)),
        done_after_(config.getInt("done_after", -1)),
        fail_after_(config.getInt("fail_after", -1)),
        block_ms_(config.getInt("block_ms", 0)),
        ignore_stop_(flag(config, "ignore_stop")),
        ignore_cancel_(flag(config, "ignore_cancel")),
        block_on_fd_(flag(config, "block_on_stop_fd")) {}

  Status stop(sluice::sdk::StopMode mode) override {
    host().counterAdd(mode == sluice::sdk::StopMode::Hard ? "stops.hard" : "stops.soft");
    return Status::ok();
  }

  Status run() override {
    host().counterAdd("runs");
    if (block_on_fd_) {
      // Blocks on "its own I/O" (nothing ever arrives) and the stop descriptor only.
      const int fd = host().stopFd();
      if (fd < 0) return Status::error("probe-thread: no stop_fd");
      pollfd p{fd, POLLIN, 0};
      while (::poll(&p, 1, -1) < 0) {
      }
      host().counterAdd("woken");
      return Status::ok();
    }
    int64_t loops = 0;
    auto started = std::chrono::steady_clock::now();
    for (;;) {
      if (ignore_cancel_) {
        if (std::chrono::steady_clock::now() - started > std::chrono::milliseconds(block_ms_))
          break;
      } else if (host().cancelled()) {
        host().counterAdd("cancelled");
        break;
      } else if (!ignore_stop_ && host().stopRequested()) {
        host().counterAdd("finished");
        break;
      }
      if (host().pauseRequested()) {
        host().counterAdd("idle");
      } else {
        host().counterAdd("loops");
        ++loops;
        if (loops == exit_after_) return Status::ok();
        if (loops == done_after_) return Status::done();
        if (loops == fail_after_)
          return Status::error("probe-thread: failing after " + std::to_string(loops) + " loops");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms_));
    }
    return Status::ok();
  }

 private:
  int64_t interval_ms_;
  int64_t exit_after_;
  int64_t done_after_;
  int64_t fail_after_;
  int64_t block_ms_;
  bool ignore_stop_;
  bool ignore_cancel_;
  bool block_on_fd_;
};

class ProbeReconf : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "probe-reconf";
  static constexpr const char* kDescription = "Test step flow that reconfigures in place.";
  static constexpr const char* kConfigSchema =
      R"({"type":"object","properties":{"interval_ms":{"type":"integer","minimum":1},"refuse":{"type":"boolean"}}})";

  ProbeReconf(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host), interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", 5))) {}

  Status reconfigure(const sluice::sdk::Config& config) {
    if (flag(config, "refuse")) return Status::error("probe-reconf: refusing this config");
    interval_ms_ = static_cast<uint32_t>(config.getInt("interval_ms", 5));
    host().counterAdd("reconfigured");
    host().gaugeSet("interval_ms", interval_ms_);
    return Status::ok();
  }

  Status step(sluice::sdk::StepControl& control) override {
    host().counterAdd("steps");
    control.nextIn(interval_ms_);
    return Status::ok();
  }

 private:
  uint32_t interval_ms_;
};

}  // namespace

SLUICE_PLUGIN("probe", "0.1.0", ProbeFlow, ProbeThread, ProbeReconf)
