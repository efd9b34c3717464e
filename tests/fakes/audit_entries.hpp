// An audit entry with every field set, for the store and audit-trail tests.
#pragma once

#include <cstdint>
#include <string>

#include "core/store/access.hpp"

namespace sluice::test {

inline AuditEntry sampleAuditEntry(const std::string& path, int64_t time_ms = 1000) {
  AuditEntry e;
  e.time_ms = time_ms;
  e.token = "t";
  e.role = "editor";
  e.remote = "127.0.0.1";
  e.method = "POST";
  e.path = path;
  e.flow_ids = {"a", "b\"quoted\""};
  e.status = 201;
  e.detail = "token ci (operator)";
  return e;
}

}  // namespace sluice::test
