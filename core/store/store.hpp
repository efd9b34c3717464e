// Durable storage of flow configurations, desired states and per-flow plugin state.
// An interface so another backend can replace SQLite without touching api/ or plugins.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model/errors.hpp"
#include "core/model/states.hpp"

namespace sluice {

struct StoredFlow {
  std::string id;
  std::string record_json;  // the configuration object, compact JSON text
  Desired desired = Desired::kStopped;
};

/// Every method is thread-safe and durable when it returns ok: a write that returned ok survives
/// a crash of the process or the machine.
class Store {
 public:
  virtual ~Store() = default;

  /// All flows, in creation order.
  virtual Result<std::vector<StoredFlow>> loadAll() = 0;
  /// Adds every flow in one transaction (all or nothing).
  virtual Result<Done> insertFlows(const std::vector<StoredFlow>& flows) = 0;
  /// Replaces the configuration of an existing flow; keeps its position and desired state.
  virtual Result<Done> updateFlow(const std::string& id, const std::string& record_json) = 0;
  /// Removes a flow and its plugin state.
  virtual Result<Done> deleteFlow(const std::string& id) = 0;
  /// Sets the desired state of several flows in one transaction.
  virtual Result<Done> setDesired(const std::vector<std::pair<std::string, Desired>>& states) = 0;

  /// Per-flow plugin key/value state.
  virtual Result<std::optional<std::string>> stateGet(const std::string& id,
                                                      const std::string& key) = 0;
  virtual Result<Done> statePut(const std::string& id, const std::string& key,
                                const std::string& value) = 0;
  virtual Result<Done> stateDelete(const std::string& id, const std::string& key) = 0;
};

}  // namespace sluice
