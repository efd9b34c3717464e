// The API tokens the server knows: a cache of the store's token table, refreshed whenever the
// table may have changed (REST calls of this process, or the `sluice token` CLI run against the
// same data directory while the server runs). Checking a token never touches the disk unless
// the table changed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth/roles.hpp"
#include "api/auth/token_crypto.hpp"
#include "core/model/errors.hpp"
#include "core/store/store.hpp"

namespace sluice::auth {

enum class Verdict { kValid, kUnknown, kExpired, kRevoked };

struct TokenMatch {
  Verdict verdict = Verdict::kUnknown;
  std::string name;  // empty when unknown
  Role role = Role::kViewer;
  std::optional<int64_t> when_ms;  // expiry or revocation time
};

struct IssuedToken {
  TokenRecord record;
  std::string secret;  // shown once, never stored
};

/// Milliseconds since the Unix epoch.
int64_t nowMs();

/// A token name: 1 to 64 of [A-Za-z0-9._-], and not "anonymous". Empty when valid, else why not.
std::string nameProblem(std::string_view name);

class TokenBook {
 public:
  explicit TokenBook(Store& store) : store_(store) {}

  /// Looks a presented secret up among every token, comparing each hash in constant time.
  TokenMatch check(std::string_view secret, int64_t now_ms);
  /// Issues a token; kInvalid for a bad name, kConflict when a live token has that name.
  Result<IssuedToken> issue(const std::string& name, Role role,
                            std::optional<std::chrono::milliseconds> ttl, int64_t now_ms,
                            AuditRecord* audit);
  /// Revokes the live token called `name`; kNotFound when there is none.
  Result<Done> revoke(const std::string& name, int64_t now_ms, AuditRecord* audit);
  /// Tokens not revoked (expired ones included), in creation order.
  Result<std::vector<TokenRecord>> live();
  /// True when a token that is not revoked exists.
  bool anyLive();
  /// True when a token was ever issued, revoked ones included.
  bool anyIssued();

 private:
  /// Re-reads the table when it may have changed. False when the store cannot be read.
  bool refresh();

  Store& store_;
  std::shared_mutex mu_;
  std::vector<TokenRecord> tokens_;  // guarded by mu_
  std::vector<Digest> digests_;      // guarded by mu_: tokens_[i].hash, decoded
  // guarded by mu_: the Store::externalChanges() count tokens_ was read at; only ever grows
  std::optional<uint64_t> version_;
};

}  // namespace sluice::auth
