// The flows' logs: what the work of each flow wrote (a child process's stdout and stderr,
// through the host function `output`, ABI 1.4), one file per flow under <data_dir>/logs.
//
// Every line is stored as "<time> <stream> <text>": the UTC time it was completed, to the
// millisecond, "stdout" or "stderr", and the text with a backslash written \\ and every byte
// that is not part of valid UTF-8, and every control character but tab, written \xNN. A file
// that would pass max_bytes is renamed to <id>.log.1 (replacing the previous one) and a new one
// begun, so a flow's log takes at most twice max_bytes. Files are opened for each batch of lines
// (no descriptor stays open per flow). Thread-safe: one lock per stripe of flow ids.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/errors.hpp"

namespace sluice {

/// One stored line, as read back.
struct LogLine {
  std::string time;    // "2026-11-29T21:00:00.123Z"
  std::string stream;  // "stdout" or "stderr"
  std::string text;    // escaped: valid UTF-8
};

/// `bytes` as one log line's text: a backslash as \\, invalid UTF-8 and control characters
/// (but tab) as \xNN. At most `limit` bytes: the text stops before the first escape or
/// character that would pass it (never inside one).
std::string escapeLogText(std::string_view bytes, size_t limit = std::string::npos);

/// The length of the longest prefix of `bytes` (at most `limit`) that does not end inside a
/// UTF-8 sequence.
size_t utf8Prefix(std::string_view bytes, size_t limit);

class FlowLogs {
 public:
  /// Lines longer than this are cut into several.
  static constexpr size_t kMaxLineBytes = 16 * 1024;

  FlowLogs(std::filesystem::path dir, uint64_t max_bytes);
  FlowLogs(const FlowLogs&) = delete;
  static constexpr size_t kStripes = 64;
  FlowLogs& operator=(const FlowLogs&) = delete;

  /// Appends lines (without their newlines) of `stream` (SLUICE_OUTPUT_*) to the log of
  /// `flow_id`. A write error is logged and the lines dropped: a full disk never fails a flow.
  void append(const std::string& flow_id, int32_t stream, const std::vector<std::string>& lines);
  /// The last `n` lines of the log of `flow_id`, oldest first (none when it has no log).
  Result<std::vector<LogLine>> tail(const std::string& flow_id, size_t n);
  /// Removes the log of `flow_id` (the flow was deleted).
  void remove(const std::string& flow_id);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path pathOf(const std::string& flow_id) const;
  std::mutex& stripe(const std::string& flow_id);
  /// Appends `text` (whole lines) to the file of `flow_id`, rotating first when it would pass
  /// max_bytes_; its stripe's lock held.
  void writeLocked(const std::string& flow_id, const std::string& text);

  const std::filesystem::path dir_;
  const uint64_t max_bytes_;
  std::mutex stripes_[kStripes];
};

/// Cuts a stream of bytes into lines (per stream); partial lines wait for the rest.
class LineSplitter {
 public:
  /// Calls `line(text)` for every complete line in `bytes` (without the newline, and without a
  /// carriage return before it), and for every kMaxLineBytes of a longer one.
  template <class Fn>
  void feed(std::string_view bytes, Fn&& line) {
    while (!bytes.empty()) {
      const size_t nl = bytes.find('\n');
      const std::string_view piece = bytes.substr(0, nl);
      partial_.append(piece);
      while (partial_.size() > FlowLogs::kMaxLineBytes) {
        // Cut where no UTF-8 character is split (a character is at most 4 bytes).
        const size_t cut = utf8Prefix(partial_, FlowLogs::kMaxLineBytes);
        line(std::string_view(partial_).substr(0, cut));
        partial_.erase(0, cut);
      }
      if (nl == std::string_view::npos) return;
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      line(std::string_view(partial_));
      partial_.clear();
      bytes.remove_prefix(nl + 1);
    }
  }
  /// The partial line left, if any, as a line of its own.
  template <class Fn>
  void flush(Fn&& line) {
    if (partial_.empty()) return;
    line(std::string_view(partial_));
    partial_.clear();
  }

 private:
  std::string partial_;
};

}  // namespace sluice
