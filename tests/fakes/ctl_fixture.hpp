// `sluice ctl` against the real server: the CLI as a child process with its own environment
// and stdin (in the foreground, or in the background while the test acts), and a proxy that
// lets a test change the server between the CLI's read and its write.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fakes/http_test_server.hpp"
#include "fakes/security_fixture.hpp"

namespace sluice::test {

/// Environment changes for a child: a value sets the variable, nullopt removes it.
using EnvChanges = std::map<std::string, std::optional<std::string>>;

/// `SLUICE_BINARY args...` as a child process. The variables that steer `sluice ctl`
/// (SLUICE_URL, SLUICE_TOKEN, SLUICE_CACERT, app_url) are removed unless `env` sets them;
/// stdin is `stdin_text`; stdout and stderr go to files in `dir`, readable while it runs.
class CliProcess {
 public:
  CliProcess(const std::vector<std::string>& args, const std::filesystem::path& dir,
             const EnvChanges& env = {}, const std::string& stdin_text = "") {
    static std::atomic<int> counter{0};
    const std::string n = std::to_string(counter++);
    std::filesystem::create_directories(dir);
    out_file_ = dir / ("cli" + n + ".out");
    err_file_ = dir / ("cli" + n + ".err");
    const auto in_file = dir / ("cli" + n + ".in");
    { std::ofstream(in_file, std::ios::binary) << stdin_text; }
    std::vector<std::string> argv_s = {SLUICE_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      for (const char* name : {"SLUICE_URL", "SLUICE_TOKEN", "SLUICE_CACERT", "app_url"}) {
        ::unsetenv(name);
      }
      for (const auto& [name, value] : env) {
        if (value) {
          ::setenv(name.c_str(), value->c_str(), 1);
        } else {
          ::unsetenv(name.c_str());
        }
      }
      int i = ::open(in_file.c_str(), O_RDONLY);
      int o = ::open(out_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (i >= 0) ::dup2(i, 0);
      if (o >= 0) ::dup2(o, 1);
      if (e >= 0) ::dup2(e, 2);
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(SLUICE_BINARY, argv.data());
      ::_exit(127);
    }
  }
  ~CliProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  std::string out() const { return readFile(out_file_); }
  std::string err() const { return readFile(err_file_); }
  pid_t pid() const { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  /// Waits until `cond(stdout, stderr)` holds; false at the deadline or when the process
  /// exited without it holding.
  bool waitForOutput(const std::function<bool(const std::string&, const std::string&)>& cond,
                     std::chrono::milliseconds deadline) {
    return waitFor(
        [&] {
          if (cond(out(), err())) return true;
          return poll() && cond(out(), err());
        },
        deadline);
  }

  /// Waits for the exit; returns the exit code, or -1 when it was killed by a signal or did
  /// not exit in time (it is then killed, and the test fails).
  int wait(std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
    if (!waitFor([&] { return poll(); }, deadline)) {
      ADD_FAILURE() << "sluice did not exit within the deadline; stderr: " << err();
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
      exited_ = true;
      return -1;
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }

 private:
  bool poll() {
    if (!exited_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    return exited_;
  }

  std::filesystem::path out_file_;
  std::filesystem::path err_file_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

/// A run of `sluice` to its end.
struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline CliRun runCli(const std::vector<std::string>& args, const std::filesystem::path& dir,
                     const EnvChanges& env = {}, const std::string& stdin_text = "") {
  CliProcess p(args, dir, env, stdin_text);
  CliRun r;
  r.exit_code = p.wait();
  r.out = p.out();
  r.err = p.err();
  return r;
}

/// Lines of `text`.
inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    out.push_back(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return out;
}

/// True when `text` has exactly `line` as one of its lines.
inline bool hasLine(const std::string& text, const std::string& line) {
  for (const auto& l : lines(text)) {
    if (l == line) return true;
  }
  return false;
}

#define EXPECT_HAS(text, part)                                                                 \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "'" << (part) << "' not in:\n" \
                                                             << (text)
#define EXPECT_LACKS(text, part) \
  EXPECT_EQ(std::string(text).find(part), std::string::npos) << "'" << (part) << "' in:\n" << (text)

/// A proxy on 127.0.0.1 in front of the server at `upstream`: it reads each request, calls
/// `before` with it (which may change the server first), forwards it unchanged but for
/// `Connection: close`, and sends the answer back. One request per connection, served one at
/// a time. It records every request.
class InterposingProxy {
 public:
  explicit InterposingProxy(uint16_t upstream) : upstream_(upstream) {
    listen_fd_ = listenLoopback("InterposingProxy", 16, &port_);
    thread_ = std::thread([this] { loop(); });
  }
  ~InterposingProxy() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  InterposingProxy(const InterposingProxy&) = delete;
  InterposingProxy& operator=(const InterposingProxy&) = delete;

  /// Called on the proxy's thread before each request is forwarded.
  void setBefore(std::function<void(const RecordedRequest&)> f) {
    std::lock_guard lock(mu_);
    before_ = std::move(f);
  }
  /// Called on the proxy's thread with each answer before it is sent back (may change it).
  void setAfter(std::function<void(const RecordedRequest&, HttpResponse&)> f) {
    std::lock_guard lock(mu_);
    after_ = std::move(f);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      serve(fd);
      ::close(fd);
    }
  }

  bool readSome(int fd, std::string& buf) {
    for (int waited = 0; waited < 30'000 && !stop_; waited += 50) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char chunk[16384];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<size_t>(n));
      return true;
    }
    return false;
  }

  void serve(int fd) {
    std::string buf;
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!readSome(fd, buf)) return;
    }
    RecordedRequest req;
    const std::string head = buf.substr(0, head_end);
    const std::string request_line = head.substr(0, head.find("\r\n"));
    const size_t sp1 = request_line.find(' ');
    const size_t sp2 = request_line.rfind(' ');
    req.method = request_line.substr(0, sp1);
    req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    req.version = request_line.substr(sp2 + 1);
    std::string forwarded = request_line + "\r\n";
    for (const auto& [name, value] : headerFields(head)) {
      req.headers.emplace_back(name, value);
      if (name != "connection") forwarded += name + ": " + value + "\r\n";
    }
    forwarded += "Connection: close\r\n\r\n";
    const size_t length = std::stoul(req.header("content-length").value_or("0"));
    while (buf.size() < head_end + 4 + length) {
      if (!readSome(fd, buf)) return;
    }
    req.body = buf.substr(head_end + 4, length);
    forwarded += req.body;
    std::function<void(const RecordedRequest&)> before;
    std::function<void(const RecordedRequest&, HttpResponse&)> after;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
      before = before_;
      after = after_;
    }
    if (before) before(req);
    HttpResponse r = rawRequest(upstream_, forwarded);
    if (after) after(req, r);
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " Proxied\r\n";
    for (const auto& [name, value] : r.headers) {
      if (name != "connection" && name != "content-length") out += name + ": " + value + "\r\n";
    }
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n";
    out += r.body;
    ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  }

  uint16_t upstream_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::function<void(const RecordedRequest&)> before_;                // guarded by mu_
  std::function<void(const RecordedRequest&, HttpResponse&)> after_;  // guarded by mu_
  std::vector<RecordedRequest> requests_;                             // guarded by mu_
};

/// A proxy on 127.0.0.1 in front of the server at `upstream` that passes each connection
/// through byte for byte (event streams included), one thread per connection. A test can
/// answer a connection's first request itself (`setAnswer`), hold back what the server sends
/// on GET /events connections (`holdEvents`), and cut the open GET /events connections.
class StreamingProxy {
 public:
  /// Given a connection's first request: a whole raw HTTP response to send instead of
  /// forwarding (the connection is then closed), or nullopt to forward it.
  using Answer = std::function<std::optional<std::string>(const RecordedRequest&)>;

