// Helpers for the observability tests of issue 9 (metrics, health, conditional and paged reads,
// a real Prometheus): a server started with chosen options, requests with headers, the
// Prometheus text format read back into samples, child processes that are not sluice.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fakes/security_fixture.hpp"

namespace sluice::test::observe {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// The Prometheus text exposition format, read back

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  std::string line;  // as written
};

/// Parses `name{a="x",b="y"} value` (escapes \\, \", \n in label values); false when malformed.
inline bool parseSampleLine(const std::string& line, Sample* out) {
  Sample s;
  s.line = line;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s.name = line.substr(0, i);
  if (s.name.empty()) return false;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find('=', i);
      if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return false;
      std::string key = line.substr(i, eq - i);
      std::string value;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return false;
      s.labels[key] = value;
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') return false;
  const std::string v = line.substr(i + 1);
  if (v == "+Inf") {
    s.value = std::numeric_limits<double>::infinity();
  } else if (v == "-Inf") {
    s.value = -std::numeric_limits<double>::infinity();
  } else {
    char* end = nullptr;
    s.value = std::strtod(v.c_str(), &end);
    if (end == v.c_str()) return false;
  }
  *out = std::move(s);
  return true;
}

/// A /metrics page: its samples, and its comment lines (# HELP, # TYPE, others).
struct MetricsPage {
  std::vector<Sample> samples;
  std::vector<std::string> comments;
  std::vector<std::string> malformed;

  explicit MetricsPage(const std::string& text) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t e = text.find('\n', pos);
      if (e == std::string::npos) e = text.size();
      std::string line = text.substr(pos, e - pos);
      pos = e + 1;
      if (line.empty()) continue;
      if (line[0] == '#') {
        comments.push_back(line);
        continue;
      }
      Sample s;
      if (parseSampleLine(line, &s)) {
        samples.push_back(std::move(s));
      } else {
        malformed.push_back(line);
      }
    }
  }

  /// The type of a family from its `# TYPE` line; "" when there is none.
  std::string type(const std::string& family) const {
    const std::string prefix = "# TYPE " + family + " ";
    for (const auto& c : comments) {
      if (c.rfind(prefix, 0) == 0) return c.substr(prefix.size());
    }
    return "";
  }
  bool hasHelp(const std::string& family) const {
    const std::string prefix = "# HELP " + family + " ";
    for (const auto& c : comments) {
      if (c.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }

  /// Samples named `name` whose labels include every one of `labels`.
  std::vector<const Sample*> find(const std::string& name,
                                  const std::map<std::string, std::string>& labels = {}) const {
    std::vector<const Sample*> out;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) all = false;
      }
      if (all) out.push_back(&s);
    }
    return out;
  }

  /// The value of the one sample named `name` with exactly `labels`; nullopt when absent.
  std::optional<double> value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }
};

// ---------------------------------------------------------------------------------------------
// Child processes other than sluice (promtool, prometheus)

/// A free TCP port on 127.0.0.1 (bound to port 0 and closed again: another process may take
/// it before the caller does, so callers retry).
inline uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint16_t port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

/// A child process with its stdout and stderr in `log`; SIGKILLed by the destructor.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv_in, const std::filesystem::path& log) {
    // Everything the child needs is made before fork: it only calls async-signal-safe functions.
    std::vector<std::string> args = argv_in;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log_path = log.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      int null = ::open("/dev/null", O_RDONLY);
      if (null >= 0) ::dup2(null, 0);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~ChildProcess() { stop(SIGKILL, 10s); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  /// Whether it still runs (reaps it when it has exited).
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  /// Sends `sig`, waits up to `bound` and SIGKILLs it after that.
  void stop(int sig, std::chrono::milliseconds bound) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    if (!waitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, bound)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------------------------
// The fixture: a fresh directory per test, a server started with the test's options.

class ObserveFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testDir("observe");
    std::filesystem::create_directories(data());
  }

  std::filesystem::path data() const { return dir_ / "data"; }

  /// Starts (or restarts) the server on data() with the test plugins and `extra`.
  void startServer(std::vector<std::string> extra = {}) {
    server_.reset();
    server_ = std::make_unique<ServerProcess>(SLUICE_BINARY, data(), serverArgs(std::move(extra)),
                                              (dir_ / "sluice.log").string());
  }
  uint16_t port() const { return server_->port(); }

  HttpResponse call(const std::string& method, const std::string& path,
                    const std::vector<std::string>& headers = {}, const std::string& body = "") {
    return requestWith(port(), method, path, headers, body, hasBody(method));
  }
  HttpResponse get(const std::string& path, const std::vector<std::string>& headers = {}) {
    return call("GET", path, headers);
  }

  /// POST /flows with `body`; fails the test unless 201.
  void createFlows(const std::string& body) {
    auto r = call("POST", "/flows", {}, body);
    ASSERT_EQ(r.status, 201) << body << ": " << r.body;
  }
  /// PATCH /flows/commands; fails the test unless 200.
  void command(const std::string& cmd, const std::vector<std::string>& ids) {
    std::string body = R"({"command":")" + cmd + R"(","flow_ids":[)";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) body += ',';
      body += '"' + ids[i] + '"';
    }
    body += "]}";
    auto r = call("PATCH", "/flows/commands", {}, body);
    ASSERT_EQ(r.status, 200) << body << ": " << r.body;
  }
  std::string statusOf(const std::string& id) {
    auto r = get("/flows/status/" + id);
    if (r.status != 200) return "http " + std::to_string(r.status);
    return strOf(parseJson(r.body), "status");
  }

  std::filesystem::path dir_;
  std::unique_ptr<ServerProcess> server_;
};

}  // namespace sluice::test::observe
