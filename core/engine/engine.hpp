// The engine: the catalog of flows, their store, the plugins and the threads that run them.
// Thread-safe; no method waits on plugin code except through a bounded wait, and long operations
// answer through callbacks called on an engine thread.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/model/errors.hpp"
#include "core/model/flow_spec.hpp"
#include "core/model/states.hpp"
#include "core/plugins/plugin_registry.hpp"
#include "core/runtime/executor.hpp"
#include "core/runtime/flow_runtime.hpp"
#include "core/store/store.hpp"

namespace sluice {

struct EngineOptions {
  std::filesystem::path data_dir = "sluice-data";
  std::vector<std::filesystem::path> plugin_dirs;
  std::filesystem::path files_root;       // empty = <data_dir>/files; created when missing
  std::filesystem::path host_executable;  // sluice binary for process isolation; empty = this one
  size_t workers = 8;                     // engine worker threads running plugin code
  uint32_t validate_timeout_ms = 5000;    // bound on the validate hooks of one request
};

struct CommandRequest {
  Command command = Command::kStart;
  StopMode mode = StopMode::kSoft;
  std::optional<std::vector<std::string>> flow_ids;  // nullopt = every flow
};

struct CommandDetail {
  std::string flow_id;
  State state = State::kStopped;
  std::string error;
};

class Engine {
 public:
  /// Opens the store in options.data_dir, loads the plugins, restores every flow to its
  /// desired state (asynchronously).
  static Result<std::unique_ptr<Engine>> open(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// JSON array of every configuration in creation order; rebuilt only after a change.
  std::shared_ptr<const std::string> listJson();
  /// The stored configuration of `id`, compact JSON text.
  std::optional<std::string> getJson(const std::string& id) const;

  /// Adds flows atomically: every problem is reported (with its index) and nothing is added, or
  /// all are stored (stopped) and their ids returned.
  ///
  /// Every change below takes an optional audit record that is stored in the change's own
  /// transaction (see Store).
  Result<std::vector<std::string>> create(std::vector<FlowSpec> specs, AuditPtr audit = nullptr);
  /// Checks specs as create() would without storing anything.
  std::vector<Problem> validate(const std::vector<FlowSpec>& specs);
  /// Replaces a configuration; `done` gets the stored record.
  void update(FlowSpec spec, std::function<void(Result<std::string>)> done,
              AuditPtr audit = nullptr);
  /// Deletes a flow (stopping it first); `done` gets where the flow's instance ended.
  void remove(const std::string& id, std::function<void(Result<Outcome>)> done,
              AuditPtr audit = nullptr);
  /// Validates a command atomically, stores the desired states, applies it to every addressed
  /// flow in parallel; `done` gets one detail per flow in the order addressed. A command for
  /// every flow records their ids in the audit entry.
  void command(const CommandRequest& request,
               std::function<void(Result<std::vector<CommandDetail>>)> done,
               AuditPtr audit = nullptr);

  std::optional<FlowStatus> status(const std::string& id) const;
  std::vector<FlowStatus> statusAll() const;
  const PluginRegistry& plugins() const { return registry_; }
  /// The store, for what the edge keeps next to the flows (tokens, the audit log).
  Store& store() { return *store_; }
  /// Live engine workers, replacements for stuck plugin code included.
  size_t workerCount() const { return pool_.size(); }

  /// Stops every flow (soft, bounded by its stop timeout) without changing desired states, and
  /// stops the engine's threads. Returns false when plugin code did not return in time.
  bool shutdown();

 private:
  Engine(const EngineOptions& options, std::unique_ptr<Store> store);
  void restore(std::vector<StoredFlow> flows);
  std::shared_ptr<FlowRuntime> find(const std::string& id) const;
  std::vector<Problem> checkAgainstTypes(const std::vector<FlowSpec>& specs);
  /// Duplicates inside the batch and type/config problems (no lock needed).
  std::vector<Problem> batchProblems(const std::vector<FlowSpec>& specs);
  /// Ids that exist already; appends and sorts by index. Caller holds catalog_mu_.
  void existingProblems(const std::vector<FlowSpec>& specs, std::vector<Problem>& problems);
  void invalidateList();

  EngineOptions options_;
  std::unique_ptr<Store> store_;
  PluginRegistry registry_;
  ThreadPool pool_;
  Timer timer_;
  EngineServices services_;

  mutable std::mutex catalog_mu_;  // serializes catalog changes; held while storing them
  std::map<std::string, std::shared_ptr<FlowRuntime>> flows_;  // guarded by catalog_mu_
  std::vector<std::shared_ptr<FlowRuntime>> order_;            // guarded by catalog_mu_
  bool shut_down_ = false;                                     // guarded by catalog_mu_

  std::mutex list_mu_;
  std::shared_ptr<const std::string> list_cache_;  // guarded by list_mu_; null = stale
  uint64_t list_generation_ = 0;  // guarded by list_mu_: bumped by every change of the list
};

}  // namespace sluice
