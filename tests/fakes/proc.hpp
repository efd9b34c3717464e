// Reading /proc for integration tests: a process's children, state and descriptors.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

namespace sluice::test {

/// Processes whose parent is `parent`: (pid, state, command).
inline std::vector<std::tuple<int, char, std::string>> children(pid_t parent) {
  std::vector<std::tuple<int, char, std::string>> out;
  DIR* d = ::opendir("/proc");
  while (dirent* e = d != nullptr ? ::readdir(d) : nullptr) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(in, stat);
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 4 > stat.size()) continue;
    char state = stat[close + 2];
    int ppid = std::atoi(stat.c_str() + close + 4);
    if (ppid == parent) {
      out.emplace_back(std::atoi(e->d_name), state,
                       stat.substr(stat.find('(') + 1, close - stat.find('(') - 1));
    }
  }
  if (d != nullptr) ::closedir(d);
  return out;
}

/// argv[0] of `pid` as /proc shows it ("" when it is gone).
inline std::string argv0(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string first;
  std::getline(in, first, '\0');
  return first;
}

/// The engine's host spawner (zygote), when it runs one: (pid, state, command).
inline std::vector<std::tuple<int, char, std::string>> zygotes(pid_t engine) {
  std::vector<std::tuple<int, char, std::string>> out;
  for (auto& child : children(engine)) {
    if (argv0(std::get<0>(child)) == "sluice-flow-zygote") out.push_back(child);
  }
  return out;
}

/// The engine's child processes other than its zygote, and the zygote's children: the flow
/// hosts, whichever way they were spawned (and any other helper the engine runs).
inline std::vector<std::tuple<int, char, std::string>> flowHosts(pid_t engine) {
  std::vector<std::tuple<int, char, std::string>> out;
  for (auto& child : children(engine)) {
    if (argv0(std::get<0>(child)) == "sluice-flow-zygote") {
      for (auto& host : children(std::get<0>(child))) out.push_back(host);
    } else {
      out.push_back(child);
    }
  }
  return out;
}

/// A number field of /proc/<pid>/status ("Threads", "VmRSS" in kB); -1 when absent.
inline int64_t statusField(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ':') {
      return std::atoll(line.c_str() + name.size() + 1);
    }
  }
  return -1;
}

/// The state letter of `pid` (R, S, Z, ...), or 0 when it does not exist.
inline char processState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? 0 : stat[close + 2];
}

inline int openFds(pid_t pid) {
  int n = 0;
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  while (dirent* e = d != nullptr ? ::readdir(d) : nullptr) n += e->d_name[0] != '.';
  if (d != nullptr) ::closedir(d);
  return n;
}

}  // namespace sluice::test
