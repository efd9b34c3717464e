// The command line of `sluice ctl`: every subcommand, option and choice. The completion script
// is generated from this tree (ctl_completion.cpp).
#include "api/cli/ctl/ctl_command.hpp"

#include <iostream>
#include <memory>

#include "api/cli/ctl/ctl_commands.hpp"
#include "core/model/duration.hpp"

namespace sluice::cli {
namespace {

using namespace ctl;

struct CtlState {
  Globals globals;
  GetArgs get;
  AuditArgs audit;
  ApplyArgs apply;
  FlowCommandArgs command;
  DeleteArgs remove;
  ValidateArgs validate;
  WatchArgs watch;
  std::string shell;
  // Set by the callback of the subcommand that was chosen. It captures the state by plain
  // pointer: the function addCtlCommand returns owns the state.
  std::function<int()> action;
};

struct DurationCheck : CLI::Validator {
  DurationCheck() : CLI::Validator("DURATION") {
    func_ = [](const std::string& text) {
      auto d = parseDuration(text);
      return d && d->count() > 0 ? std::string()
                                 : "'" + text + "' is not a duration (e.g. 500ms, 10s, 5m)";
    };
  }
};

const std::vector<std::string> kFormats = {"table", "json", "yaml"};

void addGlobals(CLI::App* ctl, Globals& g) {
  ctl->add_option("--server", g.server,
                  "the server's URL, http:// or https:// (default: $app_url, else "
                  "http://127.0.0.1:5000)")
      ->envname("SLUICE_URL");
  ctl->add_option("--token", g.token, "the API token (prefer SLUICE_TOKEN: argv is visible)")
      ->envname("SLUICE_TOKEN");
  ctl->add_option("--cacert", g.cacert,
                  "PEM file of the certificate authorities to trust for https (a self-signed "
                  "server's certificate)")
      ->envname("SLUICE_CACERT")
      ->check(CLI::ExistingFile);
  ctl->add_option("--request-timeout", g.request_timeout,
                  "longest one request may take (default 60s; watch streams have none)")
      ->check(DurationCheck());
}

void addGet(CLI::App* ctl, const std::shared_ptr<CtlState>& s) {
  auto* get = ctl->add_subcommand("get", "show flows, their status, plugins or cluster nodes");
  get->fallthrough();
  get->require_subcommand(1);
  get->add_option("-o,--output", s->get.output, "table (default), json or yaml")
      ->check(CLI::IsMember(kFormats));
  struct Kind {
    const char* name;
    const char* help;
    int id;  // 0 none, 1 optional, 2 required
  };
  for (const Kind& k : {Kind{"flows", "every flow: id, name, type, version, desired, status", 0},
                        Kind{"flow", "one flow's configuration", 2},
                        Kind{"status", "the status of every flow, or of one", 1},
                        Kind{"plugins", "the loaded plugins and the refused files", 0},
                        Kind{"nodes", "the nodes of the cluster (GET /cluster)", 0}}) {
    auto* sub = get->add_subcommand(k.name, k.help);
    sub->fallthrough();
    if (k.id > 0) {
      auto* id = sub->add_option("id", s->get.id, "the flow's id");
      if (k.id == 2) id->required();
    }
    const std::string kind = k.name;
    sub->callback([s, kind] {
      s->get.kind = kind;
      s->action = [p = s.get()] { return runGet(p->globals, p->get); };
    });
  }
}

// -f/--filename of apply and validate.
void addFilesOption(CLI::App* sub, std::vector<std::string>& files) {
  sub->add_option("-f,--filename", files,
                  "a JSON or YAML file, a directory of them, or - for stdin (repeatable)")
      ->required()
      ->allow_extra_args(false);
}

void addApplyAndValidate(CLI::App* ctl, const std::shared_ptr<CtlState>& s) {
  auto* apply = ctl->add_subcommand(
      "apply", "make the server's flows match configuration files (create, update, prune)");
  apply->fallthrough();
  addFilesOption(apply, s->apply.files);
  apply->add_flag("--prune", s->apply.prune, "also delete the flows the files do not name");
  apply->add_flag("--dry-run", s->apply.dry_run,
                  "print what would change and validate it; change nothing");
  apply->callback([s] { s->action = [p = s.get()] { return runApply(p->globals, p->apply); }; });

  auto* validate = ctl->add_subcommand(
      "validate", "check configuration files with the server (POST /flows/validate)");
  validate->fallthrough();
  addFilesOption(validate, s->validate.files);
  validate->add_flag("--existing-ok", s->validate.existing_ok,
                     "an id that exists on the server is no problem (apply would update it)");
  validate->callback(
      [s] { s->action = [p = s.get()] { return runValidate(p->globals, p->validate); }; });
}

void addCommands(CLI::App* ctl, const std::shared_ptr<CtlState>& s) {
  struct Cmd {
    const char* name;
    const char* help;
  };
  for (const Cmd& c : {Cmd{"start", "start flows (stopped, failed, completed or paused ones)"},
                       Cmd{"stop", "stop flows (soft; --hard cancels at once)"},
                       Cmd{"pause", "pause running flows"}, Cmd{"resume", "resume paused flows"}}) {
    auto* sub = ctl->add_subcommand(c.name, c.help);
    sub->fallthrough();
    sub->add_option("ids", s->command.ids, "the flows' ids");
    sub->add_flag("--all", s->command.all, "every flow");
    if (std::string(c.name) == "stop") {
      sub->add_flag("--hard", s->command.hard, "cancel the flows' work at once (stop type 1)");
    }
    const std::string name = c.name;
    sub->callback([s, name] {
      s->command.command = name;
      s->action = [p = s.get()] { return runFlowCommand(p->globals, p->command); };
    });
  }
  auto* del = ctl->add_subcommand("delete", "delete flows (stopped first when they run)");
  del->fallthrough();
  del->add_option("ids", s->remove.ids, "the flows' ids")->required();
  del->add_flag("--force", s->remove.force,
                "delete even when other flows list it in runtime.after (?force=true)");
  del->callback([s] { s->action = [p = s.get()] { return runDelete(p->globals, p->remove); }; });
}

void addWatchAndAudit(CLI::App* ctl, const std::shared_ptr<CtlState>& s) {
  auto* watch = ctl->add_subcommand(
      "watch", "print the flows' transitions as they happen (GET /events), until Ctrl-C");
  watch->fallthrough();
  watch->add_option("ids", s->watch.ids, "only these flows (default: every flow)");
  watch->add_option("--timeout", s->watch.timeout, "stop after this long (e.g. 30s, 5m)")
      ->check(DurationCheck());
  watch->add_option("--count", s->watch.count, "stop after this many lines")
      ->check(CLI::Range(static_cast<uint64_t>(1), static_cast<uint64_t>(1) << 62));
  watch->callback([s] { s->action = [p = s.get()] { return runWatch(p->globals, p->watch); }; });

  auto* audit = ctl->add_subcommand("audit", "read the audit log (admin tokens only)");
  audit->fallthrough();
  audit->add_option("--after", s->audit.after, "only entries after this sequence number");
  audit->add_option("--limit", s->audit.limit, "entries per request, 1-1000 (default 100)")
      ->check(CLI::Range(1U, 1000U));
  audit->add_option("-o,--output", s->audit.output, "table (default), json or yaml")
      ->check(CLI::IsMember(kFormats));
  audit->callback([s] { s->action = [p = s.get()] { return runAudit(p->globals, p->audit); }; });
}

void addCompletion(CLI::App* parent, CLI::App& root, const std::shared_ptr<CtlState>& s) {
  auto* completion = parent->add_subcommand(
      "completion", "print a shell completion script: source <(sluice completion bash)");
  completion->add_option("shell", s->shell, "the shell (bash)")
      ->required()
      ->check(CLI::IsMember({"bash"}));
  completion->callback([s, &root] {
    s->action = [&root] {
      std::cout << bashCompletion(root, "sluice");
      return kExitOk;
    };
  });
}

}  // namespace

std::function<int()> addCtlCommand(CLI::App& app) {
  auto s = std::make_shared<CtlState>();
  auto* ctl = app.add_subcommand(
      "ctl", "a kubectl-like client of a running server's REST API (docs/cli.md)");
  ctl->require_subcommand(1);
  addGlobals(ctl, s->globals);
  addGet(ctl, s);
  addApplyAndValidate(ctl, s);
  addCommands(ctl, s);
  addWatchAndAudit(ctl, s);
  addCompletion(ctl, app, s);
  addCompletion(&app, app, s);
  return [s]() -> int {
    if (!s->action) return -1;
    // Every subcommand but `completion` talks to the server: only over HTTP(S).
    if (s->shell.empty()) {
      if (const std::string url = resolveServer(s->globals.server); !hasHttpScheme(url)) {
        std::cerr << "error: the server URL " << url
                  << " is not http:// or https:// (from --server, SLUICE_URL or app_url)\n";
        return kExitUsage;
      }
    }
    try {
      return s->action();
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return kExitFailed;
    }
  };
}

}  // namespace sluice::cli
