#include "core/logs/flow_logs.hpp"

#include <fcntl.h>
#include <sluice/plugin.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>

#include "core/model/wall_clock.hpp"

namespace sluice {
namespace {

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not a valid one (overlong
// forms, surrogates and code points past U+10FFFF are invalid).
size_t utf8Length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
  }
  if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
  if (c == 0xED && b(1) > 0x9F) return 0;  // surrogates
  if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
  if (c == 0xF4 && b(1) > 0x8F) return 0;  // past U+10FFFF
  return n;
}

const char* streamName(int32_t stream) {
  return stream == SLUICE_OUTPUT_STDERR ? "stderr" : "stdout";
}

}  // namespace

std::string escapeLogText(std::string_view bytes, size_t limit) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(bytes.size(), limit));
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    std::string_view unit;  // what byte i (and the rest of its character) is written as
    const char escape[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xF]};
    size_t n = 1;
    if (c == '\\') {
      unit = "\\\\";
    } else if ((c >= 0x20 && c < 0x7F) || c == '\t') {
      unit = bytes.substr(i, 1);
    } else if (c >= 0x80 && (n = utf8Length(bytes, i)) != 0) {
      unit = bytes.substr(i, n);
    } else {
      n = 1;
      unit = std::string_view(escape, sizeof escape);
    }
    if (out.size() + unit.size() > limit) break;
    out.append(unit);
    i += n;
  }
  return out;
}

size_t utf8Prefix(std::string_view bytes, size_t limit) {
  if (bytes.size() <= limit) return bytes.size();
  // A lead byte in the last 3 bytes whose sequence runs past `limit`: cut before it.
  for (size_t back = 1; back <= 3 && back <= limit; ++back) {
    const auto c = static_cast<unsigned char>(bytes[limit - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return n > back ? limit - back : limit;
  }
  return limit;
}

FlowLogs::FlowLogs(std::filesystem::path dir, uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {}

std::filesystem::path FlowLogs::pathOf(const std::string& flow_id) const {
  return dir_ / (flow_id + ".log");  // flow ids are [A-Za-z0-9._-], starting with [A-Za-z0-9]
}

std::mutex& FlowLogs::stripe(const std::string& flow_id) {
  return stripes_[std::hash<std::string>{}(flow_id) % kStripes];
}

void FlowLogs::append(const std::string& flow_id, int32_t stream,
                      const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  const std::string head =
      formatTime(std::chrono::system_clock::now()) + ' ' + streamName(stream) + ' ';
  std::string text;
  for (const std::string& line : lines) {
    // Escaping may quadruple a line: keep one line within the file's bound.
    const size_t room = max_bytes_ > head.size() + 1 ? max_bytes_ - head.size() - 1 : 0;
    text += head;
    text += escapeLogText(line, room);
    text += '\n';
  }
  std::lock_guard lock(stripe(flow_id));
  writeLocked(flow_id, text);
}

void FlowLogs::writeLocked(const std::string& flow_id, const std::string& text) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const std::string path = pathOf(flow_id).string();
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    spdlog::error("flow {}: cannot open its log {}: {}", flow_id, path, std::strerror(errno));
    return;
  }
  // Whole lines, each file within max_bytes_: rotate before a line that would pass it. A line
  // is at most max_bytes_ (append cut it), so an empty file always takes the next one.
  // The end of the line that starts at `at` (its newline included; text ends with one).
  auto lineEnd = [&](size_t at) {
    const size_t nl = text.find('\n', at);
    return nl == std::string::npos ? text.size() : nl + 1;
  };
  bool may_rotate = true;
  size_t from = 0;
  while (from < text.size()) {
    struct stat st {};
    const uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    size_t to = from;
    while (to < text.size() && size + (lineEnd(to) - from) <= max_bytes_) to = lineEnd(to);
    if (to == from) {
      if (size > 0 && may_rotate) {
        ::close(fd);
        std::filesystem::rename(path, path + ".1", ec);
        if (ec) {
          // Write on past the bound rather than spin (or lose the lines).
          spdlog::error("flow {}: cannot rotate its log {}: {}", flow_id, path, ec.message());
          may_rotate = false;
        }
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
          spdlog::error("flow {}: cannot open its log {}: {}", flow_id, path, std::strerror(errno));
          return;
        }
        continue;
      }
      to = lineEnd(from);
    }
    const ssize_t n = ::write(fd, text.data() + from, to - from);
    if (n != static_cast<ssize_t>(to - from)) {
      spdlog::error("flow {}: writing its log failed: {}", flow_id,
                    n < 0 ? std::strerror(errno) : "short write");
      if (n > 0 && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        spdlog::error("flow {}: its log ends with a partial line", flow_id);
      }
      break;
    }
    from = to;
  }
  ::close(fd);
}

