// Paths under the engine's files root (--files-root), the only tree a flow may read or write:
// the check every flow that touches files needs, in one place.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice::sdk {

/// Why `relative` cannot name a file under the files root, or "" when it can: it must be
/// relative, not empty, free of "..", and not end with "/" (a file, not a directory). For
/// validate().
inline std::string filesPathProblem(std::string_view relative) {
  if (relative.empty()) return "must not be empty";
  const std::filesystem::path path{std::string(relative)};
  if (path.is_absolute()) return "must be relative to the files root, not absolute";
  for (const auto& part : path) {
    if (part == "..") return "must not contain '..'";
  }
  if (relative.back() == '/') return "must name a file, not a directory";
  return "";
}

/// A path resolved under the files root: `path` (absolute, symlinks resolved) or `error`.
struct ResolvedPath {
  std::filesystem::path path;
  std::string error;
  bool ok() const { return error.empty(); }
};

/// Resolves `relative` under `root`: filesPathProblem, then every symlink on the way resolved
/// (the file itself need not exist yet); a path that resolves outside the root is refused.
inline ResolvedPath resolveUnder(const std::filesystem::path& root, std::string_view relative) {
  if (auto why = filesPathProblem(relative); !why.empty()) return {{}, "path " + why};
  std::error_code ec;
  const std::filesystem::path real_root = std::filesystem::weakly_canonical(root, ec);
  if (ec) return {{}, "cannot resolve the files root " + root.string() + ": " + ec.message()};
  const std::filesystem::path real =
      std::filesystem::weakly_canonical(real_root / std::string(relative), ec);
  if (ec) return {{}, "cannot resolve " + std::string(relative) + ": " + ec.message()};
  const auto rel = real.lexically_relative(real_root);
  if (rel.empty() || *rel.begin() == "..") {
    return {{}, std::string(relative) + " resolves outside the files root"};
  }
  return {real, ""};
}

}  // namespace sluice::sdk
