// embedded-host: an application that embeds the Sluice engine and registers a flow type of its
// own, compiled into it (no .so). Its "work" is taking orders (a thread makes one every 10 ms);
// the flow type `order-counter` counts them into the flow's metrics, the way a real application
// would expose its own activity as a flow. Built with WITH_HTTP it also serves the REST API on
// a port of its own; without, it links no HTTP at all. docs/embedding.md walks through it.
//
//   embedded_host --data-dir DIR [--port N]   serves until SIGTERM or SIGINT
//   embedded_engine_only --data-dir DIR       runs until 10 orders were counted, then exits
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <iostream>
#include <sluice/sdk/flow.hpp>
#include <string>
#include <thread>

#include "core/engine/engine.hpp"
#include "core/isolation/helper_mode.hpp"
#include "core/model/json.hpp"
#ifdef WITH_HTTP
#include "api/server.hpp"
#endif

namespace {

std::atomic<int64_t> g_orders{0};  // the application's own state

// A flow type compiled into the application, written with the same SDK classes as a plugin.
class OrderCounter : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "order-counter";
  static constexpr const char* kDescription = "Counts the orders the host application took.";
  static constexpr uint32_t kStepIntervalMs = 20;
  OrderCounter(sluice::sdk::Host host, const sluice::sdk::Config&) : StepFlow(host) {}
  sluice::sdk::Status step(sluice::sdk::StepControl&) override {
    const int64_t now = g_orders.load();
    if (now > seen_) host().counterAdd("orders", now - seen_);
    seen_ = now;
    return sluice::sdk::Status::ok();
  }

 private:
  int64_t seen_ = 0;
};

int64_t counted(sluice::Engine& engine) {
  auto status = engine.status("orders");
  if (!status) return 0;
  for (const auto& [name, value] : status->counters) {
    if (name == "orders") return value;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The engine runs helpers (a flow's host process, the plugin scanner) from this executable.
  if (auto rc = sluice::runHelperMode(argc, argv)) return *rc;
  std::string data_dir = "embedded-data";
  [[maybe_unused]] uint16_t port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--data-dir") == 0) data_dir = argv[i + 1];
    if (std::strcmp(argv[i], "--port") == 0) port = static_cast<uint16_t>(std::stoi(argv[i + 1]));
  }
  // Signals are waited for in main; every thread started from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  sluice::EngineOptions options;
  options.data_dir = data_dir;
  options.builtin_plugins.push_back(
      {"embedded-host", "1.0.0", {sluice::sdk::flowType<OrderCounter>()}});
  auto opened = sluice::Engine::open(options);
  if (!opened.ok()) {
    std::cerr << "cannot open the engine: " << opened.error().message << "\n";
    return 1;
  }
  sluice::Engine& engine = *opened.value();

  // The application's flow, created once (it is stored in data_dir and restored on restart).
  if (!engine.getJson("orders")) {
    rapidjson::Document doc;
    sluice::json::parse(R"({"flow_id": "orders", "type": "order-counter"})", doc, nullptr);
    sluice::FlowSpec spec;
    std::vector<sluice::Problem> problems;
    if (!sluice::parseFlowSpec(doc, "", &spec, problems) || !engine.create({spec}).ok()) {
      std::cerr << "cannot create the flow\n";
      return 1;
    }
  }
  std::promise<bool> started;
  engine.command(
      {sluice::Command::kStart, sluice::StopMode::kSoft, std::vector<std::string>{"orders"}},
      [&](sluice::Result<std::vector<sluice::CommandDetail>> r) {
        started.set_value(r.ok() && r.value()[0].state == sluice::State::kRunning);
      });
  if (!started.get_future().get()) {
    std::cerr << "the flow did not start\n";
    return 1;
  }
  std::atomic<bool> stop{false};
  std::thread orders([&] {
    while (!stop) {
      g_orders.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });

#ifdef WITH_HTTP
  sluice::ServerOptions server_options;
  server_options.port = port;
  sluice::Server server(engine, server_options);
  std::cout << "listening on 127.0.0.1:" << server.port() << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  server.drainAndStop(5'000);
#else
  while (counted(engine) < 10) std::this_thread::sleep_for(std::chrono::milliseconds(20));
#endif
  stop = true;
  orders.join();
  std::cout << "orders counted: " << counted(engine) << std::endl;
  engine.shutdown();  // flows stop softly; their desired state is kept for the next start
  return 0;
}
