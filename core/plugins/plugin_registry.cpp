#include "core/plugins/plugin_registry.hpp"

#include <spdlog/spdlog.h>

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

}  // namespace

void PluginRegistry::loadDirectory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    spdlog::warn("plugin directory {} does not exist; skipped", dir.string());
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".so" && entry.is_regular_file(ec)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) loadFile(f);
}

bool PluginRegistry::refuse(const std::string& file, const std::string& reason) {
  spdlog::error("plugin {} refused: {}", file, reason);
  std::lock_guard lock(mu_);
  refused_.push_back({file, reason});
  return false;
}

bool PluginRegistry::loadFile(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
  const std::string file = (ec ? path : canonical).string();
  auto library = std::make_shared<boost::dll::shared_library>();
  try {
    library->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refuse(file, std::string("cannot load shared object: ") + e.what());
  }
  {
    // Never unloaded while the process runs, refused or not: its static constructors ran and
    // may have left something (a thread, an atexit handler) pointing into it.
    std::lock_guard lock(mu_);
    retained_.push_back(library);
  }
  if (!library->has(SLUICE_ENTRY_SYMBOL)) {
    return refuse(file, std::string("not a Sluice plugin: no symbol ") + SLUICE_ENTRY_SYMBOL);
  }
  const sluice_plugin_descriptor* d = nullptr;
  try {
    auto entry = library->get<const sluice_plugin_descriptor*()>(SLUICE_ENTRY_SYMBOL);
    d = entry();
  } catch (const std::exception& e) {
    return refuse(file, std::string("entry symbol threw: ") + e.what());
  } catch (...) {
    return refuse(file, "entry symbol threw an exception");
  }
  if (d == nullptr) return refuse(file, "entry symbol returned no descriptor (null)");
  // Read only as far as the plugin declared, into a zeroed struct of this engine's size.
  sluice_plugin_descriptor descriptor{};
  std::memcpy(&descriptor, d, std::min<size_t>(d->struct_size, sizeof descriptor));
  d = &descriptor;
  if (d->struct_size < kDescriptorSizeV1_0) {
    return refuse(file, "descriptor struct too small: " + std::to_string(d->struct_size) +
                            " bytes, ABI 1.0 needs at least " +
                            std::to_string(kDescriptorSizeV1_0));
  }
  if (d->abi_major != SLUICE_ABI_MAJOR) {
    return refuse(file, "ABI major version mismatch: plugin built for ABI " +
                            describeVersion(d->abi_major, d->abi_minor) + ", engine supports " +
                            describeVersion(SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR));
  }
  if (d->abi_minor > SLUICE_ABI_MINOR) {
    return refuse(file, "plugin built for ABI " + describeVersion(d->abi_major, d->abi_minor) +
                            ", newer than the engine's " +
                            describeVersion(SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR));
  }
  if (d->name == nullptr || *d->name == '\0') return refuse(file, "descriptor has no plugin name");
  if (d->flow_type_count > 0 && d->flow_types == nullptr) {
    return refuse(file, "descriptor declares flow types but the table is null");
  }
  LoadedPlugin plugin;
  plugin.name = d->name;
  plugin.version = d->version != nullptr ? d->version : "";
  plugin.file = file;
  plugin.abi_major = d->abi_major;
  plugin.abi_minor = d->abi_minor;
  std::vector<std::string> names;
  for (uint32_t i = 0; i < d->flow_type_count; ++i) {
    const sluice_flow_type* declared = d->flow_types[i];
    const std::string where = "flow type #" + std::to_string(i);
    if (declared == nullptr) return refuse(file, where + " is null");
    auto type = std::make_shared<FlowType>();
    std::memcpy(&type->def_copy, declared,
                std::min<size_t>(declared->struct_size, sizeof type->def_copy));
    const sluice_flow_type* t = type->def;
    if (t->struct_size < kFlowTypeSizeV1_0) {
      return refuse(file, where + " struct too small: " + std::to_string(t->struct_size) +
                              " bytes, ABI 1.0 needs at least " +
                              std::to_string(kFlowTypeSizeV1_0));
    }
    if (t->name == nullptr || !isValidTypeName(t->name)) {
      return refuse(file, where + " has no valid name ([A-Za-z0-9._-]{1,128})");
    }
    const std::string name = t->name;
    const char* missing = nullptr;
    if (t->create == nullptr)
      missing = "create";
    else if (t->destroy == nullptr)
      missing = "destroy";
    else if (t->start == nullptr)
      missing = "start";
    else if (t->stop == nullptr)
      missing = "stop";
    else if ((t->flags & SLUICE_FLOW_HAS_STEP) != 0 && t->step == nullptr)
      missing = "step";
    else if ((t->flags & SLUICE_FLOW_DEDICATED_THREAD) != 0 && t->run == nullptr)
      missing = "run";
    if (missing != nullptr) {
      return refuse(file, "flow type '" + name + "': required hook '" + missing + "' is missing");
    }
    if (const uint32_t unknown = t->flags & ~kKnownFlowFlags; unknown != 0) {
      char bits[16];
      std::snprintf(bits, sizeof bits, "0x%x", unknown);
      return refuse(file, "flow type '" + name + "': unknown flag bits " + bits +
                              " (this engine knows SLUICE_FLOW_HAS_STEP and "
                              "SLUICE_FLOW_DEDICATED_THREAD; a newer engine may)");
    }
    if ((t->flags & SLUICE_FLOW_HAS_STEP) != 0 && (t->flags & SLUICE_FLOW_DEDICATED_THREAD) != 0) {
      return refuse(file, "flow type '" + name +
                              "': a flow type is either a step flow or a dedicated-thread flow");
    }
    std::shared_ptr<const ConfigSchema> schema;
    if (t->config_schema != nullptr) {
      std::string schema_error;
      schema = ConfigSchema::compile(t->config_schema, &schema_error);
      if (!schema) return refuse(file, "flow type '" + name + "': " + schema_error);
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return refuse(file, "flow type '" + name + "' is declared twice");
    }
    names.push_back(name);
    type->library = library;
    type->name = name;
    type->description = t->description != nullptr ? t->description : "";
    type->config_schema = t->config_schema != nullptr ? t->config_schema : "";
    type->schema = std::move(schema);
    type->plugin_name = plugin.name;
    type->file = file;
    plugin.types.push_back(std::move(type));
  }
  std::unique_lock lock(mu_);
  for (const auto& type : plugin.types) {
    auto it = by_name_.find(type->name);
    if (it != by_name_.end()) {
      std::string reason = "flow type '" + type->name + "' is already registered by plugin '" +
                           it->second->plugin_name + "' (" + it->second->file + ")";
      lock.unlock();
      return refuse(file, reason);
    }
  }
  for (const auto& type : plugin.types) by_name_.emplace(type->name, type);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  spdlog::info("plugin {} {} loaded from {} (ABI {}): flow types [{}]", plugin.name, plugin.version,
               file, describeVersion(plugin.abi_major, plugin.abi_minor), list);
  plugins_.push_back(std::move(plugin));
  return true;
}

std::shared_ptr<const FlowType> PluginRegistry::find(const std::string& type_name) const {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(type_name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<LoadedPlugin> PluginRegistry::plugins() const {
  std::lock_guard lock(mu_);
  return plugins_;
}

std::vector<RefusedPlugin> PluginRegistry::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

}  // namespace sluice
