// Micro-benchmarks of the hot paths behind the REST service (Google Benchmark).
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <array>
#include <filesystem>
#include <future>

#include "core/engine/engine.hpp"
#include "core/isolation/instance.hpp"
#include "core/model/flow_spec.hpp"
#include "core/model/json.hpp"

namespace {

std::string bulkBody(int n) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    if (i) body += ",";
    body += R"({"flow_id":"f)" + std::to_string(i) +
            R"(","type":"ticker","config":{"interval_ms":1000},"name":"flow )" + std::to_string(i) +
            R"("})";
  }
  return body + "]";
}

void BM_ParseAndValidateBulk(benchmark::State& state) {
  const std::string body = bulkBody(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    rapidjson::Document doc;
    sluice::json::ParseError err;
    if (!sluice::json::parse(body, doc, &err)) state.SkipWithError("parse failed");
    std::vector<sluice::Problem> problems;
    for (const auto& v : doc.GetArray()) {
      sluice::FlowSpec spec;
      sluice::parseFlowSpec(v, "", &spec, problems);
      benchmark::DoNotOptimize(spec);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParseAndValidateBulk)->Arg(1000)->Arg(10000);

class EngineHolder {
 public:
  EngineHolder() {
    dir_ = std::filesystem::temp_directory_path() / "sluice-bench";
    std::filesystem::remove_all(dir_);
    sluice::EngineOptions o;
    o.data_dir = dir_;
    o.plugin_dirs = {SLUICE_BUNDLED_PLUGIN_DIR};
    o.host_executable = SLUICE_BINARY;  // this binary cannot serve as a flow host
    engine_ = std::move(sluice::Engine::open(o).value());
    std::vector<sluice::FlowSpec> specs;
    rapidjson::Document doc;
    sluice::json::parse(bulkBody(1000), doc, nullptr);
    std::vector<sluice::Problem> problems;
    for (const auto& v : doc.GetArray()) {
      sluice::FlowSpec s;
      sluice::parseFlowSpec(v, "", &s, problems);
      specs.push_back(std::move(s));
    }
    engine_->create(std::move(specs));
  }
  ~EngineHolder() {
    engine_->shutdown();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  sluice::Engine& engine() { return *engine_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<sluice::Engine> engine_;
};

void BM_ListJsonCached(benchmark::State& state) {
  EngineHolder h;
  for (auto _ : state) benchmark::DoNotOptimize(h.engine().listJson());
}
BENCHMARK(BM_ListJsonCached);

void BM_StatusSnapshot(benchmark::State& state) {
  EngineHolder h;
  for (auto _ : state) benchmark::DoNotOptimize(h.engine().status("f500"));
}
BENCHMARK(BM_StatusSnapshot);

void BM_CommandRoundTrip(benchmark::State& state) {
  EngineHolder h;
  sluice::CommandRequest req;
  req.flow_ids = std::vector<std::string>{"f1"};
  bool start = true;
  for (auto _ : state) {
    req.command = start ? sluice::Command::kStart : sluice::Command::kStop;
    start = !start;
    std::promise<void> p;
    h.engine().command(req,
                       [&p](sluice::Result<std::vector<sluice::CommandDetail>>) { p.set_value(); });
    p.get_future().wait();
  }
}
BENCHMARK(BM_CommandRoundTrip);

// Start + stop of one noop flow through the engine (two commands, two fsyncs), by isolation.
void BM_StartStop(benchmark::State& state) {
  EngineHolder h;
  const bool process = state.range(0) == 1;
  rapidjson::Document doc;
  sluice::json::parse(
      process ? R"({"flow_id":"iso","runtime":{"isolation":"process"}})" : R"({"flow_id":"iso"})",
      doc, nullptr);
  sluice::FlowSpec spec;
  std::vector<sluice::Problem> problems;
  sluice::parseFlowSpec(doc, "", &spec, problems);
  h.engine().create({spec});
  sluice::CommandRequest req;
  req.flow_ids = std::vector<std::string>{"iso"};
  for (auto _ : state) {
    for (auto c : {sluice::Command::kStart, sluice::Command::kStop}) {
      req.command = c;
      std::promise<void> p;
      h.engine().command(
          req, [&p](sluice::Result<std::vector<sluice::CommandDetail>>) { p.set_value(); });
      p.get_future().wait();
    }
  }
  state.SetLabel(process ? "process" : "thread");
}
BENCHMARK(BM_StartStop)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// One step hook call of a ticker instance: a direct call, or a round trip to its host process.
void BM_StepRoundTrip(benchmark::State& state) {
  sluice::PluginRegistry registry;
  registry.loadDirectory(SLUICE_BUNDLED_PLUGIN_DIR);
  auto type = registry.find("ticker");
  sluice_host host{};
  host.struct_size = sizeof host;
  host.flow_id = "bench";
  host.flow_id_len = 5;
  host.files_root = "/tmp";
  host.files_root_len = 4;
  host.log = [](void*, int32_t, const char*, size_t) {};
  host.counter_add = [](void*, const char*, size_t, int64_t) {};
  host.gauge_set = [](void*, const char*, size_t, double) {};
  host.is_cancelled = [](void*) { return 0; };
  host.is_paused = [](void*) { return 0; };
  host.is_stop_requested = [](void*) { return 0; };
  std::string error;
  std::shared_ptr<sluice::Instance> instance;
  if (state.range(0) == 1) {
    sluice::ProcessOptions o;
    o.host_executable = SLUICE_BINARY;
    instance = sluice::createProcessInstance(type, &host, "{}", o, nullptr, &error);
  } else {
    instance = sluice::createInProcessInstance(type, &host, "{}", &error);
  }
  if (!instance) {
    state.SkipWithError(error.c_str());
    return;
  }
  std::array<char, 256> buf{};
  sluice_error e{sizeof e, buf.data(), buf.size()};
  instance->start(&e);
  for (auto _ : state) {
    uint32_t next = 1000;
    benchmark::DoNotOptimize(instance->step(&next, &e));
  }
  instance->stop(SLUICE_STOP_SOFT, &e);
  state.SetLabel(state.range(0) == 1 ? "process" : "thread");
}
BENCHMARK(BM_StepRoundTrip)->Arg(0)->Arg(1);

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
