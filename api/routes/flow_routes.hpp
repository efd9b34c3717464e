// The routes of the REST API: /flows, /flows/status, /flows/commands, /flows/validate, /plugins.
#pragma once

#include <memory>

#include "api/http/edge_handler.hpp"

namespace sluice {
class Engine;
}

namespace sluice::api {

/// The handler behind the edge that serves the API from `engine` (which must outlive it).
std::shared_ptr<http::EdgeHandler> makeFlowRoutes(Engine& engine,
                                                  std::shared_ptr<http::EdgeContext> context);

}  // namespace sluice::api
