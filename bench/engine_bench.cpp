// Micro-benchmarks of the hot paths behind the REST service (Google Benchmark).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <future>

#include <spdlog/spdlog.h>

#include "core/engine.hpp"
#include "core/flow_spec.hpp"
#include "core/json.hpp"

namespace {

std::string bulkBody(int n) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    if (i) body += ",";
    body += R"({"flow_id":"f)" + std::to_string(i) +
            R"(","type":"ticker","config":{"interval_ms":1000},"name":"flow )" + std::to_string(i) + R"("})";
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
    h.engine().command(req, [&p](sluice::Result<std::vector<sluice::CommandDetail>>) { p.set_value(); });
    p.get_future().wait();
  }
}
BENCHMARK(BM_CommandRoundTrip);

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
