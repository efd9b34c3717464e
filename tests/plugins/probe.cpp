// Test plugin `probe`: a step flow whose config injects faults into chosen hooks.
//   interval_ms: delay between steps (default 10); each step adds 1 to `steps`
//   fail: "<hook>"   the hook returns an error
//   throw: "<hook>"  the hook throws
//   block: "<hook>", block_ms: N   the hook sleeps N ms (returning early on cancellation unless
//                                  ignore_cancel is true)
//   bad: true        validate reports a problem at /bad
// Every hook call adds 1 to the counter `calls.<hook>`.
#include <sluice/sdk/flow.hpp>

#include <chrono>
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
    if (const auto* v = config.find("bad"); v != nullptr && v->IsBool() && v->GetBool()) {
      problems.add("/bad", "bad is set");
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
                       config.find("ignore_cancel")->IsBool() &&
                       config.find("ignore_cancel")->GetBool()) {
    inject("create");
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
    return s;
  }

 private:
  Status inject(const std::string& hook) {
    host().counterAdd("calls." + hook);
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
};

}  // namespace

SLUICE_PLUGIN("probe", "0.1.0", ProbeFlow)
