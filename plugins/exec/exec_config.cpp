#include "exec_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sluice/sdk/duration.hpp>
#include <sluice/sdk/files.hpp>

namespace sluice::exec {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 5> kMembers{"argv", "env", "cwd", "timeout",
                                                   "success_codes"};
constexpr std::array<const char*, 5> kInheritedVariables{"PATH", "HOME", "LANG", "LC_ALL", "TZ"};

bool hasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

std::string inQuotes(std::string_view s) { return "'" + std::string(s) + "'"; }

void parseArgv(const sdk::Json* argv, ExecConfig* out, std::vector<ConfigProblem>& problems) {
  if (argv == nullptr) {
    problems.push_back({"/argv", "argv is required: the command and its arguments"});
    return;
  }
  if (!argv->isArray()) {
    problems.push_back({"/argv", "argv must be an array of strings"});
    return;
  }
  if (argv->items().empty()) {
    problems.push_back({"/argv", "argv must not be empty: argv[0] is the executable"});
    return;
  }
  const auto& items = argv->items();
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = "/argv/" + std::to_string(i);
    if (!items[i].isString()) {
      problems.push_back({where, "argv[" + std::to_string(i) + "] must be a string"});
    } else if (hasNul(items[i].asString())) {
      problems.push_back({where, "argv[" + std::to_string(i) + "] must not contain NUL"});
    } else {
      out->argv.push_back(items[i].asString());
    }
  }
  if (!items[0].isString()) return;
  const std::string& exe = items[0].asString();
  if (exe.empty()) {
    problems.push_back({"/argv/0", "argv[0] must name the executable, not be empty"});
  } else if (exe.front() != '/' && exe.find('/') != std::string::npos) {
    problems.push_back({"/argv/0", "argv[0] " + inQuotes(exe) +
                                       " must be an absolute path or a bare name found on PATH "
                                       "(a relative path with '/' is refused)"});
  }
}

void parseEnv(const sdk::Json* env, ExecConfig* out, std::vector<ConfigProblem>& problems) {
  if (env == nullptr) return;
  if (!env->isObject()) {
    problems.push_back({"/env", "env must be an object of string values"});
    return;
  }
  for (const auto& [name, value] : env->members()) {
    const std::string where = "/env/" + sluice::sdk::pointerToken(name);
    if (name.empty()) {
      problems.push_back({where, "env names must not be empty"});
    } else if (name.find('=') != std::string::npos || hasNul(name)) {
      problems.push_back({where, "env name " + inQuotes(name) + " must not contain '=' or NUL"});
    } else if (!value.isString()) {
      problems.push_back({where, "env value of " + inQuotes(name) + " must be a string"});
    } else if (hasNul(value.asString())) {
      problems.push_back({where, "env value of " + inQuotes(name) + " must not contain NUL"});
    } else {
      out->env.emplace_back(name, value.asString());
    }
  }
}

void parseCwd(const sdk::Json* cwd, ExecConfig* out, std::vector<ConfigProblem>& problems) {
  if (cwd == nullptr) return;
  if (!cwd->isString()) {
    problems.push_back({"/cwd", "cwd must be a string: a directory relative to the files root"});
    return;
  }
  std::string dir = cwd->asString();
  // A directory may be written with a trailing '/'; the files check wants none.
  if (!dir.empty() && dir.front() != '/') {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  }
  std::string why = hasNul(dir) ? "must not contain NUL" : sdk::filesPathProblem(dir);
  if (!why.empty()) {
    problems.push_back({"/cwd", "cwd " + inQuotes(cwd->asString()) + " " + why});
    return;
  }
  out->cwd = dir;
}

void parseTimeout(const sdk::Json* timeout, ExecConfig* out, std::vector<ConfigProblem>& problems) {
  if (timeout == nullptr) return;
  const char* kFormat = "a number followed by ms, s, m, h or d, such as \"500ms\" or \"10m\"";
  if (!timeout->isString()) {
    problems.push_back({"/timeout", std::string("timeout must be a duration string: ") + kFormat});
    return;
  }
  const auto parsed = sdk::parseDuration(timeout->asString());
  if (!parsed) {
    problems.push_back({"/timeout", "timeout " + inQuotes(timeout->asString()) +
                                        " is not a duration: " + kFormat});
  } else if (parsed->count() <= 0) {
    problems.push_back({"/timeout", "timeout must be longer than 0 (omit it for no timeout)"});
  } else {
    out->timeout = *parsed;
    out->timeout_text = timeout->asString();
  }
}

void parseSuccessCodes(const sdk::Json* codes, ExecConfig* out,
                       std::vector<ConfigProblem>& problems) {
  if (codes == nullptr) return;
  if (!codes->isArray() || codes->items().empty()) {
    problems.push_back(
        {"/success_codes", "success_codes must be a non-empty array of integers 0..255"});
    return;
  }
  out->success_codes.clear();
  const auto& items = codes->items();
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].isInt() && items[i].asInt() >= 0 && items[i].asInt() <= 255) {
      out->success_codes.push_back(static_cast<int>(items[i].asInt()));
    } else {
      problems.push_back({"/success_codes/" + std::to_string(i),
                          "a success code must be an integer between 0 and 255"});
    }
  }
}

