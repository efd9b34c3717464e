// The documents that polling clients read most, kept ready with their entity tags:
// GET /flows/status (all flows) and GET /flows (all configurations).
//
// The status document is rebuilt when the change feed has moved since it was built (a state
// or configuration changed), or when it is older than `max_age`: the plugins' counters and
// gauges in it change without events, so they may be up to `max_age` stale (answered in the
// Age header). States and configurations are never stale: a change is published before the
// request that made it is answered.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace sluice {
class Engine;
}

namespace sluice::api {

struct CachedDocument {
  std::shared_ptr<const std::string> body;
  std::string etag;
  std::chrono::steady_clock::time_point built;
};

class ReadCache {
 public:
  ReadCache(Engine& engine, std::chrono::milliseconds max_age)
      : engine_(engine), max_age_(max_age) {}

  /// The status of every flow, as GET /flows/status answers it.
  std::shared_ptr<const CachedDocument> status();
  /// Every configuration, as GET /flows answers it.
  std::shared_ptr<const CachedDocument> list();

 private:
  Engine& engine_;
  const std::chrono::milliseconds max_age_;

  std::mutex status_mu_;
  std::shared_ptr<const CachedDocument> status_;  // guarded by status_mu_
  uint64_t status_seq_ = 0;                       // guarded by status_mu_: feed position built at
  uint64_t status_changes_ = 0;                   // guarded by status_mu_: and statusChanges()
  std::mutex build_mu_;                           // one status build at a time

  std::mutex list_mu_;
  std::shared_ptr<const CachedDocument> list_;  // guarded by list_mu_
};

}  // namespace sluice::api
