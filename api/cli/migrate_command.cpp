#include "api/cli/migrate_command.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

#include "core/store/store_factory.hpp"

namespace sluice::cli {
namespace {

struct MigrateArgs {
  std::string from;
  std::string to;
};

int migrate(const MigrateArgs& a) {
  if (a.from == a.to) {
    std::cerr << "sluice migrate: --from and --to name the same store\n";
    return 2;
  }
  // The source must exist: opening a SQLite path that does not would create an empty one.
  if (!isSharedStore(a.from)) {
    const std::string file = describeStore(a.from, "sluice-data").substr(7);  // after "sqlite:"
    if (a.from.rfind("sqlite:", 0) != 0 || !std::filesystem::exists(file)) {
      std::cerr << "sluice migrate: --from '" << a.from
                << "' is not an existing store (sqlite:DIR with DIR/sluice.db, or "
                   "postgresql://...)\n";
      return 2;
    }
  }
  auto from = openStore(a.from, "sluice-data");
  if (!from.ok()) {
    std::cerr << "sluice migrate: cannot open --from: " << from.error().message << "\n";
    return from.error().kind == ErrorKind::kInvalid ? 2 : 1;
  }
  auto to = openStore(a.to, "sluice-data");
  if (!to.ok()) {
    std::cerr << "sluice migrate: cannot open --to: " << to.error().message << "\n";
    return to.error().kind == ErrorKind::kInvalid ? 2 : 1;
  }
  auto snapshot = from.value()->exportAll();
  if (!snapshot.ok()) {
    std::cerr << "sluice migrate: cannot read --from: " << snapshot.error().message << "\n";
    return 1;
  }
  auto done = to.value()->importAll(snapshot.value());
  if (!done.ok()) {
    std::cerr << "sluice migrate: nothing was written: " << done.error().message << "\n";
    return 1;
  }
  const auto& s = snapshot.value();
  std::cout << "migrated " << s.flows.size() << " flows, " << s.state.size()
            << " plugin state keys, " << s.tokens.size() << " tokens, " << s.audit.size()
            << " audit entries and " << s.sequences.size() << " sequences from "
            << describeStore(a.from, "sluice-data") << " to " << describeStore(a.to, "sluice-data")
            << "\n";
  return 0;
}

}  // namespace

std::function<int()> addMigrateCommand(CLI::App& app) {
  auto args = std::make_shared<MigrateArgs>();
  auto* m = app.add_subcommand(
      "migrate",
      "copy a whole store into an empty one (stop the servers using --from first), e.g. "
      "sluice migrate --from sqlite:DIR --to postgresql://user@host/db");
  m->add_option("--from", args->from, "the store to read: sqlite:DIR or postgresql://...")
      ->required();
  m->add_option("--to", args->to, "the empty store to write: sqlite:DIR or postgresql://...")
      ->required();
  return [m, args]() -> int { return m->parsed() ? migrate(*args) : -1; };
}

}  // namespace sluice::cli
