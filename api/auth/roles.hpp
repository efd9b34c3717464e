// The four roles of API tokens. Each one holds every right of the roles before it.
#pragma once

#include <optional>
#include <string_view>

namespace sluice::auth {

enum class Role {
  kViewer = 0,    // every GET
  kOperator = 1,  // PATCH /flows/commands
  kEditor = 2,    // POST/PUT/DELETE of flows, POST /flows/validate
  kAdmin = 3,     // tokens and the audit log
};

inline constexpr std::string_view roleName(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kEditor:
      return "editor";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

inline std::optional<Role> parseRole(std::string_view s) {
  for (Role r : {Role::kViewer, Role::kOperator, Role::kEditor, Role::kAdmin}) {
    if (s == roleName(r)) return r;
  }
  return std::nullopt;
}

/// True when a token of role `held` may do what needs `needed`.
inline constexpr bool permits(Role held, Role needed) {
  return static_cast<int>(held) >= static_cast<int>(needed);
}

}  // namespace sluice::auth
