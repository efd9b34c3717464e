#include "api/auth/auth_gate.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <strings.h>

namespace sluice::auth {

bool isLoopback(const std::string& host) {
  if (host == "localhost") return true;
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, h.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Result<AuthMode> resolveAuthMode(const std::string& flag, const std::string& host,
                                 bool tokens_issued) {
  if (flag == "none") return AuthMode::kNone;
  if (flag == "required") return AuthMode::kRequired;
  if (!flag.empty()) {
    return Error{
        ErrorKind::kInvalid, "--auth must be 'required' or 'none', not '" + flag + "'", {}};
  }
  if (tokens_issued) return AuthMode::kRequired;
  if (isLoopback(host)) return AuthMode::kAuto;
  return Error{ErrorKind::kInvalid,
               "refusing to listen on " + host +
                   " without authentication: no API token exists. Create one first with "
                   "'sluice token create --name admin --role admin --data-dir DIR' (then "
                   "authentication is required), or pass --auth none to serve every request "
                   "without a token on purpose",
               {}};
}

AuthGate::AuthGate(TokenBook& book, AuthMode mode, LimiterOptions limits)
    : book_(book),
      mode_(mode),
      required_(mode == AuthMode::kRequired || (mode == AuthMode::kAuto && book.anyIssued())),
      limiter_(limits) {}

bool AuthGate::open() {
  if (mode_ == AuthMode::kNone) return true;
  if (required_.load(std::memory_order_relaxed)) return false;
  if (book_.anyIssued()) {
    if (!required_.exchange(true)) {
      spdlog::info("a token exists now: every request needs a valid token from here on");
    }
    return false;
  }
  return true;
}

Admission AuthGate::admit(std::optional<std::string_view> authorization, const std::string& remote,
                          Role needed) {
  Admission a;
  if (open()) return a;
  const auto now = FailureLimiter::Clock::now();
  if (int64_t wait = limiter_.retryAfter(remote, now); wait > 0) {
    a.status = 429;
    a.retry_after_s = wait;
    a.audit = false;
    a.error = "too many failed authentications from " + remote + "; retry in " +
              std::to_string(wait) + " s";
    return a;
  }
  auto unauthorized = [&](std::string why) {
    limiter_.fail(remote, now);
    a.status = 401;
    a.error = std::move(why);
    return a;
  };
  if (!authorization) {
    return unauthorized("authentication required: send the header 'Authorization: Bearer <token>'");
  }
  std::string_view value = *authorization;
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      strncasecmp(value.data(), kScheme.data(), kScheme.size()) != 0) {
    return unauthorized("the Authorization header must be 'Bearer <token>'");
  }
  std::string_view secret = value.substr(kScheme.size());
  while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
  while (!secret.empty() && (secret.back() == ' ' || secret.back() == '\t'))
    secret.remove_suffix(1);
  const TokenMatch match = book_.check(secret, nowMs());
  if (match.verdict != Verdict::kUnknown) {
    a.who.token = match.name;
    a.who.role = std::string(roleName(match.role));
  }
  switch (match.verdict) {
    case Verdict::kUnknown:
      return unauthorized("unknown token");
    case Verdict::kExpired:
      return unauthorized("the token '" + match.name + "' has expired");
    case Verdict::kRevoked:
      return unauthorized("the token '" + match.name + "' was revoked");
    case Verdict::kValid:
      break;
  }
  if (!permits(match.role, needed)) {
    a.status = 403;
    a.required_role = needed;
    a.error = "the token '" + match.name + "' has the role " + std::string(roleName(match.role)) +
              "; this request needs the role " + std::string(roleName(needed));
  }
  return a;
}

}  // namespace sluice::auth
