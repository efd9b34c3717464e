#include "api/auth/token_book.hpp"

#include <spdlog/spdlog.h>

#include <mutex>

#include "api/auth/token_crypto.hpp"
#include "core/model/wall_clock.hpp"

namespace sluice::auth {

int64_t nowMs() { return wallClockMs(); }

std::string nameProblem(std::string_view name) {
  if (name.empty() || name.size() > 64) return "a token name has 1 to 64 characters";
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return "a token name may hold only letters, digits, '.', '_' and '-'";
  }
  if (name == "anonymous") return "'anonymous' is reserved for requests without a token";
  return "";
}

bool TokenBook::refresh() {
  auto version = store_.externalChanges();
  if (!version.ok()) {
    spdlog::error("tokens: {}", version.error().message);
    return false;
  }
  {
    std::shared_lock lock(mu_);
    if (version_ && *version_ >= version.value()) return true;
  }
  auto rows = store_.loadTokens();
  if (!rows.ok()) {
    spdlog::error("tokens: {}", rows.error().message);
    return false;
  }
  std::vector<Digest> digests;
  digests.reserve(rows.value().size());
  for (const auto& t : rows.value()) {
    // A row that is not a digest matches nothing: an all-zero digest is no SHA-256 output
    // anyone can find an input for.
    digests.push_back(digestFromHex(t.hash).value_or(Digest{}));
  }
  std::unique_lock lock(mu_);
  // The counter only grows, and rows read after it reflect every change it counts. A thread
  // that read an older count (and maybe older rows) must not replace what a later one put here:
  // that would let a revoked token in again.
  if (version_ && *version_ >= version.value()) return true;
  tokens_ = std::move(rows.value());
  digests_ = std::move(digests);
  version_ = version.value();
  return true;
}

TokenMatch TokenBook::check(std::string_view secret, int64_t now_ms) {
  TokenMatch match;
  if (!refresh()) return match;  // a store that cannot be read lets nobody in
  const Digest digest = sha256(secret);
  std::shared_lock lock(mu_);
  // Every digest is compared, without an early exit: the time does not depend on which matched.
  const TokenRecord* found = nullptr;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (constantTimeEqual(digest, digests_[i])) found = &tokens_[i];
  }
  if (found == nullptr) return match;
  match.name = found->name;
  match.role = parseRole(found->role).value_or(Role::kViewer);
  if (found->revoked_ms) {
    match.verdict = Verdict::kRevoked;
    match.when_ms = found->revoked_ms;
  } else if (found->expires_ms && *found->expires_ms <= now_ms) {
    match.verdict = Verdict::kExpired;
    match.when_ms = found->expires_ms;
  } else {
    match.verdict = Verdict::kValid;
  }
  return match;
}

Result<IssuedToken> TokenBook::issue(const std::string& name, Role role,
                                     std::optional<std::chrono::milliseconds> ttl, int64_t now_ms,
                                     AuditRecord* audit) {
  if (auto why = nameProblem(name); !why.empty()) {
    return Error{ErrorKind::kInvalid, why, {{std::nullopt, "", "/name", why}}};
  }
  constexpr std::chrono::milliseconds kLongest = std::chrono::hours(24 * 36500);
  if (ttl && (ttl->count() <= 0 || *ttl > kLongest)) {
    const std::string why = "a token expires after 1 ms to 36500 days";
    return Error{ErrorKind::kInvalid, why, {{std::nullopt, "", "/expires", why}}};
  }
  IssuedToken out;
  out.secret = newTokenSecret();
  out.record.name = name;
  out.record.role = std::string(roleName(role));
  out.record.hash = sha256Hex(out.secret);
  out.record.created_ms = now_ms;
  if (ttl) out.record.expires_ms = now_ms + ttl->count();
  auto stored = store_.insertToken(out.record, audit);
  if (!stored.ok()) return stored.error();
  refresh();
  return out;
}

Result<Done> TokenBook::revoke(const std::string& name, int64_t now_ms, AuditRecord* audit) {
  auto r = store_.revokeToken(name, now_ms, audit);
  refresh();
  return r;
}

Result<std::vector<TokenRecord>> TokenBook::live() {
  if (!refresh()) return Error{ErrorKind::kInternal, "cannot read tokens", {}};
  std::shared_lock lock(mu_);
  std::vector<TokenRecord> out;
  for (const auto& t : tokens_) {
    if (!t.revoked_ms) out.push_back(t);
  }
  return out;
}

bool TokenBook::anyIssued() {
  refresh();
  std::shared_lock lock(mu_);
  return !tokens_.empty();
}

bool TokenBook::anyLive() {
  refresh();
  std::shared_lock lock(mu_);
  for (const auto& t : tokens_) {
    if (!t.revoked_ms) return true;
  }
  return false;
}

}  // namespace sluice::auth
