#include "core/store/access.hpp"

#include "core/model/json.hpp"

namespace sluice {

std::string auditIdsToJson(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    json::appendString(out, ids[i]);
  }
  return out + "]";
}

std::vector<std::string> auditIdsFromJson(const std::string& text) {
  std::vector<std::string> ids;
  rapidjson::Document doc;
  if (!json::parse(text, doc, nullptr) || !doc.IsArray()) return ids;
  for (const auto& v : doc.GetArray()) {
    if (v.IsString()) ids.emplace_back(v.GetString(), v.GetStringLength());
  }
  return ids;
}

}  // namespace sluice
