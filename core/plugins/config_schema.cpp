#include "core/plugins/config_schema.hpp"

#include <rapidjson/schema.h>

namespace sluice {

struct ConfigSchema::Impl {
  rapidjson::Document doc;
  std::unique_ptr<rapidjson::SchemaDocument> schema;
};

ConfigSchema::ConfigSchema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConfigSchema::~ConfigSchema() = default;

std::shared_ptr<const ConfigSchema> ConfigSchema::compile(const std::string& schema_text,
                                                          std::string* error) {
  auto impl = std::make_unique<Impl>();
  json::ParseError perr;
  if (!json::parse(schema_text, impl->doc, &perr)) {
    *error = "config_schema is not valid JSON: " + perr.message;
    return nullptr;
  }
  if (!impl->doc.IsObject()) {
    *error = "config_schema must be a JSON object";
    return nullptr;
  }
  try {
    impl->schema = std::make_unique<rapidjson::SchemaDocument>(impl->doc);
  } catch (const std::exception& e) {
    *error = std::string("config_schema cannot be compiled: ") + e.what();
    return nullptr;
  }
  return std::shared_ptr<const ConfigSchema>(new ConfigSchema(std::move(impl)));
}

std::vector<Problem> ConfigSchema::check(const rapidjson::Value& config) const {
  rapidjson::SchemaValidator validator(*impl_->schema);
  if (config.Accept(validator)) return {};
  rapidjson::StringBuffer doc_ptr;
  rapidjson::StringBuffer schema_ptr;
  validator.GetInvalidDocumentPointer().StringifyUriFragment(doc_ptr);
  validator.GetInvalidSchemaPointer().StringifyUriFragment(schema_ptr);
  // URI fragments start with '#'; the path wants a plain JSON pointer.
  std::string path(doc_ptr.GetString(), doc_ptr.GetSize());
  if (!path.empty() && path[0] == '#') path.erase(0, 1);
  std::string where(schema_ptr.GetString(), schema_ptr.GetSize());
  std::string message = "config" + (path.empty() ? std::string() : " member " + path) +
                        " does not satisfy the flow type's schema: keyword '" +
                        validator.GetInvalidSchemaKeyword() + "' at schema " + where;
  return {Problem{std::nullopt, "", "/config" + path, message}};
}

}  // namespace sluice
