#include "api/cli/ctl/ctl_output.hpp"

#include <rapidjson/prettywriter.h>

#include <algorithm>
#include <iostream>
#include <stdexcept>

#include "api/cli/ctl/ctl_yaml.hpp"

namespace sluice::cli::ctl {
namespace {

// Characters, not bytes: UTF-8 continuation bytes do not count.
size_t width(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string oneLine(std::string s) {
  for (auto& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

}  // namespace

void Table::print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size(), 0);
  std::vector<std::vector<std::string>> lines;
  lines.push_back(headers_);
  for (const auto& r : rows_) {
    std::vector<std::string> line(headers_.size());
    for (size_t i = 0; i < headers_.size() && i < r.size(); ++i) line[i] = oneLine(r[i]);
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
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

void printDocument(Format format, const rapidjson::Value& value) {
  std::cout << (format == Format::kYaml ? jsonToYaml(value) : prettyJson(value));
}

}  // namespace sluice::cli::ctl
