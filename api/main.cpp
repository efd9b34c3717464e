// sluice: the flow engine and its REST service in one binary.
#include <pthread.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "api/auth/auth_gate.hpp"
#include "api/cli/ctl/ctl_command.hpp"
#include "api/cli/migrate_command.hpp"
#include "api/cli/plugin_command.hpp"
#include "api/cli/token_command.hpp"
#include "api/server.hpp"
#include "core/cluster/membership.hpp"
#include "core/engine/engine.hpp"
#include "core/isolation/helper_mode.hpp"
#include "core/isolation/instance.hpp"
#include "core/model/duration.hpp"
#include "core/schedule/file_clock.hpp"
#include "core/store/store_factory.hpp"
#include "sluice/plugin.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

namespace {

// "http://127.0.0.1:5000" or "127.0.0.1:5000" -> host, port.
bool parseListen(std::string text, std::string* host, uint16_t* port) {
  if (auto p = text.find("://"); p != std::string::npos) text = text.substr(p + 3);
  if (auto p = text.find('/'); p != std::string::npos) text = text.substr(0, p);
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty() || h == "localhost") h = h.empty() ? "0.0.0.0" : "127.0.0.1";
  try {
    size_t used = 0;
    int p = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  *host = h;
  return true;
}

// A CLI11 validator for durations written "500ms", "10s", "5m".
struct DurationValidator : CLI::Validator {
  DurationValidator() : CLI::Validator("DURATION") {
    func_ = [](const std::string& text) {
      return sluice::parseDuration(text) ? std::string()
                                         : "'" + text + "' is not a duration (e.g. 500ms, 10s, 5m)";
    };
  }
};

// Raises the soft limit of open descriptors to the hard one, and caps the connections so that
// the engine keeps descriptors of its own (store, plugins, host processes) past the cap.
size_t fitConnections(size_t wanted) {
  constexpr rlim_t kReserve = 512;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return wanted;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= wanted + kReserve) return wanted;
  const size_t fit = lim.rlim_cur > 2 * kReserve ? lim.rlim_cur - kReserve : lim.rlim_cur / 2;
  spdlog::warn("--max-connections {} lowered to {}: the process may open {} descriptors", wanted,
               fit, static_cast<uint64_t>(lim.rlim_cur));
  return fit;
}

// The node's id when --node-id is not given: hostname:port.
std::string defaultNodeId(uint16_t port) {
  char host[256] = {};
  const bool named = ::gethostname(host, sizeof host - 1) == 0 && host[0] != '\0';
  return std::string(named ? host : "node") + ":" + std::to_string(port);
}

// The URL other nodes and clients reach this node at when --advertise-url is not given.
std::string defaultAdvertiseUrl(const std::string& listen_host, uint16_t port, bool tls) {
  std::string host = listen_host;
  if (host == "0.0.0.0" || host == "::" || host.empty()) {
    char name[256] = {};
    host = ::gethostname(name, sizeof name - 1) == 0 ? name : "localhost";
  }
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(tls ? "https" : "http") + "://" + host + ":" + std::to_string(port);
}

std::filesystem::path executableDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : exe.parent_path();
}

