// Everything the edge needs for access control, built once per server: the token cache, the
// gate that admits requests, and the audit trail.
#pragma once

#include <chrono>

#include "api/auth/audit_trail.hpp"
#include "api/auth/auth_gate.hpp"
#include "api/auth/token_book.hpp"

namespace sluice::auth {

struct AccessOptions {
  AuthMode mode = AuthMode::kAuto;
  LimiterOptions limits;
  std::chrono::hours audit_retention{24 * 90};  // 0 = keep for ever
};

struct AccessControl {
  AccessControl(Store& store, const AccessOptions& options)
      : book(store),
        gate(book, options.mode, options.limits),
        trail(store, options.audit_retention) {}
  TokenBook book;
  AuthGate gate;
  AuditTrail trail;
};

}  // namespace sluice::auth
