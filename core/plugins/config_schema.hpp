// A flow type's JSON Schema (draft-04) for its `config`, checked with RapidJSON's validator.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/model/errors.hpp"
#include "core/model/json.hpp"

namespace sluice {

class ConfigSchema {
 public:
  /// Compiles `schema_text`; nothing (and a message in *error) when it is not valid JSON.
  static std::shared_ptr<const ConfigSchema> compile(const std::string& schema_text,
                                                     std::string* error);
  ~ConfigSchema();

  /// Problems of `config` against the schema (paths under /config). RapidJSON 1.1.0 reports the
  /// first violation it meets, so at most one problem comes back.
  std::vector<Problem> check(const rapidjson::Value& config) const;

 private:
  struct Impl;
  explicit ConfigSchema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
