#include "api/metrics/exposition.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace sluice::metrics {
namespace {

// Appends `s` with `\` and newline escaped, and `"` too when `quote` (label values; HELP text
// leaves quotes alone). Runs without an escape are appended whole.
void appendEscaped(std::string& out, std::string_view s, bool quote) {
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const char* esc = c == '\\'             ? "\\\\"
                      : c == '\n'           ? "\\n"
                      : (quote && c == '"') ? "\\\""
                                            : nullptr;
    if (esc == nullptr) continue;
    out.append(s.data() + start, i - start);
    out.append(esc, 2);
    start = i + 1;
  }
  out.append(s.data() + start, s.size() - start);
}

template <typename T>
void appendInteger(std::string& out, T v) {
  char buf[24];  // 20 digits of UINT64_MAX, or a sign and 19 digits
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// `a="x",b="y"`: the inside of a label set.
void appendLabelPairs(std::string& out, const Label* labels, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out += labels[i].name;
    out += "=\"";
    appendEscaped(out, labels[i].value, true);
    out += '"';
  }
}

bool isNameStart(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

bool isNameChar(unsigned char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }

}  // namespace

void appendDouble(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  // The shortest round-trip digits, laid out like Go's strconv.FormatFloat(v, 'g', -1, 64) as
  // the official clients write them: fixed notation for exponents -4..5, else d.ddde±dd. A
  // plain shortest to_chars would write 0.0005 as "5e-04", and le="5e-04" would not match the
  // le="0.0005" that dashboards built on other exporters select.
  char sci[32];  // the longest, e.g. -2.2250738585072014e-308, is 24
  const auto r = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  const std::string_view text(sci, static_cast<size_t>(r.ptr - sci));
  const size_t e = text.find('e');
  int exp = 0;
  std::from_chars(text.data() + e + 2, text.data() + text.size(), exp);
  if (text[e + 1] == '-') exp = -exp;
  if (exp < -4 || exp >= 6) {
    out += text;  // to_chars's exponent has the same sign and two-digit minimum as Go's
    return;
  }
  const bool neg = text[0] == '-';
  if (neg) out += '-';
  char digits[20];  // the significant digits without the point: at most 17
  size_t nd = 0;
  for (size_t i = neg ? 1 : 0; i < e; ++i) {
    if (text[i] != '.') digits[nd++] = text[i];
  }
  if (exp < 0) {
    out += "0.";
    out.append(static_cast<size_t>(-exp - 1), '0');
    out.append(digits, nd);
  } else if (static_cast<size_t>(exp) + 1 >= nd) {
    out.append(digits, nd);
    out.append(static_cast<size_t>(exp) + 1 - nd, '0');
  } else {
    const size_t point = static_cast<size_t>(exp) + 1;
    out.append(digits, point);
    out += '.';
    out.append(digits + point, nd - point);
  }
}

void ExpositionWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  appendEscaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void ExpositionWriter::comment(std::string_view text) {
  out_ += "# ";
  // Parsers skip blanks after '#' and then read one word: HELP or TYPE makes a descriptor.
  std::string_view word = text.substr(std::min(text.find_first_not_of(" \t"), text.size()));
  word = word.substr(0, word.find_first_of(" \t"));
  if (word == "HELP" || word == "TYPE") out_ += '_';
  appendEscaped(out_, text, false);
  out_ += '\n';
}

void ExpositionWriter::writeSeries(std::string_view name, std::string_view suffix,
                                   const Label* labels, size_t n) {
  out_ += name;
  out_ += suffix;
  if (n > 0) {
    out_ += '{';
    appendLabelPairs(out_, labels, n);
    out_ += '}';
  }
  out_ += ' ';
}

void ExpositionWriter::writeSigned(std::string_view name, const Label* labels, size_t n,
                                   int64_t value) {
  writeSeries(name, {}, labels, n);
  appendInteger(out_, value);
  out_ += '\n';
}

void ExpositionWriter::writeUnsigned(std::string_view name, const Label* labels, size_t n,
                                     uint64_t value) {
  writeSeries(name, {}, labels, n);
  appendInteger(out_, value);
  out_ += '\n';
}

void ExpositionWriter::writeDouble(std::string_view name, std::string_view suffix,
                                   const Label* labels, size_t n, double value) {
  writeSeries(name, suffix, labels, n);
  appendDouble(out_, value);
  out_ += '\n';
}

void ExpositionWriter::writeHistogram(std::string_view name, const Label* labels, size_t n,
                                      const Histogram::Snapshot& snap,
                                      const std::vector<double>& bounds) {
  if (snap.buckets.size() != bounds.size() + 1) {
    throw std::invalid_argument("histogram snapshot does not match its bounds");
  }
  if (le_texts_.size() != bounds.size() + 1 || bounds != le_bounds_) {
    le_bounds_ = bounds;
    le_texts_.resize(bounds.size() + 1);
    for (size_t i = 0; i < bounds.size(); ++i) {
      le_texts_[i].clear();
      appendDouble(le_texts_[i], bounds[i]);
      le_texts_[i] += "\"} ";
    }
    le_texts_.back() = "+Inf\"} ";
  }
  // Bucket lines are most of a scrape (15 of 17 lines per flow with the default bounds): the
  // labels are escaped once per histogram, not once per line, and each bucket line is then two
  // appends and a number.
  labels_.clear();
  appendLabelPairs(labels_, labels, n);
  bucket_prefix_.assign(name);
  bucket_prefix_ += "_bucket{";
  bucket_prefix_ += labels_;
  bucket_prefix_ += n > 0 ? ",le=\"" : "le=\"";
  for (size_t i = 0; i < snap.buckets.size(); ++i) {
    out_ += bucket_prefix_;
    out_ += le_texts_[i];
    appendInteger(out_, snap.buckets[i]);
    out_ += '\n';
  }
  // "<name><suffix>{labels} " for the _sum and _count lines; the caller appends the value.
  auto series = [&](std::string_view suffix) {
    out_ += name;
    out_ += suffix;
    if (n > 0) out_ += '{';
    out_ += labels_;
    out_ += n > 0 ? "} " : " ";
  };
  series("_sum");
  appendDouble(out_, snap.sum);
  out_ += '\n';
  series("_count");
  appendInteger(out_, snap.count);
  out_ += '\n';
}

bool validMetricName(std::string_view name) {
  if (name.empty() || !isNameStart(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!isNameChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string sanitizeMetricName(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) out += '_';
  bool in_multibyte = false;  // the previous byte was a non-ASCII one already replaced
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    // UTF-8 continuation bytes (10xxxxxx) belong to the character already replaced.
    if (in_multibyte && (c & 0xC0) == 0x80) continue;
    in_multibyte = c >= 0x80;
    out += isNameChar(c) ? ch : '_';
  }
  return out;
}

}  // namespace sluice::metrics
