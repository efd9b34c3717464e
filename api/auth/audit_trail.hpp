// The audit log as the edge writes it: one entry for every mutating request (POST, PUT, PATCH,
// DELETE) and every 401 or 403, durable before the response leaves. Entries of a change are
// stored in the change's own transaction (core/store); the others are appended on their own.
// A background thread prunes entries older than the retention.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/store/store.hpp"

namespace sluice::auth {

class AuditTrail {
 public:
  /// `retention` 0 keeps entries for ever.
  AuditTrail(Store& store, std::chrono::hours retention);
  ~AuditTrail();
  AuditTrail(const AuditTrail&) = delete;
  AuditTrail& operator=(const AuditTrail&) = delete;

  /// Longest path kept, and most flow ids kept, in one entry.
  static constexpr size_t kMaxPath = 2048;
  static constexpr size_t kMaxFlowIds = 100;
  /// A new record, stamped now; status and flow ids are filled in by the caller.
  static AuditPtr begin(std::string token, std::string role, std::string remote, std::string method,
                        std::string path);
  /// Called with the response about to be sent: appends the entry with `status` and the
  /// response's "error" unless the change's transaction already stored it. False when the entry
  /// is not stored (the response must not go out then).
  bool finish(const AuditPtr& record, int status, const std::string& body);
  /// Removes entries past the retention now; how many.
  uint64_t prune();

 private:
  void pruneLoop();

  Store& store_;
  const std::chrono::hours retention_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread pruner_;
};

}  // namespace sluice::auth
