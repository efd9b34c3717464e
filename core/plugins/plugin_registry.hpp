// Loads flow plugins (shared objects) and keeps the flow types they provide, several versions of
// one type side by side. Every new or changed file is scanned in a child process first
// (core/plugins/plugin_scan.hpp); a reload rescans the directories without a restart.
#pragma once

#include <sluice/plugin.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/model/semver.hpp"
#include "core/plugins/config_schema.hpp"
#include "core/plugins/plugin_scan.hpp"

namespace sluice {

/// A flow type provided by a loaded plugin. Co-owns the plugin's library: the library stays
/// loaded as long as any FlowType (and so any instance, host process or validation using one)
/// is alive, and is unloaded after the last one goes.
struct FlowType {
  std::shared_ptr<void> library;  // the loaded shared object
  /// The plugin's flow type struct as far as it declared it (struct_size), the rest zero: what
  /// an older plugin did not declare reads as absent, never as the bytes after its struct.
  /// The pointers in it point into the library, valid while `library` lives.
  sluice_flow_type def_copy{};
  const sluice_flow_type* def = &def_copy;
  std::string name;
  SemVer version;
  std::string description;
  std::string config_schema;  // JSON Schema text, empty when the type publishes none
  std::shared_ptr<const ConfigSchema> schema;  // compiled config_schema, null when none
  std::string plugin_name;
  std::string file;        // the plugin file in its directory
  std::string load_path;   // the private copy actually loaded (host processes load it too)
  bool builtin = false;    // compiled into this program: runs in threads only
  unsigned abi_minor = 0;  // the engine ABI minor its plugin needs (SLUICE_PLUGIN_MIN_ABI_MINOR)
  /// Its step or run may report the work finished (SLUICE_DONE): a plugin that declares ABI
  /// 1.3 or later. From an older one, status 3 is just an error code.
  bool mayFinish() const { return abi_minor >= 3; }
  bool has_step() const { return (def->flags & SLUICE_FLOW_HAS_STEP) != 0; }
  bool dedicated_thread() const { return (def->flags & SLUICE_FLOW_DEDICATED_THREAD) != 0; }
  std::string ref() const { return name + "@" + version.str(); }
};

struct LoadedPlugin {
  std::string name;
  std::string version;
  std::string file;
  unsigned abi_major = 0;
  unsigned abi_minor = 0;
  bool retired = false;  // its file is gone or was replaced; kept while flows still use it
  std::vector<std::shared_ptr<const FlowType>> types;
};

struct RefusedPlugin {
  std::string file;
  std::string reason;
};

struct RegistryOptions {
  /// The sluice binary, run as `--scan-plugin FILE`; empty = load without scanning (tests of
  /// the engine as a library only).
  std::filesystem::path scanner;
  std::chrono::milliseconds scan_timeout{10'000};
  /// Where the verdict cache and the private copies of loaded files live; empty = no cache, and
  /// files are loaded in place.
  std::filesystem::path cache_dir;
};

/// What a reload did.
struct ReloadReport {
  std::vector<std::string> loaded;   // "file": new or changed files now loaded
  std::vector<std::string> removed;  // files gone (their versions retire)
  std::vector<RefusedPlugin> refused;
  size_t unchanged = 0;
};

/// Thread-safe.
class PluginRegistry {
 public:
  PluginRegistry() = default;
  explicit PluginRegistry(RegistryOptions options);
  ~PluginRegistry();

  /// Sets the directories and loads them (see reload).
  void loadDirectories(std::vector<std::filesystem::path> dirs);
  /// Kept for tests: adds one directory and loads it.
  void loadDirectory(const std::filesystem::path& dir);
  /// Rescans the directories: new and changed files are scanned and loaded beside the versions
  /// already there; versions whose file is gone or changed retire (they stay loaded while
  /// anything uses them). Refusals are those of the files present now. One reload at a time.
  ReloadReport reload();
  /// Loads one file; returns false (with the reason recorded in refused()) when refused.
  bool loadFile(const std::filesystem::path& file);
  /// Registers flow types compiled into this program (an embedding application), under the
  /// plugin name `name` and semantic version `version`, with the same checks as a loaded
  /// plugin's. Listed as file "builtin:NAME"; never retired by a reload. False (and the reason
  /// in refused()) when refused.
  bool addBuiltin(const std::string& name, const std::string& version,
                  const std::vector<const sluice_flow_type*>& types);

  /// The newest loaded version that `type_ref` ("name", "name@1", "name@1.2", "name@1.2.3")
  /// allows; null when none.
  std::shared_ptr<const FlowType> find(const std::string& type_ref) const;
  /// Loaded plugins (by file), then retired ones still in use.
  std::vector<LoadedPlugin> plugins() const;
  std::vector<RefusedPlugin> refused() const;

 private:
  struct Entry {
    FileStamp stamp;
    LoadedPlugin plugin;
  };
  /// Scans (or finds the verdict of) and opens `file`, with no lock held; nullopt and the
  /// reason when refused.
  std::optional<Entry> stage(const std::string& file, const FileStamp& stamp, std::string* reason);
  /// Swaps the staged entries in, retires what they replace and the removed files, records the
  /// refusals (replacing the previous ones when `replace_refusals`).
  void commit(std::vector<Entry> staged, ReloadReport* report, bool replace_refusals = true);
  /// Another file's type at the same version as one of `entry`'s (mu_ held).
  std::optional<std::string> conflictOf(const Entry& entry) const;
  /// Records `plugin` as retired (weak references); returns it, for the caller to drop after
  /// the lock (mu_ held).
  LoadedPlugin retire(LoadedPlugin plugin);
  std::filesystem::path privateCopy(const std::string& file, const FileStamp& stamp,
                                    std::string* error);

  RegistryOptions options_;
  std::unique_ptr<VerdictCache> verdicts_;
  std::mutex reload_mu_;                     // one reload at a time
  std::vector<std::filesystem::path> dirs_;  // guarded by reload_mu_
  uint64_t copies_ = 0;                      // guarded by reload_mu_

  // Shared by find() (every start resolves its type: two workers at once), else exclusive.
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry> loaded_;         // by file; guarded by mu_
  std::map<std::string, Entry> builtin_;        // "builtin:NAME"; guarded by mu_
  std::vector<RefusedPlugin> refused_;          // guarded by mu_
  std::vector<RefusedPlugin> builtin_refused_;  // guarded by mu_: kept across reloads
  struct Retired {
    LoadedPlugin plugin;  // types emptied: the weak references below say what still lives
    std::vector<std::weak_ptr<const FlowType>> types;
  };
  mutable std::vector<Retired> retired_;  // guarded by mu_
};

}  // namespace sluice
