#include "api/auth/audit_trail.hpp"

#include <spdlog/spdlog.h>

#include "api/auth/token_book.hpp"
#include "core/model/json.hpp"

namespace sluice::auth {
namespace {

constexpr std::chrono::minutes kPruneEvery{10};

// The "error" member of a JSON error body; empty for any other body.
std::string errorOf(const std::string& body) {
  if (body.empty() || body.front() != '{') return "";
  rapidjson::Document doc;
  if (!json::parse(body, doc, nullptr) || !doc.IsObject()) return "";
  auto it = doc.FindMember("error");
  if (it == doc.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace

AuditTrail::AuditTrail(Store& store, std::chrono::hours retention)
    : store_(store), retention_(retention) {
  if (retention_.count() > 0) pruner_ = std::thread([this] { pruneLoop(); });
}

AuditTrail::~AuditTrail() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (pruner_.joinable()) pruner_.join();
}

AuditPtr AuditTrail::begin(std::string token, std::string role, std::string remote,
                           std::string method, std::string path) {
  AuditEntry e;
  e.time_ms = nowMs();
  e.token = std::move(token);
  e.role = std::move(role);
  e.remote = std::move(remote);
  e.method = std::move(method);
  e.path = std::move(path);
  if (e.path.size() > kMaxPath) e.path.resize(kMaxPath);
  return std::make_shared<AuditRecord>(std::move(e));
}

bool AuditTrail::finish(const AuditPtr& record, int status, const std::string& body) {
  if (!record || record->written) return true;
  record->entry.status = status;
  if (record->entry.flow_ids.size() > kMaxFlowIds) record->entry.flow_ids.resize(kMaxFlowIds);
  if (status >= 400) record->entry.error = errorOf(body);
  auto r = store_.appendAudit(record->entry);
  if (!r.ok()) {
    spdlog::error("audit: cannot record {} {} ({}): {}", record->entry.method, record->entry.path,
                  status, r.error().message);
    return false;
  }
  record->written = true;
  return true;
}

uint64_t AuditTrail::prune() {
  if (retention_.count() == 0) return 0;
  const int64_t before =
      nowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(retention_).count();
  auto r = store_.pruneAudit(before);
  if (!r.ok()) {
    spdlog::error("audit: cannot prune: {}", r.error().message);
    return 0;
  }
  if (r.value() > 0)
    spdlog::info("audit: pruned {} entries older than {}", r.value(), retention_.count() / 24);
  return r.value();
}

void AuditTrail::pruneLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    prune();
    lock.lock();
    cv_.wait_for(lock, kPruneEvery, [&] { return stopping_; });
  }
}

}  // namespace sluice::auth
