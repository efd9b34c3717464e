#include "core/schedule/file_clock.hpp"

#include <date/date.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace sluice::schedule {

std::optional<SysTime> parseUtc(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  std::istringstream in{std::string(text)};
  date::sys_time<std::chrono::milliseconds> t;
  in >> date::parse("%Y-%m-%dT%H:%M:%SZ", t);
  if (in.fail()) return std::nullopt;
  in.peek();
  if (!in.eof()) return std::nullopt;  // trailing bytes
  return SysTime(t);
}

std::function<SysTime()> fileClock(std::filesystem::path path) {
  struct State {
    std::mutex mu;
    SysTime last = std::chrono::system_clock::now();
    bool warned = false;
  };
  auto state = std::make_shared<State>();
  return [path = std::move(path), state]() {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    auto t = in ? parseUtc(text.str()) : std::nullopt;
    std::lock_guard lock(state->mu);
    if (t) {
      state->last = *t;
      state->warned = false;
    } else if (!state->warned) {
      state->warned = true;
      spdlog::warn(
          "--schedule-clock {}: no RFC 3339 UTC time in the file; the schedules keep "
          "the last time read",
          path.string());
    }
    return state->last;
  };
}

}  // namespace sluice::schedule
