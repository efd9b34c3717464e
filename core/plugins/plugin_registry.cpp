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

// A FlowType from what the ABI checks read (library, load path and built-in flag left to the
// caller).
std::shared_ptr<FlowType> makeFlowType(const InspectedType& t, const std::string& plugin_name,
                                       const std::string& file, unsigned abi_minor) {
  auto type = std::make_shared<FlowType>();
  type->abi_minor = abi_minor;
  type->def_copy = t.def;
  type->name = t.name;
  type->version = t.version;
  type->description = t.description;
  type->config_schema = t.config_schema;
  type->schema = t.schema;
  type->plugin_name = plugin_name;
  type->file = file;
  return type;
}

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
  std::vector<std::pair<std::string, FileStamp>> todo;  // new or changed files
  {
    std::lock_guard lock(mu_);
    for (const auto& [file, entry] : loaded_) {
      if (present.count(file) == 0) report.removed.push_back(file);
    }
    for (const auto& [file, stamp] : present) {
      auto it = loaded_.find(file);
      if (it != loaded_.end() && it->second.stamp == stamp) {
        ++report.unchanged;
      } else {
        todo.emplace_back(file, stamp);
      }
    }
  }
  // Scanned and opened with no lock held: the versions loaded now stay in use meanwhile.
  std::vector<Entry> staged;
  for (const auto& [file, stamp] : todo) {
    std::string reason;
    if (auto entry = stage(file, stamp, &reason)) {
      staged.push_back(std::move(*entry));
    } else {
      report.refused.push_back({file, reason});
    }
  }
  commit(std::move(staged), &report);
  return report;
}

bool PluginRegistry::loadFile(const std::filesystem::path& path) {
  std::lock_guard reload_lock(reload_mu_);
  const std::string file = canonicalName(path);
  ReloadReport report;
  FileStamp stamp;
  std::string reason = "cannot load shared object: no such file";
  std::vector<Entry> staged;
  if (stampOf(file, &stamp)) {
    if (auto entry = stage(file, stamp, &reason)) staged.push_back(std::move(*entry));
  }
  if (staged.empty()) report.refused.push_back({file, reason});
  commit(std::move(staged), &report, /*replace_refusals=*/false);
  return report.refused.empty();
}

