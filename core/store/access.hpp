// What the store keeps for access control: API tokens (only their hash) and the audit log.
// Plain values: the HTTP edge (api/auth) decides what they mean.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

/// One API token. The secret itself is never stored: only its SHA-256, in hex.
struct TokenRecord {
  std::string name;
  std::string role;
  std::string hash;  // lowercase hex SHA-256 of the token text
  int64_t created_ms = 0;
  std::optional<int64_t> expires_ms;
  std::optional<int64_t> revoked_ms;
};

/// One line of the audit log. Never holds a request body or a secret.
struct AuditEntry {
  uint64_t seq = 0;  // set by the store
  int64_t time_ms = 0;
  std::string token;  // token name, or "anonymous"
  std::string role;   // the token's role, or "anonymous"
  std::string remote;
  std::string method;
  std::string path;
  std::vector<std::string> flow_ids;
  int status = 0;
  std::string error;   // empty when the request succeeded
  std::string detail;  // what a request acted on besides flows, e.g. "token ci (operator)"
};

/// An entry that may be written inside the transaction of the change it records. The store
/// sets `written` once that transaction committed; the edge appends the entry on its own
/// (with the status actually answered) when it was not.
struct AuditRecord {
  explicit AuditRecord(AuditEntry e) : entry(std::move(e)) {}
  AuditEntry entry;
  std::atomic<bool> written{false};
};
using AuditPtr = std::shared_ptr<AuditRecord>;

/// How both stores keep an entry's flow ids: a JSON array of strings.
std::string auditIdsToJson(const std::vector<std::string>& ids);
std::vector<std::string> auditIdsFromJson(const std::string& text);

}  // namespace sluice
