// Engine: reading a flow's log (what its work wrote: core/logs).
#include "core/engine/engine.hpp"

namespace sluice {

Result<std::vector<LogLine>> Engine::logs(const std::string& id, size_t tail) {
  if (cluster_) findFresh(id);  // created on another node a moment ago
  {
    std::lock_guard lock(catalog_mu_);
    if (flows_.count(id) == 0) {
      return Error{ErrorKind::kNotFound, "flow '" + id + "' does not exist", {}};
    }
  }
  return flow_logs_.tail(id, tail);
}

}  // namespace sluice
