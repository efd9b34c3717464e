// The configuration files of `sluice ctl apply` and `validate`: `-f FILE`, `-f DIR` (its
// *.json, *.yaml and *.yml files, sorted by name, not recursive) or `-f -` (stdin). Each file
// holds one configuration object or an array of them (YAML: one per document, or sequences).
#pragma once

#include <string>
#include <vector>

#include "core/model/json.hpp"

namespace sluice::cli::ctl {

struct Configs {
  rapidjson::Document values{rapidjson::kArrayType};  // every element read, in order
  std::vector<std::string> sources;  // where values[i] came from: "a.json", "all.yaml[2]"
  std::vector<std::string> ids;      // values[i]'s flow_id (strict reads only)
};

/// Reads every configuration from `paths`. `strict` (apply) requires each element to be an
/// object with a string `flow_id`, each id once; otherwise (validate) any element is kept
/// for the server to judge. On a problem prints "error: <where>: <what>" on stderr and
/// returns false; nothing has been sent anywhere.
bool readConfigs(const std::vector<std::string>& paths, bool strict, Configs* out);

}  // namespace sluice::cli::ctl
