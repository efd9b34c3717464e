// The routes of the REST API behind the edge: each request is matched to its route, admitted by
// the access control (token, role, lockout), recorded in the audit log when it must be, then
// handed to its handler (flow_routes, admin_routes).
#pragma once

#include <memory>

#include "api/auth/access_control.hpp"
#include "api/http/edge_handler.hpp"

namespace sluice {
class Engine;
}

namespace sluice::api {

struct Observability;
namespace ui {
class ConsoleAssets;
}

/// The handler behind the edge that serves the API from `engine` (which must outlive it).
std::shared_ptr<http::EdgeHandler> makeApiRoutes(Engine& engine,
                                                 std::shared_ptr<auth::AccessControl> access,
                                                 std::shared_ptr<Observability> observability,
                                                 std::shared_ptr<http::EdgeContext> context,
                                                 std::shared_ptr<const ui::ConsoleAssets> console);

}  // namespace sluice::api
