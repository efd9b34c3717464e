// Opt-in: the flow's config as a RapidJSON document, for plugins that want RapidJSON's DOM.
// Including this header brings in RapidJSON with the plugin's own settings (the SDK defines no
// RAPIDJSON_* macro); the rest of the SDK does not depend on it.
#pragma once

#include <rapidjson/document.h>

#include "sluice/sdk/config.hpp"

namespace sluice::sdk {

/// The config's JSON text parsed by RapidJSON (the engine validated it already).
inline rapidjson::Document toRapidJson(const Config& config) {
  rapidjson::Document doc;
  doc.Parse(config.text().data(), config.text().size());
  return doc;
}

}  // namespace sluice::sdk
