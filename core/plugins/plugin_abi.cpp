#include "core/plugins/plugin_abi.hpp"

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "core/model/flow_spec.hpp"

namespace sluice {
namespace {

// Smallest struct sizes a plugin of ABI 1.0 may declare. Frozen: later minors only grow the
// structs at their end, so these stay the sizes of 1.0.
constexpr size_t kDescriptorSizeV1_0 =
    offsetof(sluice_plugin_descriptor, flow_types) + sizeof(void*);
constexpr size_t kFlowTypeSizeV1_0 = offsetof(sluice_flow_type, run) + sizeof(void*);
constexpr uint32_t kKnownFlowFlags = SLUICE_FLOW_HAS_STEP | SLUICE_FLOW_DEDICATED_THREAD;

std::string describeVersion(unsigned major, unsigned minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

const char* missingHook(const sluice_flow_type& t) {
  if (t.create == nullptr) return "create";
  if (t.destroy == nullptr) return "destroy";
  if (t.start == nullptr) return "start";
  if (t.stop == nullptr) return "stop";
  if ((t.flags & SLUICE_FLOW_HAS_STEP) != 0 && t.step == nullptr) return "step";
  if ((t.flags & SLUICE_FLOW_DEDICATED_THREAD) != 0 && t.run == nullptr) return "run";
  return nullptr;
}

// The loaded shared object; the plugin's shutdown hook runs before it is unloaded.
struct Library {
  boost::dll::shared_library dll;
  void (*shutdown)(void) = nullptr;
  ~Library() {
    if (shutdown != nullptr) shutdown();
  }
};

}  // namespace

std::optional<InspectedPlugin> inspectDescriptor(const sluice_plugin_descriptor* declared,
                                                 std::string* reason) {
  auto refuse = [&](std::string why) -> std::optional<InspectedPlugin> {
    *reason = std::move(why);
    return std::nullopt;
  };
  if (declared == nullptr) return refuse("entry symbol returned no descriptor (null)");
  // Read only as far as the plugin declared, into a zeroed struct of this engine's size.
  sluice_plugin_descriptor descriptor{};
  std::memcpy(&descriptor, declared, std::min<size_t>(declared->struct_size, sizeof descriptor));
  const sluice_plugin_descriptor* d = &descriptor;
  if (d->struct_size < kDescriptorSizeV1_0) {
    return refuse("descriptor struct too small: " + std::to_string(d->struct_size) +
                  " bytes, ABI 1.0 needs at least " + std::to_string(kDescriptorSizeV1_0));
  }
  if (d->abi_major != SLUICE_ABI_MAJOR) {
    return refuse("ABI major version mismatch: plugin built for ABI " +
                  describeVersion(d->abi_major, d->abi_minor) + ", engine supports " +
                  describeVersion(SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR));
  }
  if (d->abi_minor > SLUICE_ABI_MINOR) {
    return refuse("plugin needs engine ABI " + describeVersion(d->abi_major, d->abi_minor) +
                  " or later, this engine has " +
                  describeVersion(SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR));
  }
  if (d->name == nullptr || *d->name == '\0') return refuse("descriptor has no plugin name");
  if (d->flow_type_count > 0 && d->flow_types == nullptr) {
    return refuse("descriptor declares flow types but the table is null");
  }
  InspectedPlugin plugin;
  plugin.name = d->name;
  plugin.version = d->version != nullptr ? d->version : "";
  plugin.abi_major = d->abi_major;
  plugin.abi_minor = d->abi_minor;
  const std::optional<SemVer> plugin_version = parseSemVer(plugin.version);
  for (uint32_t i = 0; i < d->flow_type_count; ++i) {
    const sluice_flow_type* given = d->flow_types[i];
    const std::string where = "flow type #" + std::to_string(i);
    if (given == nullptr) return refuse(where + " is null");
    InspectedType type;
    std::memcpy(&type.def, given, std::min<size_t>(given->struct_size, sizeof type.def));
    const sluice_flow_type& t = type.def;
    if (t.struct_size < kFlowTypeSizeV1_0) {
      return refuse(where + " struct too small: " + std::to_string(t.struct_size) +
                    " bytes, ABI 1.0 needs at least " + std::to_string(kFlowTypeSizeV1_0));
    }
    if (t.name == nullptr || !isValidTypeName(t.name)) {
      return refuse(where + " has no valid name ([A-Za-z0-9._-]{1,128})");
    }
    type.name = t.name;
    const std::string label = "flow type '" + type.name + "'";
    if (const char* missing = missingHook(t)) {
      return refuse(label + ": required hook '" + missing + "' is missing");
    }
    if (const uint32_t unknown = t.flags & ~kKnownFlowFlags; unknown != 0) {
      char bits[16];
      std::snprintf(bits, sizeof bits, "0x%x", unknown);
      return refuse(label + ": unknown flag bits " + bits +
                    " (this engine knows SLUICE_FLOW_HAS_STEP and "
                    "SLUICE_FLOW_DEDICATED_THREAD; a newer engine may)");
    }
    if ((t.flags & SLUICE_FLOW_HAS_STEP) != 0 && (t.flags & SLUICE_FLOW_DEDICATED_THREAD) != 0) {
      return refuse(label + ": a flow type is either a step flow or a dedicated-thread flow");
    }
    const std::string version_text = t.version != nullptr ? t.version : plugin.version;
    const std::optional<SemVer> version =
        t.version != nullptr ? parseSemVer(version_text) : plugin_version;
    if (!version) {
      return refuse(label + ": version '" + version_text +
                    "' is not a semantic version MAJOR.MINOR.PATCH (e.g. 1.0.0)");
    }
    type.version = *version;
    if (t.config_schema != nullptr) {
      std::string schema_error;
      type.schema = ConfigSchema::compile(t.config_schema, &schema_error);
      if (!type.schema) return refuse(label + ": " + schema_error);
      type.config_schema = t.config_schema;
    }
    type.description = t.description != nullptr ? t.description : "";
    for (const auto& other : plugin.types) {
      if (other.name == type.name) return refuse(label + " is declared twice");
    }
    plugin.types.push_back(std::move(type));
  }
  return plugin;
}

std::optional<OpenedPlugin> openPlugin(const std::filesystem::path& file, std::string* reason) {
  auto library = std::make_shared<Library>();
  try {
    library->dll.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    *reason = std::string("cannot load shared object: ") + e.what();
    return std::nullopt;
  }
  if (!library->dll.has(SLUICE_ENTRY_SYMBOL)) {
    *reason = std::string("not a Sluice plugin: no symbol ") + SLUICE_ENTRY_SYMBOL +
              " (a hand-written entry needs extern \"C\" and SLUICE_EXPORT: sluice_add_plugin "
              "hides every other symbol)";
    return std::nullopt;
  }
  const sluice_plugin_descriptor* d = nullptr;
  try {
    d = library->dll.get<const sluice_plugin_descriptor*()>(SLUICE_ENTRY_SYMBOL)();
  } catch (const std::exception& e) {
    *reason = std::string("entry symbol threw: ") + e.what();
    return std::nullopt;
  } catch (...) {
    *reason = "entry symbol threw an exception";
    return std::nullopt;
  }
  auto info = inspectDescriptor(d, reason);
  if (!info) return std::nullopt;
  // Hooks of ABI 1.2, read only when the plugin declared them.
  sluice_plugin_descriptor copy{};
  std::memcpy(&copy, d, std::min<size_t>(d->struct_size, sizeof copy));
  if (copy.init != nullptr) {
    char message[1024] = "";
    sluice_error err{sizeof(sluice_error), message, sizeof message};
    sluice_status rc = SLUICE_ERROR;
    try {
      rc = copy.init(&err);
    } catch (...) {
      std::snprintf(message, sizeof message, "init threw an exception");
    }
    if (rc != SLUICE_OK) {
      *reason = std::string("plugin init failed: ") + (message[0] != '\0' ? message : "no message");
      return std::nullopt;
    }
  }
  library->shutdown = copy.shutdown;
  return OpenedPlugin{std::move(library), std::move(*info)};
}

}  // namespace sluice
