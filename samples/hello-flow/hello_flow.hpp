// The hello flow type: greets someone on every step. Built into the plugin (hello_flow.cpp) and,
// for the harness's compiled-in tests, straight into hello_flow_test.
#pragma once

#include <sluice/sdk/flow.hpp>
#include <string>

class Hello : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "hello";
  static constexpr const char* kDescription = "Greets someone every config.every_ms.";
  static constexpr const char* kConfigSchema = R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "minLength": 1},
      "every_ms": {"type": "integer", "minimum": 10}
    }
  })";

  Hello(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host),
        name_(config.getString("name", "world")),
        every_ms_(static_cast<uint32_t>(config.getInt("every_ms", 1000))) {}

  sluice::sdk::Status step(sluice::sdk::StepControl& next) override {
    host().info("hello, " + name_);
    host().counterAdd("greetings");
    next.nextIn(every_ms_);
    return sluice::sdk::Status::ok();
  }

 private:
  std::string name_;
  uint32_t every_ms_;
};
