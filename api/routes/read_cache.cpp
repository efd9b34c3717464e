#include "api/routes/read_cache.hpp"

#include "api/routes/responses.hpp"
#include "core/engine/engine.hpp"
#include "core/model/content_tag.hpp"

namespace sluice::api {

using Clock = std::chrono::steady_clock;

std::shared_ptr<const CachedDocument> ReadCache::status() {
  auto fresh = [&] {
    return status_ && status_seq_ == engine_.feed().last() &&
           status_changes_ == engine_.statusChanges() && Clock::now() - status_->built < max_age_;
  };
  {
    std::lock_guard lock(status_mu_);
    if (fresh()) return status_;
  }
  // One build at a time: the requests that arrive meanwhile take its result.
  std::lock_guard build(build_mu_);
  {
    std::lock_guard lock(status_mu_);
    if (fresh()) return status_;
  }
  // The positions are read before the flows: a change that lands during the build leaves the
  // document one position behind, and the next request builds again.
  const uint64_t seq = engine_.feed().last();
  const uint64_t changes = engine_.statusChanges();
  auto doc = std::make_shared<CachedDocument>();
  doc->built = Clock::now();
  doc->body = std::make_shared<const std::string>(statusMapBody(engine_.statusAll()));
  doc->etag = contentTag(*doc->body);
  std::lock_guard lock(status_mu_);
  status_ = doc;
  status_seq_ = seq;
  status_changes_ = changes;
  return doc;
}

std::shared_ptr<const CachedDocument> ReadCache::list() {
  // The engine keeps the list itself (rebuilt after a change); the tag is computed once per
  // version of it.
  auto body = engine_.listJson();
  {
    std::lock_guard lock(list_mu_);
    if (list_ && list_->body == body) return list_;
  }
  auto doc = std::make_shared<CachedDocument>();
  doc->body = body;
  doc->etag = contentTag(*body);
  doc->built = Clock::now();
  std::lock_guard lock(list_mu_);
  list_ = doc;
  return doc;
}

}  // namespace sluice::api