namespace {

// The last `n` lines of the file at `path` (oldest first), read backwards in blocks: a tail
// costs what it returns, not the file's size. Nothing when the file does not exist.
Result<std::deque<std::string>> lastLines(const std::string& path, size_t n) {
  std::deque<std::string> out;
  if (n == 0) return out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    return Error{ErrorKind::kInternal, "cannot read " + path + ": " + std::strerror(errno), {}};
  }
  struct stat st {};
  off_t end = ::fstat(fd, &st) == 0 ? st.st_size : 0;
  std::string carry;  // the start of the line cut by the last block read
  std::string block;
  constexpr off_t kBlock = 64 * 1024;
  bool first = true;
  while (end > 0 && out.size() < n) {
    const off_t begin = end > kBlock ? end - kBlock : 0;
    block.resize(static_cast<size_t>(end - begin));
    const ssize_t got = ::pread(fd, block.data(), block.size(), begin);
    if (got != static_cast<ssize_t>(block.size())) break;
    block += carry;
    if (first && !block.empty() && block.back() == '\n') block.pop_back();  // the last newline
    first = false;
    size_t stop = block.size();
    for (size_t nl = block.rfind('\n', stop == 0 ? 0 : stop - 1);
         nl != std::string::npos && out.size() < n;
         nl = nl == 0 ? std::string::npos : block.rfind('\n', nl - 1)) {
      out.push_front(block.substr(nl + 1, stop - nl - 1));
      stop = nl;
    }
    carry = block.substr(0, stop);
    end = begin;
  }
  if (end == 0 && out.size() < n && !carry.empty()) out.push_front(carry);
  ::close(fd);
  return out;
}

}  // namespace

Result<std::vector<LogLine>> FlowLogs::tail(const std::string& flow_id, size_t n) {
  std::deque<std::string> last;
  {
    // Under the stripe's lock, so that a rotation does not move lines between the two reads.
    std::lock_guard lock(stripe(flow_id));
    auto current = lastLines(pathOf(flow_id).string(), n);
    if (!current.ok()) return current.error();
    last = std::move(current.value());
    if (last.size() < n) {
      auto older = lastLines(pathOf(flow_id).string() + ".1", n - last.size());
      if (!older.ok()) return older.error();
      last.insert(last.begin(), older.value().begin(), older.value().end());
    }
  }
  std::vector<LogLine> out;
  out.reserve(last.size());
  for (const std::string& raw : last) {
    LogLine l;
    const size_t a = raw.find(' ');
    const size_t b = a == std::string::npos ? std::string::npos : raw.find(' ', a + 1);
    if (b == std::string::npos) {
      l.text = raw;
    } else {
      l.time = raw.substr(0, a);
      l.stream = raw.substr(a + 1, b - a - 1);
      l.text = raw.substr(b + 1);
    }
    out.push_back(std::move(l));
  }
  return out;
}

void FlowLogs::remove(const std::string& flow_id) {
  std::lock_guard lock(stripe(flow_id));
  std::error_code ec;
  std::filesystem::remove(pathOf(flow_id), ec);
  std::filesystem::remove(pathOf(flow_id).string() + ".1", ec);
}

}  // namespace sluice
