// `noop`: the default flow type. It has a lifecycle and does no work.
#include <sluice/sdk/flow.hpp>

namespace {

class NoopFlow : public sluice::sdk::Flow {
 public:
  static constexpr const char* kName = "noop";
  static constexpr const char* kDescription = "Lifecycle only: starts, pauses, resumes and stops.";
  static constexpr const char* kConfigSchema = R"({"type": "object"})";

  NoopFlow(sluice::sdk::Host host, const sluice::sdk::Config&) : Flow(host) {}
};

}  // namespace

SLUICE_PLUGIN("noop", "1.0.0", NoopFlow)