  explicit StreamingProxy(uint16_t upstream) : upstream_(upstream) {
    listen_fd_ = listenLoopback("StreamingProxy", 16, &port_);
    acceptor_ = std::thread([this] { loop(); });
  }
  ~StreamingProxy() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : connections_) t.join();
    ::close(listen_fd_);
  }
  StreamingProxy(const StreamingProxy&) = delete;
  StreamingProxy& operator=(const StreamingProxy&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void setAnswer(Answer a) {
    std::lock_guard lock(mu_);
    answer_ = std::move(a);
  }
  /// While held, what the server sends on GET /events connections is kept, not forwarded.
  void holdEvents(bool hold) { hold_ = hold; }
  /// Bytes of GET /events answers kept back so far (the server subscribed the stream once
  /// it sent its first ones).
  size_t heldBytes() const { return held_bytes_; }
  /// Closes the GET /events connections open now (as a network drop would).
  void cutEvents() { ++cut_generation_; }
  /// The first request of each connection, in order.
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) connections_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    relay(fd);
    ::close(fd);
  }

  void relay(int fd) {
    std::string buf;
    char chunk[16384];
    while (buf.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (stop_) return;
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    const std::string head = buf.substr(0, buf.find("\r\n\r\n"));
    const std::string line = head.substr(0, head.find("\r\n"));
    RecordedRequest req;
    req.method = line.substr(0, line.find(' '));
    req.target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
    for (const auto& [name, value] : headerFields(head)) req.headers.emplace_back(name, value);
    const bool events = req.target.rfind("/events", 0) == 0;
    Answer answer;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
      answer = answer_;
    }
    if (auto canned = answer ? answer(req) : std::nullopt) {
      ::send(fd, canned->data(), canned->size(), MSG_NOSIGNAL);
      return;
    }
    const int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(upstream_);
    if (::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(up);
      return;
    }
    ::send(up, buf.data(), buf.size(), MSG_NOSIGNAL);
    const int generation = cut_generation_;
    std::string held;
    while (!stop_ && !(events && cut_generation_ != generation)) {
      if (!held.empty() && !hold_) {
        ::send(fd, held.data(), held.size(), MSG_NOSIGNAL);
        held.clear();
      }
      pollfd p[2] = {{fd, POLLIN, 0}, {up, POLLIN, 0}};
      if (::poll(p, 2, 20) <= 0) continue;
      if (p[0].revents != 0) {
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        ::send(up, chunk, static_cast<size_t>(n), MSG_NOSIGNAL);
      }
      if (p[1].revents != 0) {
        const ssize_t n = ::recv(up, chunk, sizeof chunk, 0);
        if (n <= 0) {
          if (!hold_ && !held.empty()) ::send(fd, held.data(), held.size(), MSG_NOSIGNAL);
          break;
        }
        if (events && hold_) {
          held.append(chunk, static_cast<size_t>(n));
          held_bytes_ += static_cast<size_t>(n);
        } else {
          // Released between the flush above and this read: what was held goes first.
          if (!held.empty()) {
            ::send(fd, held.data(), held.size(), MSG_NOSIGNAL);
            held.clear();
          }
          ::send(fd, chunk, static_cast<size_t>(n), MSG_NOSIGNAL);
        }
      }
    }
    ::close(up);
  }

  uint16_t upstream_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> hold_{false};
  std::atomic<size_t> held_bytes_{0};
  std::atomic<int> cut_generation_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // the acceptor's; joined after it
  mutable std::mutex mu_;
  Answer answer_;                          // guarded by mu_
  std::vector<RecordedRequest> requests_;  // guarded by mu_
};

