#include "core/plugins/plugin_registry.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/plugins/plugin_abi.hpp"

namespace sluice {
namespace {

// Owns an opened plugin and the private copy it was loaded from: the copy is deleted once the
// library is unloaded.
struct LoadedCopy {
  std::shared_ptr<void> library;
  std::filesystem::path copy;
  ~LoadedCopy() {
    library.reset();
    std::error_code ec;
    if (!copy.empty()) std::filesystem::remove(copy, ec);
  }
};

std::vector<std::filesystem::path> pluginFiles(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    spdlog::warn("plugin directory {} does not exist; skipped", dir.string());
    return files;
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".so" && entry.is_regular_file(ec)) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string canonicalName(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
  return (ec ? path : canonical).string();
}

}  // namespace

PluginRegistry::PluginRegistry(RegistryOptions options) : options_(std::move(options)) {
  if (options_.cache_dir.empty()) return;
  std::error_code ec;
  // Private copies left by an earlier run are never in use now.
  std::filesystem::remove_all(options_.cache_dir / "loaded", ec);
  std::filesystem::create_directories(options_.cache_dir / "loaded", ec);
  if (!options_.scanner.empty()) {
    verdicts_ = std::make_unique<VerdictCache>(options_.cache_dir / "verdicts.json");
  }
}

PluginRegistry::~PluginRegistry() = default;

void PluginRegistry::loadDirectories(std::vector<std::filesystem::path> dirs) {
  {
    std::lock_guard lock(reload_mu_);
    dirs_ = std::move(dirs);
  }
  reload();
}

void PluginRegistry::loadDirectory(const std::filesystem::path& dir) {
  {
    std::lock_guard lock(reload_mu_);
    dirs_.push_back(dir);
  }
  reload();
}

ReloadReport PluginRegistry::reload() {
  std::lock_guard reload_lock(reload_mu_);
  ReloadReport report;
  std::map<std::string, FileStamp> present;
  for (const auto& dir : dirs_) {
    for (const auto& f : pluginFiles(dir)) {
      FileStamp stamp;
      if (stampOf(f, &stamp)) present.emplace(canonicalName(f), stamp);
    }
  }
  {
    // Files gone or changed retire their versions; refusals are recomputed below.
    std::lock_guard lock(mu_);
    for (auto it = loaded_.begin(); it != loaded_.end();) {
      auto now = present.find(it->first);
      if (now != present.end() && now->second == it->second.stamp) {
        ++it;
        continue;
      }
      if (now == present.end()) report.removed.push_back(it->first);
      spdlog::info("plugin {} {} from {} retired: its file is {}", it->second.plugin.name,
                   it->second.plugin.version, it->first, now == present.end() ? "gone" : "changed");
      retire(std::move(it->second.plugin));
      it = loaded_.erase(it);
    }
    refused_.clear();
  }
  for (const auto& [file, stamp] : present) {
    {
      std::lock_guard lock(mu_);
      if (loaded_.count(file) != 0) {
        ++report.unchanged;
        continue;
      }
    }
    if (loadOne(file, stamp, &report.refused)) report.loaded.push_back(file);
  }
  return report;
}

bool PluginRegistry::loadFile(const std::filesystem::path& path) {
  std::lock_guard reload_lock(reload_mu_);
  const std::string file = canonicalName(path);
  FileStamp stamp;
  std::vector<RefusedPlugin> refused;
  if (!stampOf(file, &stamp)) {
    std::lock_guard lock(mu_);
    refused_.push_back({file, "cannot load shared object: no such file"});
    spdlog::error("plugin {} refused: no such file", file);
    return false;
  }
  return loadOne(file, stamp, &refused);
}

std::filesystem::path PluginRegistry::privateCopy(const std::string& file, const FileStamp& stamp,
                                                  std::string* error) {
  if (options_.cache_dir.empty()) return file;
  const auto name = std::filesystem::path(file).stem().string() + "-" + std::to_string(++copies_) +
                    "-" + std::to_string(stamp.mtime_ns) + ".so";
  const auto copy = options_.cache_dir / "loaded" / name;
  std::error_code ec;
  std::filesystem::create_directories(copy.parent_path(), ec);
  std::filesystem::copy_file(file, copy, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    *error = "cannot copy " + file + " to " + copy.string() + ": " + ec.message();
    return {};
  }
  return copy;
}

bool PluginRegistry::loadOne(const std::string& file, const FileStamp& stamp,
                             std::vector<RefusedPlugin>* out) {
  auto refuse = [&](const std::string& reason) {
    spdlog::error("plugin {} refused: {}", file, reason);
    std::lock_guard lock(mu_);
    refused_.push_back({file, reason});
    out->push_back({file, reason});
    return false;
  };
  if (!options_.scanner.empty()) {
    ScanVerdict verdict;
    if (!verdicts_ || !verdicts_->find(file, stamp, &verdict)) {
      verdict = scanInChild(options_.scanner, file, options_.scan_timeout);
      // A scanner that could not run says nothing about the plugin: not remembered.
      if (verdicts_ && verdict.reason.rfind("cannot scan:", 0) != 0) {
        verdicts_->put(file, stamp, verdict);
      }
    }
    if (!verdict.ok && verdict.reason.rfind("cannot scan:", 0) == 0) {
      // No verdict at all (the scanner binary cannot run): loaded as before scanning existed.
      spdlog::warn("plugin {} loaded without a crash-proof scan: {}", file, verdict.reason);
    } else if (!verdict.ok) {
      return refuse(verdict.reason);
    }
  }
  std::string reason;
  const std::filesystem::path copy = privateCopy(file, stamp, &reason);
  if (copy.empty()) return refuse(reason);
  auto opened = openPlugin(copy, &reason);
  if (!opened) {
    if (copy != file) {
      std::error_code ec;
      std::filesystem::remove(copy, ec);
    }
    return refuse(reason);
  }
  auto holder = std::make_shared<LoadedCopy>();
  holder->library = std::move(opened->library);
  if (copy != file) holder->copy = copy;
  std::shared_ptr<void> library = holder;
  Entry entry;
  entry.stamp = stamp;
  entry.plugin.name = opened->info.name;
  entry.plugin.version = opened->info.version;
  entry.plugin.file = file;
  entry.plugin.abi_major = opened->info.abi_major;
  entry.plugin.abi_minor = opened->info.abi_minor;
  for (auto& t : opened->info.types) {
    auto type = std::make_shared<FlowType>();
    type->library = library;
    type->def_copy = t.def;
    type->name = t.name;
    type->version = t.version;
    type->description = t.description;
    type->config_schema = t.config_schema;
    type->schema = t.schema;
    type->plugin_name = entry.plugin.name;
    type->file = file;
    type->load_path = copy.string();
    entry.plugin.types.push_back(std::move(type));
  }
  if (auto refusal = registerTypes(file, std::move(entry))) return refuse(refusal->reason);
  return true;
}

std::optional<RefusedPlugin> PluginRegistry::registerTypes(const std::string& file, Entry entry) {
  std::lock_guard lock(mu_);
  for (const auto& type : entry.plugin.types) {
    for (const auto& [other_file, other] : loaded_) {
      for (const auto& t : other.plugin.types) {
        if (t->name == type->name && t->version == type->version) {
          return RefusedPlugin{file, "flow type '" + type->name + "' version " +
                                         type->version.str() +
                                         " is already registered by plugin '" + t->plugin_name +
                                         "' (" + other_file + ")"};
        }
      }
    }
  }
  std::string list;
  for (const auto& t : entry.plugin.types) list += (list.empty() ? "" : ", ") + t->ref();
  spdlog::info("plugin {} {} loaded from {} (needs ABI {}.{}): flow types [{}]", entry.plugin.name,
               entry.plugin.version, file, entry.plugin.abi_major, entry.plugin.abi_minor, list);
  loaded_[file] = std::move(entry);
  return std::nullopt;
}

void PluginRegistry::retire(LoadedPlugin plugin) {
  Retired r;
  for (auto& t : plugin.types) r.types.push_back(t);
  plugin.types.clear();
  plugin.retired = true;
  r.plugin = std::move(plugin);
  retired_.push_back(std::move(r));
}

std::shared_ptr<const FlowType> PluginRegistry::find(const std::string& type_ref) const {
  std::string error;
  auto pin = parseTypePin(type_ref, &error);
  if (!pin) return nullptr;
  std::lock_guard lock(mu_);
  std::shared_ptr<const FlowType> best;
  for (const auto& [file, entry] : loaded_) {
    for (const auto& t : entry.plugin.types) {
      if (t->name == pin->name && pin->matches(t->version) && (!best || best->version < t->version))
        best = t;
    }
  }
  return best;
}

std::vector<LoadedPlugin> PluginRegistry::plugins() const {
  std::lock_guard lock(mu_);
  std::vector<LoadedPlugin> out;
  for (const auto& [file, entry] : loaded_) out.push_back(entry.plugin);
  // Retired versions still in use; the rest are forgotten (their libraries are unloaded).
  std::erase_if(retired_, [](const Retired& r) {
    return std::none_of(r.types.begin(), r.types.end(), [](const auto& w) { return !w.expired(); });
  });
  for (const auto& r : retired_) {
    LoadedPlugin p = r.plugin;
    for (const auto& w : r.types) {
      if (auto t = w.lock()) p.types.push_back(std::move(t));
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<RefusedPlugin> PluginRegistry::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

}  // namespace sluice