// --exec-allow: absolute directories, normalised, joined with commas ("" when none).
sluice::Result<std::string> execAllowList(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string entry = text.substr(start, comma - start);
    start = comma + 1;
    if (entry.empty()) continue;
    const std::filesystem::path p(entry);
    if (!p.is_absolute()) {
      return sluice::Error{
          sluice::ErrorKind::kInvalid, "'" + entry + "' is not an absolute directory", {}};
    }
    std::string normal = p.lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    if (!out.empty()) out += ',';
    out += normal;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // This binary also serves as a flow's host process and as the plugin scanner.
  if (auto rc = sluice::runHelperMode(argc, argv)) return *rc;
  CLI::App app{"Sluice: a plugin-based flow orchestration engine with a REST API"};
  std::string listen;
  std::string data_dir = "sluice-data";
  std::string store_url;
  std::string files_root;
  std::vector<std::string> plugin_dirs;
  int threads = 0;
  size_t workers = 8;
  int worker_nice = 0;
  size_t max_body = 16 * 1024 * 1024;
  size_t max_header = 64 * 1024;
  size_t max_connections = 10'000;
  std::string header_timeout = "10s";
  std::string plugin_scan_timeout = "10s";
  std::string idle_timeout = "60s";
  std::string log_level = "info";
  std::string auth_flag;
  std::string tls_cert;
  std::string tls_key;
  unsigned audit_retention_days = 90;
  size_t auth_max_failures = 20;
  std::string auth_lockout = "30s";
  size_t metrics_flow_limit = 1000;
  uint64_t events_buffer = 10'000;
  std::string events_heartbeat = "15s";
  std::string node_id;
  std::string advertise_url;
  std::string lease_ttl = "10s";
  std::string schedule_clock;
  std::string exec_allow;
  uint64_t flow_log_bytes = 1 << 20;
  std::string ui_dir;
  bool version = false;
  app.add_option("--listen", listen,
                 "HOST:PORT to listen on (default: host:port of $app_url, else 127.0.0.1:5000)");
  app.add_option("--data-dir", data_dir, "directory of the database (default ./sluice-data)");
  app.add_option("--store", store_url,
                 "where flows, tokens and the audit log are kept: sqlite:DIR, or "
                 "postgresql://user@host:port/db for a cluster (default: SQLite in --data-dir)")
      ->envname("SLUICE_STORE");
  app.add_option("--files-root", files_root,
                 "the only directory tree flows may read or write (default <data-dir>/files)");
  app.add_option("--plugin-dir", plugin_dirs,
                 "extra plugin directory (repeatable); <exe dir>/../lib/sluice/plugins is always "
                 "searched");
  app.add_option("--threads", threads, "HTTP I/O threads (default: number of cores, at least 2)")
      ->check(CLI::Range(1, 64));
  app.add_option("--workers", workers, "engine worker threads running plugin code (default 8)")
      ->check(CLI::Range(1, 256));
  app.add_option("--worker-nice", worker_nice,
                 "run plugin code this much nicer than the engine's own threads (default 0)")
      ->check(CLI::Range(0, 19));
  app.add_option("--max-body-bytes", max_body, "largest request body accepted (default 16 MiB)")
      ->check(CLI::Range(static_cast<size_t>(1024), static_cast<size_t>(1) << 31));
  app.add_option("--max-header-bytes", max_header,
                 "largest request line and headers accepted, in all (default 64 KiB)")
      ->check(CLI::Range(static_cast<size_t>(1024), static_cast<size_t>(16) << 20));
  app.add_option("--max-connections", max_connections,
                 "open connections served at once; past it new ones get 503 (default 10000)")
      ->check(CLI::Range(static_cast<size_t>(1), static_cast<size_t>(1) << 20));
  app.add_option("--schedule-clock", schedule_clock,
                 "for tests and dry runs: the schedules' clock reads the time from FILE (one RFC "
                 "3339 UTC time, e.g. 2026-03-29T00:59:00Z), re-read every 20 ms, instead of "
                 "the system clock");
  app.add_option("--exec-allow", exec_allow,
                 "comma-separated absolute directories whose executables flows of the bundled "
                 "`exec` type may run (arbitrary command execution: docs/exec.md). Default none: "
                 "the type refuses every configuration")
      ->envname("SLUICE_EXEC_ALLOW");
  app.add_option("--flow-log-bytes", flow_log_bytes,
                 "size at which a flow's log (its work's output, GET /flows/{id}/logs) rotates; "
                 "a flow keeps at most twice this (default 1 MiB)")
      ->check(CLI::Range(static_cast<uint64_t>(4096), static_cast<uint64_t>(1) << 34));
  app.add_option("--ui-dir", ui_dir,
                 "for developing the web console: serve /ui/ from the files of DIR, read on "
                 "each request, instead of the copy compiled into the binary")
      ->check(CLI::ExistingDirectory);
  app.add_option("--plugin-scan-timeout", plugin_scan_timeout,
                 "longest a new or changed plugin file may take to load in the scanner process "
                 "(default 10s); past it the file is refused as hung")
      ->check(DurationValidator());
  app.add_option("--header-timeout", header_timeout,
                 "longest a request's head may take to arrive, and its body may stall (default "
                 "10s); then 408 and the connection is closed")
      ->check(DurationValidator());
  app.add_option("--idle-timeout", idle_timeout,
                 "longest a keep-alive connection may stay idle between requests (default 60s)")
      ->check(DurationValidator());
  app.add_option("--auth", auth_flag,
                 "required: every request needs a token; none: no authentication. Default: "
                 "required as soon as a token exists; with no token, open on a loopback address "
                 "and refused on any other")
      ->check(CLI::IsMember({"required", "none"}));
  app.add_option("--tls-cert", tls_cert, "PEM certificate (chain): serve HTTPS only")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
  app.add_option("--audit-retention-days", audit_retention_days,
                 "days the audit log keeps an entry (default 90; 0 = for ever)")
      ->check(CLI::Range(0U, 36500U));
  app.add_option("--auth-max-failures", auth_max_failures,
                 "failed authentications from one address within 10 s that lock it out "
                 "(default 20; 0 = never)")
      ->check(CLI::Range(static_cast<size_t>(0), static_cast<size_t>(1'000'000)));
  app.add_option("--auth-lockout", auth_lockout,
                 "how long a locked-out address gets 429 (default 30s)")
      ->check(DurationValidator());
  app.add_option("--metrics-flow-limit", metrics_flow_limit,
                 "flows up to which GET /metrics shows every flow's plugin counters and gauges; "
                 "past it only flows selected with ?flow_id= (default 1000)")
      ->check(CLI::Range(static_cast<size_t>(0), static_cast<size_t>(1'000'000)));
  app.add_option("--events-buffer", events_buffer,
                 "events a GET /events subscriber may fall behind, while its socket takes "
                 "nothing for a second, before it is dropped (default 10000; it may reconnect "
                 "with Last-Event-ID)")
      ->check(CLI::Range(static_cast<uint64_t>(1), static_cast<uint64_t>(60'000)));
  app.add_option("--events-heartbeat", events_heartbeat,
                 "how often an idle GET /events stream gets a heartbeat comment (default 15s)")
      ->check(DurationValidator());
  app.add_option("--node-id", node_id, "this node's id in its cluster (default hostname:port)");
  app.add_option("--advertise-url", advertise_url,
                 "the URL other nodes and clients reach this node at (default from --listen)");
  app.add_option("--lease-ttl", lease_ttl,
                 "the node's lease in its cluster; renewed every third of it, and the node "
                 "fences itself after half of it without a renewal (default 10s)")
      ->check(DurationValidator());
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_flag("--version", version, "print the version and exit");
  auto token_command = sluice::cli::addTokenCommand(app, &data_dir, &store_url);
  auto migrate_command = sluice::cli::addMigrateCommand(app);
  auto plugin_command = sluice::cli::addPluginCommand(app);
  auto ctl_command = sluice::cli::addCtlCommand(app);
  // Usage errors exit with 2 (CLI11's own codes are 100 and up); help exits with 0.
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the error
    return 2;
  }
  if (int rc = ctl_command(); rc >= 0) return rc;
  if (int rc = token_command(); rc >= 0) return rc;
  if (int rc = migrate_command(); rc >= 0) return rc;
  if (int rc = plugin_command(); rc >= 0) return rc;

  if (version) {
    std::cout << "sluice " << SLUICE_VERSION << " (plugin ABI " << SLUICE_ABI_MAJOR << "."
              << SLUICE_ABI_MINOR << ")\n";
    return 0;
  }
  // Logs go to stderr; stdout carries only the "listening on" line scripts wait for.
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  sluice::ServerOptions server_options;
  if (listen.empty()) {
    const char* url = std::getenv("app_url");
    listen = url != nullptr && *url != '\0' ? url : "127.0.0.1:5000";
  }
  if (!parseListen(listen, &server_options.host, &server_options.port)) {
    std::cerr << "sluice: cannot parse listen address '" << listen << "' (expected HOST:PORT)\n";
    return 2;
  }
  server_options.threads =
      threads > 0 ? threads : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  server_options.max_body_bytes = max_body;
  server_options.max_header_bytes = max_header;
  server_options.max_connections = fitConnections(max_connections);
  server_options.header_timeout = *sluice::parseDuration(header_timeout);
  server_options.idle_timeout = *sluice::parseDuration(idle_timeout);
  server_options.tls_cert = tls_cert;
  server_options.console_dir = ui_dir;
  server_options.tls_key = tls_key;
  if (tls_cert.empty() != tls_key.empty()) {
    std::cerr << "sluice: --tls-cert and --tls-key go together\n";
    return 2;
  }
  if (!tls_cert.empty()) {
    // Before the engine starts any flow: a bad pair stops here, with nothing started.
    if (auto why = sluice::checkTlsFiles(tls_cert, tls_key); !why.empty()) {
      std::cerr << "sluice: cannot use the TLS certificate " << tls_cert << " and key " << tls_key
                << ": " << why << "\n";
      return 1;
    }
  }
  if (sluice::parseDuration(auth_lockout)->count() <= 0) {
    std::cerr << "sluice: --auth-lockout must be longer than 0 (use --auth-max-failures 0 to "
                 "turn the lockout off)\n";
    return 2;
  }
  if (sluice::parseDuration(lease_ttl)->count() < 100) {
    std::cerr << "sluice: --lease-ttl must be at least 100ms\n";
    return 2;
  }
  if (sluice::parseDuration(events_heartbeat)->count() <= 0) {
    std::cerr << "sluice: --events-heartbeat must be longer than 0\n";
    return 2;
  }
  server_options.observe.metrics_flow_limit = metrics_flow_limit;
  server_options.observe.events_max_lag = events_buffer;
  server_options.observe.events_heartbeat = *sluice::parseDuration(events_heartbeat);
  std::atomic<const sluice::cluster::Membership*> membership_ptr{nullptr};
  server_options.observe.membership = [&membership_ptr] { return membership_ptr.load(); };
  server_options.access.audit_retention = std::chrono::hours(24 * audit_retention_days);
  server_options.access.limits.max_failures = auth_max_failures;
  server_options.access.limits.lockout = *sluice::parseDuration(auth_lockout);

  // Signals are taken by sigwait in this thread only; every thread started below inherits the
  // mask.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // reloads the plugins
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  sluice::EngineOptions engine_options;
  engine_options.data_dir = data_dir;
  engine_options.store_url = store_url;
  engine_options.workers = workers;
  engine_options.worker_nice = worker_nice;
  engine_options.files_root = files_root;
  engine_options.scan_timeout_ms = static_cast<uint32_t>(
      std::clamp<int64_t>(sluice::parseDuration(plugin_scan_timeout)->count(), 1, 600'000));
  engine_options.plugin_dirs.push_back(executableDir() / ".." / "lib" / "sluice" / "plugins");
  for (const auto& d : plugin_dirs) engine_options.plugin_dirs.emplace_back(d);
  engine_options.flow_log_bytes = flow_log_bytes;
  if (auto allowed = execAllowList(exec_allow); !allowed.ok()) {
    std::cerr << "sluice: --exec-allow: " << allowed.error().message << "\n";
    return 2;
  } else if (allowed.value().empty()) {
    ::unsetenv("SLUICE_EXEC_ALLOW");  // the exec plugin (and its host processes) read it
  } else {
    ::setenv("SLUICE_EXEC_ALLOW", allowed.value().c_str(), 1);
    spdlog::warn("the exec flow type may run executables under {}", allowed.value());
  }
  if (!schedule_clock.empty()) {
    engine_options.schedule_clock = sluice::schedule::fileClock(schedule_clock);
    engine_options.schedule_poll = std::chrono::milliseconds(20);
  }

  // Whether and how requests are authenticated, decided before any flow starts.
  {
    auto store = sluice::openStore(store_url, data_dir);
    if (!store.ok()) {
      spdlog::critical("cannot open the store: {}", store.error().message);
      std::cerr << "sluice: " << store.error().message << "\n";
      return store.error().kind == sluice::ErrorKind::kInvalid ? 2 : 1;
    }
    sluice::auth::TokenBook tokens(*store.value());
    auto mode = sluice::auth::resolveAuthMode(auth_flag, server_options.host, tokens.anyIssued());
    if (!mode.ok()) {
      spdlog::critical("{}", mode.error().message);
      std::cerr << "sluice: " << mode.error().message << "\n";
      return 2;
    }
    server_options.access.mode = mode.value();
    switch (mode.value()) {
      case sluice::auth::AuthMode::kAuto:
        spdlog::warn(
            "no API token exists: serving every request without authentication on the "
            "loopback address {} until the first token is created "
            "(sluice token create --name NAME --role admin)",
            server_options.host);
        break;
      case sluice::auth::AuthMode::kNone:
        spdlog::warn("--auth none: serving every request without authentication on {}",
                     server_options.host);
        break;
      case sluice::auth::AuthMode::kRequired:
        if (!tokens.anyLive()) {
          spdlog::warn(
              "--auth required and no token exists: every request gets 401 until one "
              "is created with 'sluice token create'");
        }
        break;
    }
  }

  auto engine = sluice::Engine::open(engine_options);
  if (!engine.ok()) {
    spdlog::critical("cannot start the engine: {}", engine.error().message);
    return 1;
  }
  std::unique_ptr<sluice::Server> server;
  try {
    server = std::make_unique<sluice::Server>(*engine.value(), server_options);
  } catch (const std::exception& e) {
    spdlog::critical("cannot serve on {}:{}: {}", server_options.host, server_options.port,
                     e.what());
    std::cerr << "sluice: " << e.what() << "\n";
    engine.value()->shutdown();
    return 1;
  }
  spdlog::info("sluice {} listening on {}://{}:{} (store {})", SLUICE_VERSION,
               server->tls() ? "https" : "http", server_options.host, server->port(),
               sluice::describeStore(store_url, data_dir));
  // Membership of the cluster on the store (one node on SQLite): the node id and URL default
  // to the port actually bound.
  sluice::cluster::MembershipOptions member;
  member.node_id = node_id.empty() ? defaultNodeId(server->port()) : node_id;
  member.url = advertise_url.empty()
                   ? defaultAdvertiseUrl(server_options.host, server->port(), server->tls())
                   : advertise_url;
  member.ttl = *sluice::parseDuration(lease_ttl);
  sluice::Engine* eng = engine.value().get();
  sluice::cluster::MembershipCallbacks on_lease;
  on_lease.fence = [eng](const std::string& why) { eng->fence(why); };
  on_lease.unfence = [eng] { eng->unfence(); };
  on_lease.renewed = [eng](std::chrono::steady_clock::time_point until) {
    eng->leaseRenewed(until);
  };
  auto membership = std::make_unique<sluice::cluster::Membership>(engine.value()->store(), member,
                                                                  std::move(on_lease));
  if (!membership->renewNow()) spdlog::warn("cluster: the first lease renewal failed");
  membership_ptr = membership.get();
  // On a shared store the flows run where the leader assigns them, from now on.
  sluice::cluster::Membership* m = membership.get();
  eng->joinCluster(member.node_id, member.ttl, [m] { return m->view().leader; });
  spdlog::info("cluster: node {} at {} (lease {} ms)", member.node_id, member.url,
               member.ttl.count());
  // A line scripts can wait for: the port actually bound (useful with port 0).
  std::cout << "listening on " << server_options.host << ":" << server->port() << std::endl;

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    spdlog::info("SIGHUP received: reloading the plugins");
    eng->reloadPluginsAsync([](const sluice::ReloadReport&) {});
  }
  spdlog::info("signal {} received: draining requests, stopping flows", sig);
  server->drainAndStop(30'000);
  server.reset();
  // The flows stop while the lease still holds: no other node claims them before they did.
  bool clean = engine.value()->shutdown();
  // Plugin code that did not stop may still run: the others wait for the lease to lapse.
  if (!clean && eng->clustered()) membership->stayListed();
  membership_ptr = nullptr;
  membership.reset();  // leaves the cluster: the others take the flows over at once
  if (!clean) {
    // Plugin code that never returned still runs on a detached worker: leave without running
    // destructors that it might still use.
    spdlog::warn("exiting with plugin code still running");
    spdlog::shutdown();
    std::_Exit(0);
  }
  engine.value().reset();
  spdlog::info("bye");
  return 0;
}