void PluginRegistry::commit(std::vector<Entry> staged, ReloadReport* report,
                            bool replace_refusals) {
  std::vector<LoadedPlugin> dropped;  // released after the lock: unloading runs plugin code
  {
    std::lock_guard lock(mu_);
    for (const auto& file : report->removed) {
      auto it = loaded_.find(file);
      if (it == loaded_.end()) continue;
      spdlog::info("plugin {} {} from {} retired: its file is gone", it->second.plugin.name,
                   it->second.plugin.version, file);
      dropped.push_back(retire(std::move(it->second.plugin)));
      loaded_.erase(it);
    }
    for (auto& entry : staged) {
      const std::string file = entry.plugin.file;
      if (auto conflict = conflictOf(entry)) {
        report->refused.push_back({file, *conflict});
        continue;
      }
      if (auto it = loaded_.find(file); it != loaded_.end()) {
        spdlog::info("plugin {} {} from {} retired: its file changed", it->second.plugin.name,
                     it->second.plugin.version, file);
        dropped.push_back(retire(std::move(it->second.plugin)));
      }
      std::string list;
      for (const auto& t : entry.plugin.types) list += (list.empty() ? "" : ", ") + t->ref();
      spdlog::info("plugin {} {} loaded from {} (needs ABI {}.{}): flow types [{}]",
                   entry.plugin.name, entry.plugin.version, file, entry.plugin.abi_major,
                   entry.plugin.abi_minor, list);
      report->loaded.push_back(file);
      loaded_[file] = std::move(entry);
    }
    // A changed file that is refused leaves the version loaded from it before in place.
    if (replace_refusals) refused_ = builtin_refused_;
    for (const auto& r : report->refused) {
      spdlog::error("plugin {} refused: {}{}", r.file, r.reason,
                    loaded_.count(r.file) != 0 ? " (the version loaded before stays)" : "");
      refused_.push_back(r);
    }
  }
  dropped.clear();
  staged.clear();
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

std::optional<PluginRegistry::Entry> PluginRegistry::stage(const std::string& file,
                                                           const FileStamp& stamp,
                                                           std::string* reason) {
  if (!options_.scanner.empty()) {
    ScanVerdict verdict;
    if (!verdicts_ || !verdicts_->find(file, stamp, &verdict)) {
      verdict = scanInChild(options_.scanner, file, options_.scan_timeout);
      if (verdicts_ && verdict.lasting) verdicts_->put(file, stamp, verdict);
    }
    if (verdict.no_scanner) {
      // No verdict at all (the scanner binary cannot run): loaded as before scanning existed.
      spdlog::warn("plugin {} loaded without a crash-proof scan: {}", file, verdict.reason);
    } else if (!verdict.ok) {
      *reason = verdict.reason;
      return std::nullopt;
    }
  }
  const std::filesystem::path copy = privateCopy(file, stamp, reason);
  if (copy.empty()) return std::nullopt;
  auto opened = openPlugin(copy, reason);
  if (!opened) {
    if (copy != file) {
      std::error_code ec;
      std::filesystem::remove(copy, ec);
    }
    return std::nullopt;
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
  for (const auto& t : opened->info.types) {
    auto type = makeFlowType(t, entry.plugin.name, file, entry.plugin.abi_minor);
    type->library = library;
    type->load_path = copy.string();
    entry.plugin.types.push_back(std::move(type));
  }
  return entry;
}

std::optional<std::string> PluginRegistry::conflictOf(const Entry& entry) const {
  for (const auto& type : entry.plugin.types) {
    for (const auto* entries : {&loaded_, &builtin_}) {
      for (const auto& [other_file, other] : *entries) {
        if (other_file == entry.plugin.file) continue;  // the version this file replaces
        for (const auto& t : other.plugin.types) {
          if (t->name == type->name && t->version == type->version) {
            return "flow type '" + type->name + "' version " + type->version.str() +
                   " is already registered by plugin '" + t->plugin_name + "' (" + other_file + ")";
          }
        }
      }
    }
  }
  return std::nullopt;
}

bool PluginRegistry::addBuiltin(const std::string& name, const std::string& version,
                                const std::vector<const sluice_flow_type*>& types) {
  const std::string file = "builtin:" + name;
  sluice_plugin_descriptor d{};
  d.struct_size = sizeof d;
  d.abi_major = SLUICE_ABI_MAJOR;
  d.abi_minor = SLUICE_ABI_MINOR;
  d.name = name.c_str();
  d.version = version.c_str();
  d.flow_type_count = static_cast<uint32_t>(types.size());
  d.flow_types = types.data();
  std::string reason;
  auto info = inspectDescriptor(&d, &reason);
  std::lock_guard lock(mu_);
  if (info) {
    Entry entry;
    entry.plugin.name = info->name;
    entry.plugin.version = info->version;
    entry.plugin.file = file;
    entry.plugin.abi_major = info->abi_major;
    entry.plugin.abi_minor = info->abi_minor;
    for (const auto& t : info->types) {
      auto type = makeFlowType(t, name, file, info->abi_minor);
      type->builtin = true;
      entry.plugin.types.push_back(std::move(type));
    }
    if (auto conflict = conflictOf(entry)) {
      reason = *conflict;
    } else {
      spdlog::info("built-in flow types of {} {} registered", name, version);
      builtin_[file] = std::move(entry);
      return true;
    }
  }
  spdlog::error("built-in plugin {} refused: {}", name, reason);
  builtin_refused_.push_back({file, reason});
  refused_.push_back({file, reason});
  return false;
}

LoadedPlugin PluginRegistry::retire(LoadedPlugin plugin) {
  Retired r;
  for (auto& t : plugin.types) r.types.push_back(t);
  r.plugin = plugin;
  r.plugin.types.clear();
  r.plugin.retired = true;
  retired_.push_back(std::move(r));
  return plugin;  // the caller drops these references after the lock
}

std::shared_ptr<const FlowType> PluginRegistry::find(const std::string& type_ref) const {
  std::string error;
  auto pin = parseTypePin(type_ref, &error);
  if (!pin) return nullptr;
  std::shared_lock lock(mu_);
  std::shared_ptr<const FlowType> best;
  for (const auto* entries : {&builtin_, &loaded_}) {
    for (const auto& [file, entry] : *entries) {
      for (const auto& t : entry.plugin.types) {
        if (t->name == pin->name && pin->matches(t->version) &&
            (!best || best->version < t->version))
          best = t;
      }
    }
  }
  return best;
}

std::vector<LoadedPlugin> PluginRegistry::plugins() const {
  std::lock_guard lock(mu_);
  std::vector<LoadedPlugin> out;
  for (const auto& [file, entry] : builtin_) out.push_back(entry.plugin);
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
