#include "api/ui/console_assets.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/model/content_tag.hpp"

namespace sluice::api::ui {

std::string mediaType(const std::string& name) {
  static const std::map<std::string, std::string, std::less<>> kTypes = {
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"ico", "image/x-icon"},
      {"txt", "text/plain; charset=utf-8"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"}};
  const auto dot = name.rfind('.');
  if (dot != std::string::npos) {
    if (auto it = kTypes.find(name.substr(dot + 1)); it != kTypes.end()) return it->second;
  }
  return "application/octet-stream";
}

bool assetName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name.front() == '.') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

Asset makeAsset(const std::string& name, std::string body) {
  Asset a;
  a.etag = contentTag(body);
  a.media_type = mediaType(name);
  a.body = std::move(body);
  return a;
}

}  // namespace

ConsoleAssets::ConsoleAssets(std::string dir) : dir_(std::move(dir)) {
  if (!dir_.empty()) return;
  for (const EmbeddedAsset* e = kEmbeddedAssets; e->name != nullptr; ++e) {
    embedded_.emplace(
        e->name, makeAsset(e->name, std::string(reinterpret_cast<const char*>(e->data), e->size)));
  }
}

std::optional<Asset> ConsoleAssets::find(const std::string& name) const {
  if (!assetName(name)) return std::nullopt;
  if (dir_.empty()) {
    auto it = embedded_.find(name);
    if (it == embedded_.end()) return std::nullopt;
    return it->second;
  }
  const std::string path = dir_ + "/" + name;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return makeAsset(name, bytes.str());
}

std::string ConsoleAssets::source() const { return dir_.empty() ? "compiled in" : dir_; }

}  // namespace sluice::api::ui
