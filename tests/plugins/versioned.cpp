// One flow type, "versioned", built several times at different versions (VERSIONED_VERSION):
// the side-by-side, reload and upgrade tests copy these into a plugin directory of their own.
// It reports the version it runs as the gauge "running_major"/"running_minor"; with
// VERSIONED_START_FAILS its start fails (the upgrade's rollback).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sluice/sdk/flow.hpp>
#include <string>

using sluice::sdk::Status;

class Versioned : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "versioned";
  static constexpr const char* kDescription = "counts steps; built at several versions";
  static constexpr const char* kVersion = VERSIONED_VERSION;
  static constexpr uint32_t kStepIntervalMs = 20;
  Versioned(sluice::sdk::Host host, const sluice::sdk::Config&) : StepFlow(host) {}
  Status start() override {
#ifdef VERSIONED_START_FAILS
    return Status::error(std::string("version ") + kVersion + " refuses to start");
#else
    host().gaugeSet("running_minor", VERSIONED_MINOR);
    return Status::ok();
#endif
  }
  Status step(sluice::sdk::StepControl&) override {
    host().counterAdd("steps");
    return Status::ok();
  }
};

namespace {

// With SLUICE_VERSIONED_HOOKS naming a file, the plugin hooks append "init|shutdown VERSION PID".
void record(const char* what) {
  const char* path = std::getenv("SLUICE_VERSIONED_HOOKS");
  if (path == nullptr) return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "%s %s %d\n", what, VERSIONED_VERSION, static_cast<int>(::getpid()));
    std::fclose(f);
  }
}
Status initPlugin() {
  record("init");
  return Status::ok();
}
void shutdownPlugin() { record("shutdown"); }

}  // namespace

SLUICE_PLUGIN_WITH_HOOKS("versioned", "0.0.0", initPlugin, shutdownPlugin, Versioned)
