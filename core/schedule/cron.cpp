#include "core/schedule/cron.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace sluice::schedule {
namespace {

struct Field {
  const char* name;
  unsigned lo;
  unsigned hi;
  const std::array<const char*, 12>* names;  // names[i] is value lo_name + i
  unsigned names_from;
  size_t name_count;
};

constexpr std::array<const char*, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 12> kWeekdays = {"sun", "mon", "tue", "wed", "thu", "fri",
                                                   "sat", "",    "",    "",    "",    ""};

const Field kFields[5] = {
    {"minute", 0, 59, nullptr, 0, 0},        {"hour", 0, 23, nullptr, 0, 0},
    {"day-of-month", 1, 31, nullptr, 0, 0},  {"month", 1, 12, &kMonths, 1, 12},
    {"day-of-week", 0, 7, &kWeekdays, 0, 7},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// A number or (for month and day of week) a name.
std::optional<unsigned> value(const Field& f, std::string_view token, std::string* why) {
  if (token.empty()) {
    *why = "a value is missing";
    return std::nullopt;
  }
  unsigned v = 0;
  if (std::isdigit(static_cast<unsigned char>(token[0])) != 0) {
    auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || end != token.data() + token.size()) {
      *why = "'" + std::string(token) + "' is not a number";
      return std::nullopt;
    }
  } else {
    const std::string name = lower(token);
    bool found = false;
    if (f.names != nullptr) {
      for (size_t i = 0; i < f.name_count; ++i) {
        if (name == (*f.names)[i]) {
          v = f.names_from + static_cast<unsigned>(i);
          found = true;
        }
      }
    }
    if (!found) {
      *why = f.names != nullptr ? "unknown name '" + std::string(token) + "'"
                                : "'" + std::string(token) + "' is not a number";
      return std::nullopt;
    }
  }
  if (v < f.lo || v > f.hi) {
    *why =
        std::to_string(v) + " is out of range " + std::to_string(f.lo) + "-" + std::to_string(f.hi);
    return std::nullopt;
  }
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(sep, start);
    out.push_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

/// Sets the values `item` (one element of a list) selects; false with *why when it is wrong.
bool parseItem(const Field& f, std::string_view item, std::vector<bool>& set, std::string* why) {
  unsigned step = 1;
  std::string_view range = item;
  const bool has_step = item.find('/') != std::string_view::npos;
  if (has_step) {
    const size_t slash = item.find('/');
    range = item.substr(0, slash);
    const std::string_view step_text = item.substr(slash + 1);
    auto [end, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
    if (step_text.empty() || ec != std::errc() || end != step_text.data() + step_text.size() ||
        step == 0) {
      *why = "step '" + std::string(step_text) + "' is not a positive number";
      return false;
    }
    if (step > f.hi) {
      *why = "step " + std::to_string(step) + " is larger than the field's range " +
             std::to_string(f.lo) + "-" + std::to_string(f.hi);
      return false;
    }
  }
  unsigned lo = f.lo;
  unsigned hi = f.hi;
  if (range == "*") {
    if (f.hi == 7) hi = 6;  // day of week: * is 0-6 (7 is Sunday again)
  } else {
    const size_t dash = range.find('-');
    auto first = value(f, range.substr(0, dash), why);
    if (!first) return false;
    lo = *first;
    if (dash != std::string_view::npos) {
      auto last = value(f, range.substr(dash + 1), why);
      if (!last) return false;
      hi = *last;
      if (hi < lo) {
        *why = "range '" + std::string(range) + "' runs backwards";
        return false;
      }
    } else if (!has_step) {
      hi = lo;
    }
  }
  for (unsigned v = lo; v <= hi; v += step) set[v] = true;
  return true;
}

}  // namespace

std::optional<CronExpr> CronExpr::parse(std::string_view text, std::string* error) {
  static const std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  CronExpr expr;
  expr.text_ = std::string(text);
  std::string expanded(text);
  if (!text.empty() && text[0] == '@') {
    const std::string name = lower(text);
    bool known = false;
    for (const auto& [macro, fields] : kMacros) {
      if (name == macro) {
        expanded = fields;
        known = true;
      }
    }
    if (!known) {
      *error = "unknown macro '" + std::string(text) +
               "' (known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)";
      return std::nullopt;
    }
  }
  std::vector<std::string_view> fields;
  {
    std::string_view rest(expanded);
    size_t i = 0;
    while (i < rest.size()) {
      while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t')) ++i;
      size_t start = i;
      while (i < rest.size() && rest[i] != ' ' && rest[i] != '\t') ++i;
      if (i > start) fields.push_back(rest.substr(start, i - start));
    }
  }
  if (fields.size() != 5) {
    *error = "a cron expression has 5 fields (minute hour day-of-month month day-of-week), '" +
             std::string(text) + "' has " + std::to_string(fields.size());
    return std::nullopt;
  }
  std::vector<bool> sets[5];
  for (size_t i = 0; i < 5; ++i) {
    const Field& f = kFields[i];
    sets[i].assign(f.hi + 1, false);
    for (std::string_view item : split(fields[i], ',')) {
      std::string why;
      if (item.empty()) why = "an empty list element";
      if (!why.empty() || !parseItem(f, item, sets[i], &why)) {
        *error = std::string(f.name) + " field '" + std::string(fields[i]) + "': " + why;
        return std::nullopt;
      }
    }
  }
  for (unsigned v = 0; v < 60; ++v) expr.minutes_[v] = sets[0][v];
  for (unsigned v = 0; v < 24; ++v) expr.hours_[v] = sets[1][v];
  for (unsigned v = 1; v <= 31; ++v) expr.days_[v] = sets[2][v];
  for (unsigned v = 1; v <= 12; ++v) expr.months_[v] = sets[3][v];
  for (unsigned v = 0; v <= 7; ++v) {
    if (sets[4][v]) expr.weekdays_[v % 7] = true;
  }
  expr.days_restricted_ = fields[2][0] != '*';
  expr.weekdays_restricted_ = fields[4][0] != '*';
  return expr;
}

bool CronExpr::matchesDay(unsigned month, unsigned day, unsigned weekday) const {
  if (!months_[month]) return false;
  const bool dom = days_[day];
  const bool dow = weekdays_[weekday];
  if (days_restricted_ && weekdays_restricted_) return dom || dow;
  return dom && dow;
}

}  // namespace sluice::schedule
