// Crash-proof plugin scanning, as GStreamer's plugin scanner does it: every new or changed plugin
// file is first opened in a child process (the sluice binary run as `--scan-plugin FILE`). One
// that crashes, hangs or is refused there is never loaded into the engine. Verdicts are kept by
// file, size and mtime so that a restart does not scan again.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

namespace sluice {

struct ScanVerdict {
  bool ok = false;
  std::string reason;  // why it was refused, when !ok
  /// Whether the verdict says something about the file itself, to be remembered: not a kill from
  /// outside (SIGKILL, SIGINT, SIGTERM, SIGHUP), an exit without a verdict or a failure of the
  /// scan's own plumbing. A hang is remembered: touching the file scans it again.
  bool lasting = true;
  /// The scanner binary could not be run at all (an embedding program): no verdict.
  bool no_scanner = false;
};

/// The scanner child's side: opens `file` as the engine would (entry, ABI checks, init and
/// shutdown), writes the verdict to `verdict_fd` and ends the process with _exit (no exit
/// handler runs after the verdict).
[[noreturn]] void runPluginScan(const std::string& file, int verdict_fd);

/// Runs `exe --scan-plugin FILE` and waits at most `timeout` for its verdict. A child that dies
/// of a signal or does not answer in time (it is killed) is refused, the signal named.
ScanVerdict scanInChild(const std::filesystem::path& exe, const std::filesystem::path& file,
                        std::chrono::milliseconds timeout);

/// What a plugin file is, for the verdict cache: its size and modification time.
struct FileStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};
bool stampOf(const std::filesystem::path& file, FileStamp* out);

/// Verdicts by file path and stamp, kept in a JSON file. Thread-safe.
class VerdictCache {
 public:
  /// Reads `path` when it exists (an unreadable cache is ignored: files are scanned again).
  explicit VerdictCache(std::filesystem::path path);
  bool find(const std::string& file, const FileStamp& stamp, ScanVerdict* out) const;
  /// Records a verdict and rewrites the file (atomically, by rename).
  void put(const std::string& file, const FileStamp& stamp, const ScanVerdict& verdict);

 private:
  struct Entry {
    FileStamp stamp;
    ScanVerdict verdict;
  };
  void save() const;  // mu_ held
  std::filesystem::path path_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
};

}  // namespace sluice
