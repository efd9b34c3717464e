// What `sluice ctl` prints on stdout: aligned tables for people (kubectl's look: upper-case
// headers, columns three spaces apart), the API's JSON pretty-printed, or the same as YAML.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "api/cli/ctl/ctl_common.hpp"

namespace sluice::cli::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

  /// A row with one cell per header (missing cells print empty; each cell is printed
  /// through printable(): line breaks as spaces, control characters escaped).
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }

  /// The header and the rows, each cell padded to its column's widest (in characters, not
  /// bytes); the last column is not padded.
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

/// `value` as indented JSON (two spaces), ending in a newline.
std::string prettyJson(const rapidjson::Value& value);

/// Writes `value` to stdout as JSON or YAML (not for Format::kTable).
void printDocument(Format format, const rapidjson::Value& value);

}  // namespace sluice::cli::ctl
