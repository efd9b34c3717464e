// `ticker`: counts one `ticks` per `config.interval_ms` while running.
#include <sluice/sdk/flow.hpp>
#include <string>

namespace {

class TickerFlow : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "ticker";
  static constexpr const char* kDescription =
      "Counts `ticks` in its metrics, one per config.interval_ms (default 1000) while running.";
  static constexpr const char* kConfigSchema =
      R"({"type": "object", "properties": {"interval_ms": {"type": "integer", "minimum": 1}}})";
  static constexpr int64_t kMaxIntervalMs = 86'400'000;  // one day

  static void validate(const sluice::sdk::Config& config, sluice::sdk::Problems& problems) {
    const sluice::sdk::Json* v = config.find("interval_ms");
    if (v == nullptr) return;
    if (!v->isInt()) {
      problems.add("/interval_ms", "interval_ms must be an integer");
    } else if (v->asInt() < 1 || v->asInt() > kMaxIntervalMs) {
      problems.add("/interval_ms", "interval_ms must be between 1 and " +
                                       std::to_string(kMaxIntervalMs) + ", got " +
                                       std::to_string(v->asInt()));
    }
  }

  TickerFlow(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host), interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", 1000))) {}

  sluice::sdk::Status start() override {
    host().counterAdd("ticks", 0);  // the counter shows from the start, at 0
    first_ = true;
    return sluice::sdk::Status::ok();
  }

  sluice::sdk::Status resume() override {
    first_ = true;
    return sluice::sdk::Status::ok();
  }

  sluice::sdk::Status step(sluice::sdk::StepControl& control) override {
    // The engine calls step right after start; the first tick is due one interval later.
    if (first_) {
      first_ = false;
    } else {
      host().counterAdd("ticks", 1);
    }
    control.nextIn(interval_ms_);
    return sluice::sdk::Status::ok();
  }

 private:
  uint32_t interval_ms_;
  bool first_ = true;
};

}  // namespace

SLUICE_PLUGIN("ticker", "1.0.0", TickerFlow)
