// Loads flow plugins (shared objects) and keeps the flow types they provide.
#pragma once

#include <sluice/plugin.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/plugins/config_schema.hpp"

namespace sluice {

/// A flow type provided by a loaded plugin. Co-owns the plugin's library: the library stays
/// loaded as long as any FlowType (and so any instance created from it) is alive.
struct FlowType {
  std::shared_ptr<void> library;  // the loaded shared object
  /// The plugin's flow type struct as far as it declared it (struct_size), the rest zero: what
  /// an older plugin did not declare reads as absent, never as the bytes after its struct.
  /// The pointers in it point into the library, valid while `library` lives.
  sluice_flow_type def_copy{};
  const sluice_flow_type* def = &def_copy;
  std::string name;
  std::string description;
  std::string config_schema;  // JSON Schema text, empty when the type publishes none
  std::shared_ptr<const ConfigSchema> schema;  // compiled config_schema, null when none
  std::string plugin_name;
  std::string file;
  bool has_step() const { return (def->flags & SLUICE_FLOW_HAS_STEP) != 0; }
  bool dedicated_thread() const { return (def->flags & SLUICE_FLOW_DEDICATED_THREAD) != 0; }
};

struct LoadedPlugin {
  std::string name;
  std::string version;
  std::string file;
  unsigned abi_major = 0;
  unsigned abi_minor = 0;
  std::vector<std::shared_ptr<const FlowType>> types;
};

struct RefusedPlugin {
  std::string file;
  std::string reason;
};

/// Thread-safe. Libraries are never unloaded while the registry lives.
class PluginRegistry {
 public:
  /// Loads every `*.so` file of `dir` (sorted by name). Refusals are recorded and logged; a
  /// missing directory is logged and skipped.
  void loadDirectory(const std::filesystem::path& dir);
  /// Loads one file; returns false (with the reason recorded in refused()) when refused.
  bool loadFile(const std::filesystem::path& file);

  std::shared_ptr<const FlowType> find(const std::string& type_name) const;
  std::vector<LoadedPlugin> plugins() const;
  std::vector<RefusedPlugin> refused() const;

 private:
  bool refuse(const std::string& file, const std::string& reason);

  mutable std::mutex mu_;
  std::vector<LoadedPlugin> plugins_;                               // guarded by mu_
  std::vector<RefusedPlugin> refused_;                              // guarded by mu_
  std::map<std::string, std::shared_ptr<const FlowType>> by_name_;  // guarded by mu_
  std::vector<std::shared_ptr<void>> retained_;                     // guarded by mu_
};

}  // namespace sluice
