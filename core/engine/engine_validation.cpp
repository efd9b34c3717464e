// Engine: checking configurations against the loaded flow types (schema, then the types'
// validate hooks: in-process on a worker with a deadline, or in a host process for
// process-isolated flows).
#include <spdlog/spdlog.h>

#include <future>

#include "core/engine/engine.hpp"
#include "core/isolation/host_validate.hpp"

namespace sluice {

std::vector<Problem> Engine::checkAgainstTypes(const std::vector<FlowSpec>& specs) {
  // Validate hooks are plugin code: they run on a worker, and this thread waits a bounded time.
  struct Job {
    std::vector<std::shared_ptr<const FlowType>> types;
    std::vector<Problem> problems;
    std::atomic<int> state{0};  // 0 running, 1 finished, 2 timed out and its worker replaced
  };
  std::vector<Problem> problems;
  std::vector<HostValidation> in_host;
  // The versions validated in a host process stay loaded (and their private copies on disk)
  // until the host is done with them, even if a reload retires them meanwhile.
  std::vector<std::shared_ptr<const FlowType>> host_types;
  auto job = std::make_shared<Job>();
  job->types.resize(specs.size());
  bool any_hook = false;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (const auto& schedule = specs[i].runtime.schedule) {
      std::string why;
      if (schedule::findZone(schedule->timezone, &why) == nullptr) {
        problems.push_back(
            {i, specs[i].id, "/runtime/schedule/timezone", "runtime.schedule.timezone: " + why});
      }
    }
    auto type = registry_.find(specs[i].type);
    if (!type) {
      problems.push_back({i, specs[i].id, "/type", "unknown flow type '" + specs[i].type + "'"});
      continue;
    }
    job->types[i] = type;
    if (type->builtin && specs[i].runtime.isolation == Isolation::kProcess) {
      problems.push_back({i, specs[i].id, "/runtime/isolation",
                          "flow type '" + type->name +
                              "' is compiled into this program: it runs in a thread only "
                              "(isolation \"thread\")"});
      job->types[i] = nullptr;
      continue;
    }
    if (type->schema) {
      rapidjson::Document config;
      if (json::parse(specs[i].config_json, config, nullptr)) {
        auto schema_problems = type->schema->check(config);
        if (!schema_problems.empty()) {
          // The validate hook sees only configs that satisfy the schema.
          for (auto& p : schema_problems) {
            p.index = i;
            p.flow_id = specs[i].id;
            problems.push_back(std::move(p));
          }
          job->types[i] = nullptr;
          continue;
        }
      }
    }
    if (type->def->validate == nullptr) continue;
    if (specs[i].runtime.isolation == Isolation::kProcess) {
      // Where its other hooks run: a validate that crashes or hangs costs a host process.
      in_host.push_back({i, specs[i].id, type->load_path.empty() ? type->file : type->load_path,
                         type->name, specs[i].config_json});
      host_types.push_back(type);
      job->types[i] = nullptr;
      continue;
    }
    any_hook = true;
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.validate_timeout_ms);
  if (!any_hook) {
    auto host_problems = validateInHost(options_.host_executable.string(), in_host, deadline,
                                        options_.validate_timeout_ms);
    problems.insert(problems.end(), host_problems.begin(), host_problems.end());
    return problems;
  }
  auto specs_copy = std::make_shared<std::vector<FlowSpec>>(specs);
  auto promise = std::make_shared<std::promise<void>>();
  auto future = promise->get_future();
  ThreadPool* pool = &pool_;
  pool_.post([job, specs_copy, promise, pool] {
    for (size_t i = 0; i < specs_copy->size(); ++i) {
      const auto& type = job->types[i];
      if (!type || type->def->validate == nullptr) continue;
      const FlowSpec& spec = (*specs_copy)[i];
      struct Sink {
        std::vector<Problem>* out;
        size_t index;
        const std::string* id;
      } sink{&job->problems, i, &spec.id};
      sluice_problems p{
          sizeof(sluice_problems), &sink,
          [](void* ctx, const char* path, size_t path_len, const char* msg, size_t msg_len) {
            auto* s = static_cast<Sink*>(ctx);
            s->out->push_back({s->index, *s->id, "/config" + std::string(path, path_len),
                               std::string(msg, msg_len)});
          }};
      size_t before = job->problems.size();
      int32_t rc = SLUICE_OK;
      try {
        rc = type->def->validate(spec.config_json.data(), spec.config_json.size(), &p);
      } catch (...) {
        job->problems.push_back({i, spec.id, "/config", "validate hook threw an exception"});
        continue;
      }
      if (rc != SLUICE_OK && job->problems.size() == before) {
        job->problems.push_back(
            {i, spec.id, "/config", "config refused by flow type '" + spec.type + "'"});
      }
    }
    int running = 0;
    if (!job->state.compare_exchange_strong(running, 1)) pool->retireAfterTask();
    promise->set_value();
  });
  // The process-isolated ones run meanwhile, on this thread, against the same deadline.
  auto host_problems = validateInHost(options_.host_executable.string(), in_host, deadline,
                                      options_.validate_timeout_ms);
  problems.insert(problems.end(), host_problems.begin(), host_problems.end());
  if (future.wait_until(deadline) != std::future_status::ready) {
    // The worker is pinned by a validate hook that does not return: another one takes its place
    // (and retires when the hook returns).
    if (pool_.replaceStuckWorker()) {
      int running = 0;
      if (job->state.compare_exchange_strong(running, 2)) {
        spdlog::warn("a validate hook did not return in time; added a replacement worker");
      } else {
        pool_.retireOne();
      }
    }
    problems.push_back({std::nullopt, "", "",
                        "config validation did not finish within " +
                            std::to_string(options_.validate_timeout_ms) + " ms"});
    return problems;
  }
  problems.insert(problems.end(), job->problems.begin(), job->problems.end());
  return problems;
}

}  // namespace sluice
