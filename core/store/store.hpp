// Durable storage of flow configurations, desired states and per-flow plugin state.
// An interface so another backend can replace SQLite without touching api/ or plugins.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/model/errors.hpp"
#include "core/model/states.hpp"

namespace sluice {

/// Identifies one life of a flow id: a flow deleted and created again under the same id is a
/// new incarnation. Plugin state and configuration updates are keyed by it, so nothing of a
/// deleted flow reaches its successor. Never 0 for a stored flow.
using Incarnation = uint64_t;

struct StoredFlow {
  std::string id;
  std::string record_json;  // the configuration object, compact JSON text
  Desired desired = Desired::kStopped;
  Incarnation incarnation = 0;  // set by the store (loadAll, insertFlows)
};

/// Every method is thread-safe and durable when it returns ok: a write that returned ok survives
/// a crash of the process or the machine.
class Store {
 public:
  virtual ~Store() = default;

  /// All flows, in creation order.
  virtual Result<std::vector<StoredFlow>> loadAll() = 0;
  /// Adds every flow in one transaction (all or nothing); their incarnations, in order.
  virtual Result<std::vector<Incarnation>> insertFlows(const std::vector<StoredFlow>& flows) = 0;
  /// Replaces the configuration of incarnation `inc` of flow `id`; keeps its position and
  /// desired state. kNotFound when that incarnation is no longer stored (deleted, or replaced by
  /// a flow created again under the same id): nothing is written then.
  virtual Result<Done> updateFlow(const std::string& id, Incarnation inc,
                                  const std::string& record_json) = 0;
  /// Removes a flow's configuration (not its plugin state: see deleteState).
  virtual Result<Done> deleteFlow(const std::string& id) = 0;
  /// Removes the plugin state of an incarnation (after its flow was deleted and stopped).
  virtual Result<Done> deleteState(Incarnation inc) = 0;
  /// Sets the desired state of several flows in one transaction.
  virtual Result<Done> setDesired(const std::vector<std::pair<std::string, Desired>>& states) = 0;

  /// Per-incarnation plugin key/value state: a value, nothing when absent, or an error.
  virtual Result<std::optional<std::string>> stateGet(Incarnation inc, const std::string& key) = 0;
  virtual Result<Done> statePut(Incarnation inc, const std::string& key,
                                const std::string& value) = 0;
  virtual Result<Done> stateDelete(Incarnation inc, const std::string& key) = 0;
};

}  // namespace sluice
