#include "core/model/semver.hpp"

#include <charconv>

#include "core/model/flow_spec.hpp"

namespace sluice {
namespace {

// Up to three dot-separated decimal numbers; returns how many were read, 0 on any error.
int parseParts(std::string_view text, uint32_t out[3]) {
  int n = 0;
  size_t at = 0;
  while (true) {
    if (n == 3) return 0;
    size_t end = text.find('.', at);
    std::string_view part = text.substr(at, end == std::string_view::npos ? end : end - at);
    if (part.empty() || part.size() > 9) return 0;
    for (char c : part) {
      if (c < '0' || c > '9') return 0;
    }
    std::from_chars(part.data(), part.data() + part.size(), out[n]);
    ++n;
    if (end == std::string_view::npos) return n;
    at = end + 1;
  }
}

}  // namespace

std::string SemVer::str() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

std::optional<SemVer> parseSemVer(std::string_view text) {
  uint32_t p[3] = {0, 0, 0};
  if (parseParts(text, p) != 3) return std::nullopt;
  return SemVer{p[0], p[1], p[2]};
}

bool TypePin::matches(const SemVer& v) const {
  if (parts >= 1 && v.major != version.major) return false;
  if (parts >= 2 && v.minor != version.minor) return false;
  if (parts >= 3 && v.patch != version.patch) return false;
  return true;
}

std::string TypePin::str() const {
  if (parts == 0) return name;
  std::string out = name + "@" + std::to_string(version.major);
  if (parts >= 2) out += "." + std::to_string(version.minor);
  if (parts >= 3) out += "." + std::to_string(version.patch);
  return out;
}

std::optional<TypePin> parseTypePin(std::string_view text, std::string* error) {
  TypePin pin;
  const size_t at = text.find('@');
  pin.name = std::string(text.substr(0, at));
  if (!isValidTypeName(pin.name)) {
    *error = "must name a flow type ([A-Za-z0-9._-]{1,128}), optionally with @version";
    return std::nullopt;
  }
  if (at == std::string_view::npos) return pin;
  uint32_t p[3] = {0, 0, 0};
  pin.parts = parseParts(text.substr(at + 1), p);
  if (pin.parts == 0) {
    *error = "version pin must be MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH (e.g. " + pin.name +
             "@1 or " + pin.name + "@1.2.0)";
    return std::nullopt;
  }
  pin.version = SemVer{p[0], p[1], p[2]};
  return pin;
}

}  // namespace sluice
