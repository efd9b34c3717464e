#include "api/cli/ctl/ctl_output.hpp"

#include <rapidjson/prettywriter.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string_view>

#include "api/cli/ctl/ctl_yaml.hpp"

namespace sluice::cli::ctl {
namespace {

// Characters, not bytes: UTF-8 continuation bytes do not count.
size_t width(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

}  // namespace

void Table::print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size(), 0);
  std::vector<std::vector<std::string>> lines;
  lines.push_back(headers_);
  for (const auto& r : rows_) {
    std::vector<std::string> line(headers_.size());
    for (size_t i = 0; i < headers_.size() && i < r.size(); ++i) line[i] = printable(r[i]);
    lines.push_back(std::move(line));
  }
  for (const auto& line : lines) {
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], width(line[i]));
  }
  for (const auto& line : lines) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i) {
      text += line[i];
      if (i + 1 < line.size()) text += std::string(widths[i] - width(line[i]) + 3, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  }
}

std::string prettyJson(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  if (!value.Accept(writer)) throw std::runtime_error("cannot write the JSON document");
  // RapidJSON escapes C0 controls; DEL and the C1 controls (UTF-8 0xC2 0x80-0x9F) it writes as
  // they are, which a terminal may obey. Those bytes occur only inside strings: escaped there,
  // the document says the same.
  const std::string_view raw(buffer.GetString(), buffer.GetSize());
  std::string out;
  out.reserve(raw.size() + 1);
  char hex[8];
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    const auto next = i + 1 < raw.size() ? static_cast<unsigned char>(raw[i + 1]) : 0;
    if (c == 0x7F) {
      out += "\\u007F";
    } else if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {
      std::snprintf(hex, sizeof hex, "\\u00%02X", next);
      out += hex;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\n";
}

void printDocument(Format format, const rapidjson::Value& value) {
  std::cout << (format == Format::kYaml ? jsonToYaml(value) : prettyJson(value));
}

}  // namespace sluice::cli::ctl
