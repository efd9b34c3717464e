// Who is asking, and may they: the authentication and authorization step of the HTTP edge.
// Every request passes here after its route is known and before its handler runs.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "api/auth/failure_limiter.hpp"
#include "api/auth/roles.hpp"
#include "api/auth/token_book.hpp"
#include "core/model/errors.hpp"

namespace sluice::auth {

enum class AuthMode {
  kRequired,  // every request needs a valid token
  kNone,      // no authentication at all (--auth none)
  kAuto,      // open while no token was ever issued (loopback only), required from then on
};

/// True for 127.0.0.0/8, ::1 (also as "[::1]") and "localhost".
bool isLoopback(const std::string& host);

/// The mode a server starts in, from --auth ("required", "none", or "" when not given), the
/// listen host and whether a token was ever issued (revoked ones count: revoking every token
/// never opens a server again); an error (why it must not start) for a non-loopback address
/// without any token and without an explicit --auth.
Result<AuthMode> resolveAuthMode(const std::string& flag, const std::string& host,
                                 bool tokens_issued);

struct Principal {
  std::string token = "anonymous";  // the token's name
  std::string role = "anonymous";   // the token's role name
};

/// What the gate decided. status 0: go on; else answer it with `error`.
struct Admission {
  int status = 0;
  std::string error;
  std::optional<Role> required_role;  // for a 403
  int64_t retry_after_s = 0;          // for a 429
  bool audit = true;                  // false for a 429: refusals of a locked-out address
  Principal who;
};

class AuthGate {
 public:
  AuthGate(TokenBook& book, AuthMode mode, LimiterOptions limits);

  /// Decides for a request to something that needs `needed`, from `remote`, with the value of
  /// its Authorization header when it has one.
  Admission admit(std::optional<std::string_view> authorization, const std::string& remote,
                  Role needed);

  /// True while requests are served without a token.
  bool open();

 private:
  TokenBook& book_;
  const AuthMode mode_;
  std::atomic<bool> required_;  // kAuto: becomes true for good once a token exists
  FailureLimiter limiter_;
};

}  // namespace sluice::auth
