#include "api/metrics/process_metrics.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "api/metrics/exposition.hpp"

namespace sluice::metrics {
namespace {

// The whole of a /proc file (their size is not known before reading: stat() says 0), or
// nothing when it cannot be opened or read.
std::optional<std::string> readProcFile(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      if (n < 0) return std::nullopt;
      return text;
    }
    text.append(buf, static_cast<size_t>(n));
  }
}

// Splits off the next space-separated field of `rest` as a number.
std::optional<uint64_t> nextNumber(std::string_view& rest) {
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n')) rest.remove_prefix(1);
  uint64_t v = 0;
  const auto r = std::from_chars(rest.data(), rest.data() + rest.size(), v);
  if (r.ec != std::errc()) return std::nullopt;
  rest.remove_prefix(static_cast<size_t>(r.ptr - rest.data()));
  return v;
}

// Fields 3.. of /proc/self/stat, from after the command name: the name is in parentheses and
// may itself hold spaces and parentheses, so only the last ')' is a safe anchor.
std::optional<std::string_view> statFields(const std::string& stat) {
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return std::nullopt;
  return std::string_view(stat).substr(close + 2);
}

// Field `index` (numbered as in proc(5)) of the fields returned by statFields.
std::optional<uint64_t> statField(std::string_view fields, int index) {
  for (int field = 3; field < index; ++field) {
    const size_t space = fields.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    fields.remove_prefix(space + 1);
  }
  return nextNumber(fields);
}

// /proc/self/fd lists every descriptor, including the one opendir() holds while listing it.
std::optional<uint64_t> openFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  char own[16];
  const auto r = std::to_chars(own, own + sizeof own, ::dirfd(dir));
  const std::string_view own_name(own, static_cast<size_t>(r.ptr - own));
  uint64_t count = 0;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != ".." && name != own_name) ++count;
  }
  ::closedir(dir);
  return count;
}

// starttime (field 22) counts clock ticks since boot; the boot time is /proc/stat's btime.
std::optional<double> startTimeSeconds() {
  const auto stat = readProcFile("/proc/self/stat");
  const auto fields = stat ? statFields(*stat) : std::nullopt;
  const auto start = fields ? statField(*fields, 22) : std::nullopt;
  const auto proc_stat = readProcFile("/proc/stat");
  const size_t at = proc_stat ? proc_stat->find("\nbtime ") : std::string::npos;
  if (!start || at == std::string::npos) return std::nullopt;
  std::string_view rest = std::string_view(*proc_stat).substr(at + 7);
  const auto btime = nextNumber(rest);
  if (!btime) return std::nullopt;
  return static_cast<double>(*btime) +
         static_cast<double>(*start) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

void writeProcessMetrics(std::string& out) {
  ExpositionWriter w(out);

  if (const auto statm = readProcFile("/proc/self/statm")) {
    std::string_view rest = *statm;
    const auto pages = nextNumber(rest);     // total program size
    const auto resident = nextNumber(rest);  // resident set
    const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    if (pages && resident) {
      w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
      w.sample("process_resident_memory_bytes", {}, *resident * page);
      w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
      w.sample("process_virtual_memory_bytes", {}, *pages * page);
    }
  }

  if (const auto fds = openFds()) {
    w.family("process_open_fds", "gauge", "Number of open file descriptors.");
    w.sample("process_open_fds", {}, *fds);
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    if (limit.rlim_cur == RLIM_INFINITY) {
      w.sample("process_max_fds", {}, std::numeric_limits<double>::infinity());
    } else {
      w.sample("process_max_fds", {}, static_cast<uint64_t>(limit.rlim_cur));
    }
  }

  const auto stat = readProcFile("/proc/self/stat");
  const auto fields = stat ? statFields(*stat) : std::nullopt;
  if (!fields) return;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  if (const auto threads = statField(*fields, 20)) {
    w.family("process_threads", "gauge", "Number of OS threads in the process.");
    w.sample("process_threads", {}, *threads);
  }
  // Constant for the life of the process: read once, not /proc/stat on every scrape.
  static const std::optional<double> start_time = startTimeSeconds();
  if (start_time) {
    w.family("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.");
    w.sample("process_start_time_seconds", {}, *start_time);
  }
  const auto utime = statField(*fields, 14);
  const auto stime = statField(*fields, 15);
  if (utime && stime) {
    w.family("process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.");
    w.sample("process_cpu_seconds_total", {}, static_cast<double>(*utime + *stime) / ticks);
  }
}

}  // namespace sluice::metrics
