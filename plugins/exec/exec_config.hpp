// The `exec` flow type's configuration: parsing and validation, the search of argv[0] on the
// engine's PATH, the allow-list (SLUICE_EXEC_ALLOW, from the engine's --exec-allow) and the
// environment handed to the child.
#pragma once

#include <chrono>
#include <optional>
#include <sluice/sdk/config.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::exec {

/// The search path when the engine has no PATH.
inline constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
/// The environment variable the engine sets from --exec-allow DIR[,DIR...].
inline constexpr const char* kAllowVariable = "SLUICE_EXEC_ALLOW";

/// One validation problem: a JSON pointer into `config` and what is wrong there.
struct ConfigProblem {
  std::string path;
  std::string message;
};

struct ExecConfig {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;  // config order; a repeated name: last
  std::optional<std::string> cwd;                        // relative to the files root
  std::optional<std::chrono::milliseconds> timeout;
  std::string timeout_text;  // as written ("10m"), for messages
  std::vector<int> success_codes{0};
};

/// Parses `root` into `out` and returns every problem of syntax (types, ranges, names, unknown
/// members). The file system and the allow-list are not consulted (see validateExecConfig).
std::vector<ConfigProblem> parseExecConfig(const sdk::Json& root, ExecConfig* out);

/// What validate reports: parseExecConfig, then argv[0] resolved and checked against the
/// allow-list read from the environment now.
std::vector<ConfigProblem> validateExecConfig(const sdk::Json& root);

/// An executable found for argv[0]: its absolute, lexically normalised path, or why not.
struct Executable {
  std::string path;
  std::string error;
  bool ok() const { return error.empty(); }
};

/// argv[0] as an absolute path, or a bare name (no '/') searched on `search_path` (absolute
/// entries only); the file must exist, be a regular file and be executable. No allow-list.
Executable resolveExecutable(const std::string& argv0, const std::string& search_path);

/// Why `path` (absolute, normalised) is not allowed by `allow` (the SLUICE_EXEC_ALLOW value,
/// null when unset), or "" when it lies under one of its directories. Lexical: symlinks are not
/// followed, so whoever may write an allowed directory decides what runs from it.
std::string allowProblem(const std::string& path, const char* allow);

/// The engine's PATH, or kDefaultPath when it has none.
std::string enginePath();

/// resolveExecutable on the engine's PATH, then allowProblem with SLUICE_EXEC_ALLOW, both read
/// from the environment at the time of the call (validate, start and each spawn).
Executable findAllowedExecutable(const std::string& argv0);

/// The child's environment ("NAME=value"): PATH, HOME, LANG, LC_ALL and TZ when the engine has
/// them, SLUICE_FLOW_ID, then the config's env over them.
std::vector<std::string> childEnvironment(std::string_view flow_id, const ExecConfig& config);

}  // namespace sluice::exec
