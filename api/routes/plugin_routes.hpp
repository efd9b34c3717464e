// GET /plugins, POST /plugins/reload and the `upgrade` command of PATCH /flows/commands:
// plugin versions side by side (docs/plugin-guide.md, "Versions and reload").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api/http/reply.hpp"

namespace sluice {
class Engine;
}

namespace sluice::api {

/// GET /plugins: every loaded (and retired but still used) plugin with its flow types, their
/// versions and the flows on each, the versions of each type newest first, and the refusals.
void listPlugins(Engine& engine, const http::ReplyPtr& r);
/// POST /plugins/reload: rescans the plugin directories on an engine worker and answers what
/// changed.
void reloadPlugins(Engine& engine, const http::ReplyPtr& r);
/// PATCH /flows/commands {"command": "upgrade"}: ids already checked for shape.
void upgradeFlows(Engine& engine, const std::optional<std::vector<std::string>>& ids,
                  const http::ReplyPtr& r);

}  // namespace sluice::api
