#include "api/cli/token_command.hpp"

#include <iostream>
#include <memory>

#include "api/auth/audit_trail.hpp"
#include "api/auth/token_book.hpp"
#include "api/routes/admin_routes.hpp"
#include "core/model/duration.hpp"
#include "core/store/store_factory.hpp"

namespace sluice::cli {
namespace {

struct TokenArgs {
  std::string data_dir = "sluice-data";
  std::string store;
  std::string name;
  std::string role;
  std::string expires;
  bool json = false;
};

std::unique_ptr<Store> open(const TokenArgs& a) {
  auto store = openStore(a.store, a.data_dir);
  if (!store.ok()) {
    std::cerr << "sluice token: " << store.error().message << "\n";
    return nullptr;
  }
  return std::move(store.value());
}

// The audit entry of a CLI change, stored in the change's transaction: the CLI acts with an
// admin's rights from the machine itself.
AuditPtr cliAudit(const std::string& what, const std::string& detail, int status) {
  auto audit = auth::AuditTrail::begin("cli", "admin", "local", "CLI", what);
  audit->entry.detail = detail;
  audit->entry.status = status;
  return audit;
}

int create(const TokenArgs& a) {
  auto role = auth::parseRole(a.role);
  if (!role) {
    std::cerr << "sluice token create: --role must be viewer, operator, editor or admin\n";
    return 2;
  }
  std::optional<std::chrono::milliseconds> ttl;
  if (!a.expires.empty()) {
    ttl = parseDuration(a.expires);
    if (!ttl || ttl->count() <= 0) {
      std::cerr << "sluice token create: --expires '" << a.expires
                << "' is not a positive duration (e.g. 12h, 30d)\n";
      return 2;
    }
  }
  auto store = open(a);
  if (!store) return 1;
  auth::TokenBook book(*store);
  const int64_t now = auth::nowMs();
  auto audit = cliAudit("token create", "token " + a.name + " (" + a.role + ")", 201);
  auto issued = book.issue(a.name, *role, ttl, now, audit.get());
  if (!issued.ok()) {
    std::cerr << "sluice token create: " << issued.error().message << "\n";
    return 1;
  }
  if (a.json) {
    std::cout << api::tokenJson(issued.value().record, now, issued.value().secret) << "\n";
  } else {
    std::cout << issued.value().secret << "\n";
    std::cerr << "token '" << a.name << "' (" << a.role << ") created"
              << (ttl ? ", expires " + api::isoTime(*issued.value().record.expires_ms) : "")
              << ". It is shown only now: keep it somewhere safe.\n";
  }
  return 0;
}

int list(const TokenArgs& a) {
  auto store = open(a);
  if (!store) return 1;
  auth::TokenBook book(*store);
  auto tokens = book.live();
  if (!tokens.ok()) {
    std::cerr << "sluice token list: " << tokens.error().message << "\n";
    return 1;
  }
  const int64_t now = auth::nowMs();
  if (a.json) {
    std::cout << "[";
    for (size_t i = 0; i < tokens.value().size(); ++i) {
      std::cout << (i > 0 ? "," : "") << api::tokenJson(tokens.value()[i], now);
    }
    std::cout << "]\n";
    return 0;
  }
  std::cout << "NAME\tROLE\tCREATED\tEXPIRES\n";
  for (const auto& t : tokens.value()) {
    std::string expires = t.expires_ms ? api::isoTime(*t.expires_ms) : "never";
    if (t.expires_ms && *t.expires_ms <= now) expires += " (expired)";
    std::cout << t.name << "\t" << t.role << "\t" << api::isoTime(t.created_ms) << "\t" << expires
              << "\n";
  }
  return 0;
}

int revoke(const TokenArgs& a) {
  auto store = open(a);
  if (!store) return 1;
  auth::TokenBook book(*store);
  const int64_t now = auth::nowMs();
  auto audit = cliAudit("token revoke", "token " + a.name, 200);
  auto done = book.revoke(a.name, now, audit.get());
  if (!done.ok()) {
    std::cerr << "sluice token revoke: " << done.error().message << "\n";
    return 1;
  }
  std::cerr << "token '" << a.name << "' revoked\n";
  return 0;
}

}  // namespace

std::function<int()> addTokenCommand(CLI::App& app, const std::string* main_data_dir,
                                     const std::string* main_store) {
  auto args = std::make_shared<TokenArgs>();
  auto* token =
      app.add_subcommand("token", "create, list and revoke API tokens (no server needed)");
  token->require_subcommand(1);
  std::vector<CLI::Option*> dir_options;
  std::vector<CLI::Option*> store_options;
  auto data_dir = [&](CLI::App* sub) {
    dir_options.push_back(sub->add_option("--data-dir", args->data_dir,
                                          "directory of the database (default ./sluice-data)"));
    store_options.push_back(sub->add_option(
        "--store", args->store, "sqlite:DIR or postgresql://... (default: SQLite in --data-dir)"));
    sub->add_flag("--json", args->json, "print JSON");
  };
  auto* c = token->add_subcommand("create", "issue a token and print it (shown only once)");
  c->add_option("--name", args->name, "the token's name (letters, digits, . _ -)")->required();
  c->add_option("--role", args->role, "viewer, operator, editor or admin")
      ->required()
      ->check(CLI::IsMember({"viewer", "operator", "editor", "admin"}));
  c->add_option("--expires", args->expires, "lifetime, e.g. 12h or 30d (default: never expires)");
  data_dir(c);
  auto* l = token->add_subcommand("list", "list the tokens that are not revoked (never secrets)");
  data_dir(l);
  auto* r = token->add_subcommand("revoke", "revoke a token: refused from the next request on");
  r->add_option("name", args->name, "the token's name")->required();
  data_dir(r);
  return [token, c, l, r, args, dir_options, store_options, main_data_dir, main_store]() -> int {
    if (!token->parsed()) return -1;
    bool own = false;
    for (auto* o : dir_options) own = own || o->count() > 0;
    // `sluice --data-dir X token list` means X too; the same for --store (or SLUICE_STORE).
    if (!own && main_data_dir != nullptr) args->data_dir = *main_data_dir;
    bool own_store = false;
    for (auto* o : store_options) own_store = own_store || o->count() > 0;
    if (!own_store && main_store != nullptr) args->store = *main_store;
    if (c->parsed()) return create(*args);
    if (l->parsed()) return list(*args);
    if (r->parsed()) return revoke(*args);
    return 2;
  };
}

}  // namespace sluice::cli