/// Absolute, normalised, without a trailing '/' (except the root itself).
std::string normalised(const std::string& path) {
  std::string out = fs::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

/// "" when `path` is an executable regular file, else why not.
std::string executableProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return inQuotes(path) + " does not exist";
    return "cannot check " + inQuotes(path) + ": " + std::strerror(errno);
  }
  if (!S_ISREG(st.st_mode)) return inQuotes(path) + " is not a regular file";
  if (::access(path.c_str(), X_OK) != 0) return inQuotes(path) + " is not executable";
  return "";
}

}  // namespace

std::vector<ConfigProblem> parseExecConfig(const sdk::Json& root, ExecConfig* out) {
  std::vector<ConfigProblem> problems;
  if (!root.isObject()) return {{"", "config must be an object"}};
  for (const auto& [name, value] : root.members()) {
    bool known = false;
    for (auto member : kMembers) known = known || name == member;
    if (!known) {
      problems.push_back({"/" + sluice::sdk::pointerToken(name),
                          "unknown member " + inQuotes(name) +
                              " (expected argv, env, cwd, timeout, success_codes)"});
    }
  }
  parseArgv(root.find("argv"), out, problems);
  parseEnv(root.find("env"), out, problems);
  parseCwd(root.find("cwd"), out, problems);
  parseTimeout(root.find("timeout"), out, problems);
  parseSuccessCodes(root.find("success_codes"), out, problems);
  return problems;
}

std::vector<ConfigProblem> validateExecConfig(const sdk::Json& root) {
  ExecConfig config;
  std::vector<ConfigProblem> problems = parseExecConfig(root, &config);
  for (const auto& p : problems) {
    if (p.path == "/argv" || p.path == "/argv/0") return problems;
  }
  if (config.argv.empty()) return problems;
  if (Executable exe = findAllowedExecutable(config.argv[0]); !exe.ok()) {
    problems.push_back({"/argv/0", exe.error});
  }
  return problems;
}

Executable resolveExecutable(const std::string& argv0, const std::string& search_path) {
  if (argv0.empty()) return {"", "argv[0] is empty"};
  if (argv0.front() == '/') {
    const std::string path = normalised(argv0);
    if (std::string why = executableProblem(path); !why.empty()) return {"", why};
    return {path, ""};
  }
  if (argv0.find('/') != std::string::npos) {
    return {"", inQuotes(argv0) + " is a relative path: use an absolute path or a bare name"};
  }
  size_t begin = 0;
  while (begin <= search_path.size()) {
    size_t end = search_path.find(':', begin);
    if (end == std::string::npos) end = search_path.size();
    const std::string dir = search_path.substr(begin, end - begin);
    begin = end + 1;
    if (dir.empty() || dir.front() != '/') continue;  // never the engine's working directory
    const std::string candidate = normalised(dir + "/" + argv0);
    if (executableProblem(candidate).empty()) return {candidate, ""};
  }
  return {"", "executable " + inQuotes(argv0) + " not found on PATH (" + search_path + ")"};
}

std::string allowProblem(const std::string& path, const char* allow) {
  const char* kOff =
      "the exec flow type is off until an operator starts the engine with "
      "--exec-allow DIR[,DIR...]";
  if (allow == nullptr || *allow == '\0') return kOff;
  const std::string list = allow;
  bool any = false;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    std::string dir = list.substr(begin, end - begin);
    begin = end + 1;
    const size_t first = dir.find_first_not_of(" \t");
    const size_t last = dir.find_last_not_of(" \t");
    dir = first == std::string::npos ? "" : dir.substr(first, last - first + 1);
    if (dir.empty() || dir.front() != '/') continue;  // only absolute directories count
    any = true;
    const std::string base = normalised(dir);
    if (base == "/" || path.compare(0, base.size() + 1, base + "/") == 0) return "";
  }
  if (!any) return kOff;
  return inQuotes(path) + " is not in a directory the engine allows (--exec-allow " + list + ")";
}

std::string enginePath() {
  const char* path = std::getenv("PATH");
  return path != nullptr && *path != '\0' ? path : kDefaultPath;
}

Executable findAllowedExecutable(const std::string& argv0) {
  const char* allow = std::getenv(kAllowVariable);
  if (allow == nullptr || *allow == '\0') return {"", allowProblem("", allow)};
  Executable exe = resolveExecutable(argv0, enginePath());
  if (!exe.ok()) return exe;
  if (std::string why = allowProblem(exe.path, allow); !why.empty()) return {"", why};
  return exe;
}

std::vector<std::string> childEnvironment(std::string_view flow_id, const ExecConfig& config) {
  std::vector<std::pair<std::string, std::string>> vars;
  for (const char* name : kInheritedVariables) {
    if (const char* value = std::getenv(name); value != nullptr) vars.emplace_back(name, value);
  }
  vars.emplace_back("SLUICE_FLOW_ID", std::string(flow_id));
  for (const auto& [name, value] : config.env) {
    bool replaced = false;
    for (auto& var : vars) {
      if (var.first == name) {
        var.second = value;
        replaced = true;
      }
    }
    if (!replaced) vars.emplace_back(name, value);
  }
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [name, value] : vars) out.push_back(name + "=" + value);
  return out;
}

}  // namespace sluice::exec
