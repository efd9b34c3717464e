// Semantic comparison of two JSON values for `sluice ctl apply`: member order does not
// matter, numbers compare by value (1.50 equals 1.5, 100 equals 100.0); each difference is
// named by its JSON pointer.
#pragma once

#include <string>
#include <vector>

#include "core/model/json.hpp"

namespace sluice::cli::ctl {

struct JsonChange {
  std::string path;    // JSON pointer ("/config/interval_ms"; "" for the whole value)
  std::string before;  // compact JSON, or "(absent)"
  std::string after;   // compact JSON, or "(absent)"
};

/// True when `a` and `b` are the same JSON value.
bool sameJson(const rapidjson::Value& a, const rapidjson::Value& b);

/// The differences that turn `before` into `after`, depth first (objects: members of
/// `before` in order, then the members only `after` has; arrays: index by index).
std::vector<JsonChange> diffJson(const rapidjson::Value& before, const rapidjson::Value& after);

}  // namespace sluice::cli::ctl
