#include "core/model/wall_clock.hpp"

#include <chrono>

namespace sluice {

namespace {

void put(std::string& out, size_t at, long long value, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    out[at + static_cast<size_t>(i)] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

// By the calendar arithmetic of <chrono>, not gmtime_r + strftime: glibc's gmtime_r takes the
// time zone lock, and a command to 100,000 flows formats 200,000 times (its state events).
std::string formatTime(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  std::string out = "0000-00-00T00:00:00.000Z";
  put(out, 0, static_cast<int>(ymd.year()), 4);
  put(out, 5, static_cast<unsigned>(ymd.month()), 2);
  put(out, 8, static_cast<unsigned>(ymd.day()), 2);
  put(out, 11, hms.hours().count(), 2);
  put(out, 14, hms.minutes().count(), 2);
  put(out, 17, hms.seconds().count(), 2);
  put(out, 20, hms.subseconds().count(), 3);
  return out;
}

}  // namespace sluice
