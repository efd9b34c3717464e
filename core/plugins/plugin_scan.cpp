#include "core/plugins/plugin_scan.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/model/json.hpp"
#include "core/plugins/plugin_abi.hpp"

extern char** environ;

namespace sluice {
namespace {

bool writeAll(int fd, const std::string& s) {
  size_t at = 0;
  while (at < s.size()) {
    ssize_t n = ::write(fd, s.data() + at, s.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

std::string signalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  const char* text = ::strsignal(sig);
  return std::string("SIG") + (abbrev != nullptr ? abbrev : std::to_string(sig)) + " (" +
         (text != nullptr ? text : "unknown signal") + ")";
}

}  // namespace

void runPluginScan(const std::string& file, int verdict_fd) {
  std::string reason;
  std::string verdict;
  {
    auto opened = openPlugin(file, &reason);
    verdict = opened ? "ok\n" : "refused\n" + reason;
  }  // the plugin's shutdown hook and the unload run here, inside the scan too
  const bool written = writeAll(verdict_fd, verdict);
  // Done: no exit handler (a plugin's, or a sanitizer's leak check) may turn a verdict that was
  // given into a crash.
  ::_exit(written ? 0 : 1);
}

ScanVerdict scanInChild(const std::filesystem::path& exe, const std::filesystem::path& file,
                        std::chrono::milliseconds timeout) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return {false, std::string("scan failed: pipe: ") + std::strerror(errno), false, false};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);  // no engine descriptor in the child
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigfillset(&defaults);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  // A group of its own: a Ctrl-C meant for the engine does not kill a scan into a verdict, and
  // a hung scan is killed with whatever it started.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::string arg0 = "sluice-plugin-scanner";
  std::string arg1 = "--scan-plugin";
  std::string arg2 = file.string();
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return {false, "cannot run the scanner " + exe.string() + ": " + std::strerror(rc), false,
            true};
  }
  std::string out;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;  // the deadline check above ends the loop
    char buf[4096];
    ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the child closed its end (exited)
    out.append(buf, static_cast<size_t>(got));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return {false,
            "hung while loading: no verdict within " + std::to_string(timeout.count()) +
                " ms (scanner killed; see --plugin-scan-timeout; the file is scanned again once "
                "it changes)",
            true, false};
  }
  // A verdict the scanner gave counts, however its process ended afterwards.
  if (out.rfind("ok\n", 0) == 0) return {true, "", true, false};
  if (out.rfind("refused\n", 0) == 0) return {false, out.substr(8), true, false};
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    // Signals a plugin raises itself are its verdict; the others came from outside.
    const bool crash = sig == SIGSEGV || sig == SIGABRT || sig == SIGBUS || sig == SIGILL ||
                       sig == SIGFPE || sig == SIGSYS || sig == SIGTRAP;
    return {false, "crashed while loading: the scanner process died of " + signalName(sig), crash,
            false};
  }
  return {false,
          "crashed while loading: the scanner exited with code " +
              std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + " and no verdict",
          false, false};  // not remembered: a broken scanner (a program without runHelperMode)
                          // would otherwise keep a good plugin refused
}

bool stampOf(const std::filesystem::path& file, FileStamp* out) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return false;
  out->size = static_cast<uint64_t>(st.st_size);
  out->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return true;
}

VerdictCache::VerdictCache(std::filesystem::path path) : path_(std::move(path)) {
  std::ifstream in(path_);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  if (!json::parse(text.str(), doc, nullptr) || !doc.IsArray()) return;
  for (const auto& e : doc.GetArray()) {
    if (!e.IsObject() || !e.HasMember("file") || !e["file"].IsString() || !e.HasMember("size") ||
        !e["size"].IsUint64() || !e.HasMember("mtime_ns") || !e["mtime_ns"].IsInt64() ||
        !e.HasMember("ok") || !e["ok"].IsBool() || !e.HasMember("reason") ||
        !e["reason"].IsString()) {
      continue;
    }
    Entry entry;
    entry.stamp = {e["size"].GetUint64(), e["mtime_ns"].GetInt64()};
    entry.verdict = {e["ok"].GetBool(), e["reason"].GetString()};
    entries_[e["file"].GetString()] = std::move(entry);
  }
}

bool VerdictCache::find(const std::string& file, const FileStamp& stamp, ScanVerdict* out) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(file);
  if (it == entries_.end() || !(it->second.stamp == stamp)) return false;
  *out = it->second.verdict;
  return true;
}

void VerdictCache::put(const std::string& file, const FileStamp& stamp,
                       const ScanVerdict& verdict) {
  std::lock_guard lock(mu_);
  entries_[file] = {stamp, verdict};
  save();
}

void VerdictCache::save() const {
  if (path_.empty()) return;
  std::string out = "[";
  for (const auto& [file, e] : entries_) {
    if (out.size() > 1) out += ",\n";
    out += "{\"file\":";
    json::appendString(out, file);
    out += ",\"size\":" + std::to_string(e.stamp.size) +
           ",\"mtime_ns\":" + std::to_string(e.stamp.mtime_ns) +
           ",\"ok\":" + (e.verdict.ok ? "true" : "false") + ",\"reason\":";
    json::appendString(out, e.verdict.reason);
    out += "}";
  }
  out += "]\n";
  std::error_code ec;
  std::filesystem::create_directories(path_.parent_path(), ec);
  const auto tmp = path_.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << out;
    if (!f) return;
  }
  std::filesystem::rename(tmp, path_, ec);
}

}  // namespace sluice
