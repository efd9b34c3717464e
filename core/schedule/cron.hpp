// Cron expressions (issue #12, runtime.schedule.cron): the standard five fields with names,
// ranges, lists and steps, and the @hourly-style macros. No Debian package offers a C++ cron
// parser (docs/orchestration.md), so this is a small one, tested field by field.
//
//   minute        0-59
//   hour          0-23
//   day of month  1-31
//   month         1-12 or jan-dec
//   day of week   0-7 or sun-sat (0 and 7 are Sunday)
//
// Each field is a comma-separated list of `*`, `N`, `N-M`, each with an optional step `/S`
// (`N/S` means from N to the field's end). As in Vixie cron, when both day fields are
// restricted (neither starts with `*`), a day matches when either matches.
#pragma once

#include <bitset>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::schedule {

/// A civil date and time of day, in the schedule's time zone.
struct CivilMinute {
  int year = 1970;
  unsigned month = 1;    // 1-12
  unsigned day = 1;      // 1-31
  unsigned weekday = 4;  // 0 = Sunday
  unsigned hour = 0;
  unsigned minute = 0;
};

class CronExpr {
 public:
  /// Parses `text`; on failure returns nothing and sets *error to a message naming the field
  /// and the part that is wrong.
  static std::optional<CronExpr> parse(std::string_view text, std::string* error);

  bool matchesDay(unsigned month, unsigned day, unsigned weekday) const;
  bool matchesHour(unsigned hour) const { return hours_[hour]; }
  bool matchesMinute(unsigned minute) const { return minutes_[minute]; }
  bool matches(const CivilMinute& t) const {
    return matchesDay(t.month, t.day, t.weekday) && matchesHour(t.hour) && matchesMinute(t.minute);
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // 1-31
  std::bitset<13> months_;  // 1-12
  std::bitset<7> weekdays_;
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

}  // namespace sluice::schedule