/// A raw HTTP response with a JSON body, for StreamingProxy::setAnswer.
inline std::string rawJsonResponse(int status, const std::string& body,
                                   const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " Canned\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

/// The real server (ApiFixture: port 0, test plugins, open on loopback) and `sluice ctl`.
class CtlFixture : public ApiFixture {
 protected:
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  /// `sluice ctl args... --server <this server>`.
  CliRun ctl(std::vector<std::string> args, const std::string& stdin_text = "",
             const EnvChanges& env = {}) {
    std::vector<std::string> full = {"ctl"};
    full.insert(full.end(), args.begin(), args.end());
    full.push_back("--server");
    full.push_back(url());
    return runCli(full, dir_ / "cli", env, stdin_text);
  }
  /// `sluice args...` exactly as given.
  CliRun sluice(const std::vector<std::string>& args, const EnvChanges& env = {}) {
    return runCli(args, dir_ / "cli", env);
  }

  /// Writes `text` to `name` under the test's directory; returns its path.
  std::string file(const std::string& name, const std::string& text) {
    const auto p = dir_ / "files" / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  void createFlows(const std::string& array) {
    auto r = post("/flows", array);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  /// The configuration of `id` as the server stores it.
  rapidjson::Document config(const std::string& id) {
    auto r = get("/flows/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return parseJson(r.body);
  }
  bool waitForStatus(const std::string& id, const std::string& status) {
    return waitFor([&] { return statusOf(id) == status; }, std::chrono::seconds(20));
  }
};

}  // namespace sluice::test
