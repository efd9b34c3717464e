// Opening a plugin shared object and checking what it declares against this engine's ABI. One
// implementation for the engine, the plugin scanner and the host process, so that all three load
// exactly what the engine would (docs/plugin-guide.md, "What the engine checks").
#pragma once

#include <sluice/plugin.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model/semver.hpp"
#include "core/plugins/config_schema.hpp"

namespace sluice {

/// One flow type as the engine reads it.
struct InspectedType {
  /// The plugin's struct as far as it declared it (struct_size), the rest zero: what an older
  /// plugin did not declare reads as absent, never as the bytes after its struct.
  sluice_flow_type def{};
  std::string name;
  std::string description;
  std::string config_schema;  // JSON Schema text, empty when the type publishes none
  std::shared_ptr<const ConfigSchema> schema;
  SemVer version;  // the type's own version, else the plugin's
};

struct InspectedPlugin {
  std::string name;
  std::string version;
  unsigned abi_major = 0;
  unsigned abi_minor = 0;  // the minimum engine ABI minor the plugin needs
  std::vector<InspectedType> types;
};

/// Checks the descriptor an entry symbol returned (copied into a zeroed struct of this engine's
/// size first). nullopt, with the reason in *reason, when the engine must refuse it.
std::optional<InspectedPlugin> inspectDescriptor(const sluice_plugin_descriptor* declared,
                                                 std::string* reason);

/// A loaded and checked plugin. `library` co-owns the shared object: it is unloaded (after the
/// plugin's shutdown hook) when the last copy of it goes.
struct OpenedPlugin {
  std::shared_ptr<void> library;
  InspectedPlugin info;
};

/// Loads `file` (RTLD_NOW | RTLD_LOCAL), calls its entry symbol, checks the descriptor and calls
/// the plugin's init hook. nullopt with the reason when refused (the library is unloaded again).
/// Only called on a file the scanner passed, or in the scanner itself.
std::optional<OpenedPlugin> openPlugin(const std::filesystem::path& file, std::string* reason);

}  // namespace sluice
