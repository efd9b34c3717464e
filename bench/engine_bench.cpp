// Micro-benchmarks of the hot paths behind the REST service (Google Benchmark).
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "core/engine/engine.hpp"
#include "core/isolation/instance.hpp"
#include "core/model/flow_spec.hpp"
#include "core/model/json.hpp"
#include "core/runtime/flow_runtime.hpp"
#include "core/runtime/host_binding.hpp"

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
  explicit EngineHolder(int flows = 1000) {
    dir_ = std::filesystem::temp_directory_path() / "sluice-bench";
    std::filesystem::remove_all(dir_);
    sluice::EngineOptions o;
    o.data_dir = dir_;
    o.plugin_dirs = {SLUICE_BUNDLED_PLUGIN_DIR};
    o.host_executable = SLUICE_BINARY;  // this binary cannot serve as a flow host
    engine_ = std::move(sluice::Engine::open(o).value());
    std::vector<sluice::FlowSpec> specs;
    rapidjson::Document doc;
    sluice::json::parse(bulkBody(flows), doc, nullptr);
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

// A host table whose functions do nothing (the step benchmarks' instances).
sluice_host quietHost() {
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
  return host;
}

// One step hook call of a ticker instance: a direct call (0), or a round trip to its host
// process (1). With N > 1: N process-isolated instances stepped at once by 8 threads (as the
// engine's 8 workers would), each thread stepping its share one after the other; one iteration
// steps every instance once. `step_rtt` is then the mean round trip a step saw, in seconds (a
// thread's time per step), and items per second the steps of all of them.
void BM_StepRoundTrip(benchmark::State& state) {
  sluice::PluginRegistry registry;
  registry.loadDirectory(SLUICE_BUNDLED_PLUGIN_DIR);
  auto type = registry.find("ticker");
  const sluice_host host = quietHost();
  const int n = static_cast<int>(std::max<int64_t>(1, state.range(0)));
  const bool process = state.range(0) >= 1;
  std::string error;
  std::vector<std::shared_ptr<sluice::Instance>> instances;
  for (int i = 0; i < n; ++i) {
    std::shared_ptr<sluice::Instance> instance;
    if (process) {
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
    instances.push_back(std::move(instance));
  }
  const int threads = n == 1 ? 1 : 8;
  auto stepShare = [&](int t) {
    std::array<char, 256> buf{};
    sluice_error e{sizeof e, buf.data(), buf.size()};
    for (int i = t; i < n; i += threads) {
      uint32_t next = 1000;
      benchmark::DoNotOptimize(instances[static_cast<size_t>(i)]->step(&next, &e));
    }
  };
  for (auto _ : state) {
    if (threads == 1) {
      stepShare(0);
      continue;
    }
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(stepShare, t);
    for (auto& th : pool) th.join();
  }
  for (auto& instance : instances) {
    std::array<char, 256> buf{};
    sluice_error e{sizeof e, buf.data(), buf.size()};
    instance->stop(SLUICE_STOP_SOFT, &e);
  }
  state.SetItemsProcessed(state.iterations() * n);
  if (n > 1) {
    state.counters["step_rtt"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * n / threads,
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
  }
  state.SetLabel(process ? "process" : "thread");
}
BENCHMARK(BM_StepRoundTrip)->Arg(0)->Arg(1)->Arg(100)->UseRealTime();

// Starts every flow of `engine` with one command and waits for its answer.
void startAll(sluice::Engine& engine) {
  sluice::CommandRequest start;
  start.command = sluice::Command::kStart;
  std::promise<void> started;
  engine.command(start,
                 [&](sluice::Result<std::vector<sluice::CommandDetail>>) { started.set_value(); });
  started.get_future().wait();
}

double processCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The engine's cost per step of a ticker that does nothing (issue 14: <= 2 us): N tickers at
// interval_ms 1000 in this process, started with one command; each iteration is one second of
// their steps. Counters: the process's CPU per step and in cores, and the steps' p99 delay from
// their due time (an upper bound, from the lateness histogram's buckets).
void BM_TickerSteps(benchmark::State& state) {
  const int flows = static_cast<int>(state.range(0));
  EngineHolder h(flows);
  startAll(h.engine());
  std::this_thread::sleep_for(std::chrono::seconds(2));  // past the first steps of every flow
  const auto before = h.engine().stepLateness().snapshot();
  const double cpu0 = processCpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) std::this_thread::sleep_for(std::chrono::seconds(1));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = processCpuSeconds() - cpu0;
  const auto after = h.engine().stepLateness().snapshot();
  const double steps = static_cast<double>(after.count - before.count);
  state.counters["steps_per_s"] = steps / wall;
  state.counters["cores"] = cpu / wall;
  state.counters["cpu_us_per_step"] = steps > 0 ? cpu / steps * 1e6 : 0;
  const auto& bounds = h.engine().stepLateness().bounds();
  for (size_t i = 0; i < after.buckets.size(); ++i) {
    if (static_cast<double>(after.buckets[i] - before.buckets[i]) >= 0.99 * steps) {
      state.counters["p99_late_ms"] = i < bounds.size() ? bounds[i] * 1e3 : -1;
      break;
    }
  }
}
BENCHMARK(BM_TickerSteps)
    ->Arg(10000)
    ->Arg(100000)
    ->Iterations(5)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

size_t heapInUse() { return mallinfo2().uordblks; }

// Where the memory per flow goes (issue 14's table): heap bytes in use per flow after N ticker
// configurations are created, after the GET /flows list is cached, and after they all run.
void BM_MemoryPerFlow(benchmark::State& state) {
  const int flows = static_cast<int>(state.range(0));
  for (auto _ : state) {
    malloc_trim(0);
    const size_t before = heapInUse();
    EngineHolder h(flows);
    malloc_trim(0);
    const size_t configured = heapInUse();
    auto list = h.engine().listJson();
    const size_t listed = heapInUse();
    startAll(h.engine());
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const size_t running = heapInUse();
    const auto per = [&](size_t a, size_t b) {
      return (static_cast<double>(b) - static_cast<double>(a)) / flows;
    };
    state.counters["B_configured"] = per(before, configured);
    state.counters["B_list_cache"] = per(configured, listed);
    state.counters["B_running"] = per(listed, running);
    state.counters["list_bytes_per_flow"] = static_cast<double>(list->size()) / flows;
    state.counters["sizeof_FlowRuntime"] = sizeof(sluice::FlowRuntime);
    state.counters["sizeof_FlowSpec"] = sizeof(sluice::FlowSpec);
    state.counters["sizeof_HostBinding"] = sizeof(sluice::HostBinding);
  }
}
BENCHMARK(BM_MemoryPerFlow)->Arg(100000)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
