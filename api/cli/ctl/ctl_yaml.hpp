// YAML <-> JSON for `sluice ctl`: configuration files written in YAML are read into the same
// JSON the API takes, and `-o yaml` writes the API's JSON as YAML (yaml-cpp).
//
// Scalars follow the YAML 1.2 core schema both ways: a plain (unquoted) scalar is null
// (`null`, `~`, nothing), a boolean (`true`, `false`), an integer (`12`, `-3`, `0x1f`, `0o17`)
// or a float (`1.5`, `1e3`), and anything else is a string; a quoted scalar is always a string.
// When written, a string that would read back as another type is double-quoted, by the 1.2
// core schema or by YAML 1.1 (PyYAML): `yes`, `on`, `off`, `~`, `1:20`, `2026-01-01`, ...
// Empty documents (a stream ending in `---`) are skipped when read.
#pragma once

#include <string>

#include "core/model/json.hpp"

namespace sluice::cli::ctl {

/// Appends every non-empty document of the YAML `text` to the JSON array `out` (its
/// allocator is used; empty or null documents are skipped). False with *error ("line 3, column 5:
/// ...") when the text is not YAML or holds something JSON cannot (a mapping with a non-scalar or
/// repeated key, .inf, an unknown tag).
bool yamlToJson(const std::string& text, rapidjson::Document& out, std::string* error);

/// `value` as a YAML document (block style), ending in a newline.
std::string jsonToYaml(const rapidjson::Value& value);

}  // namespace sluice::cli::ctl
