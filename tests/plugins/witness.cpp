// Test plugin `witness` (issue 10): records each run interval of a flow in the flow's durable
// state, so that a checker can prove that no flow ever ran twice at once in a cluster.
//   On start it writes the key "run/<node>/<pid>/<start ms>" with
//     {"node":"<node>","pid":<pid>,"start":<ms>,"end":<ms>}
//   and every step (interval_ms, default 50) rewrites it with a new "end". <node> is the
//   SLUICE_WITNESS_NODE environment variable of the engine process (the test sets it per node).
// In a cluster every state write carries the node's fencing epoch and the store refuses a stale
// one: a node that was paused or cut off and comes back cannot extend an interval past the
// moment its flow moved on. A refused write is counted (`refused`), the flow keeps stepping.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <sluice/sdk/flow.hpp>
#include <string>

namespace {

using sluice::sdk::Status;

class WitnessFlow : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "witness";
  static constexpr const char* kDescription = "Records its run intervals in durable state.";
  static constexpr const char* kConfigSchema =
      R"({"type":"object","properties":{"interval_ms":{"type":"integer","minimum":1}}})";

  WitnessFlow(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host), interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", 50))) {
    const char* node = std::getenv("SLUICE_WITNESS_NODE");
    node_ = node != nullptr ? node : "unnamed";
  }

  Status start() override {
    start_ms_ = host().nowMs();
    key_ = "run/" + node_ + "/" + std::to_string(::getpid()) + "/" + std::to_string(start_ms_);
    record(start_ms_);
    return Status::ok();
  }

  Status step(sluice::sdk::StepControl& control) override {
    record(host().nowMs());
    host().counterAdd("steps");
    control.nextIn(interval_ms_);
    return Status::ok();
  }

 private:
  void record(int64_t end_ms) {
    const std::string value = "{\"node\":\"" + node_ + "\",\"pid\":" + std::to_string(::getpid()) +
                              ",\"start\":" + std::to_string(start_ms_) +
                              ",\"end\":" + std::to_string(end_ms) + "}";
    if (!host().statePut(key_, value)) host().counterAdd("refused");
  }

  uint32_t interval_ms_;
  std::string node_;
  std::string key_;
  int64_t start_ms_ = 0;
};

}  // namespace

SLUICE_PLUGIN("witness", "0.1.0", WitnessFlow)
