// JSON bodies of the REST API, and the one mapping of engine errors to HTTP status codes.
#pragma once

#include <string>
#include <vector>

#include "core/engine/engine.hpp"
#include "core/model/errors.hpp"
#include "core/plugins/plugin_registry.hpp"
#include "core/runtime/flow_runtime.hpp"

namespace sluice::api {

/// How an endpoint answers an unknown flow id: the seed documents 404 for GETs and 400 for
/// PUT and DELETE.
enum class NotFoundAs { k404, k400 };

/// The HTTP status of an engine error.
int httpStatus(ErrorKind kind, NotFoundAs not_found);

/// {"error": message, "details": [...]} (details left out when empty).
std::string errorBody(const std::string& message, const std::vector<Problem>& details = {});
/// Malformed JSON: the message and the byte offset.
std::string parseErrorBody(const std::string& message, size_t offset);

std::string statusBody(const FlowStatus& s);
std::string statusMapBody(const std::vector<FlowStatus>& all);
std::string commandBody(Command c, const std::vector<CommandDetail>& details);
std::string createdBody(const std::vector<std::string>& ids);
std::string validateBody(const std::vector<Problem>& problems);
std::string deletedBody(const std::string& id, const Outcome& outcome);

}  // namespace sluice::api
