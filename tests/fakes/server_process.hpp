// Runs the real `sluice` binary on port 0 for integration tests and reads the port it bound.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sluice::test {

/// Waits for `cond` with a deadline; returns whether it became true.
inline bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

class ServerProcess {
 public:
  /// Starts `binary --listen 127.0.0.1:0 --data-dir data_dir extra...`; waits for its port.
  ServerProcess(const std::string& binary, const std::filesystem::path& data_dir,
                std::vector<std::string> extra = {}, const std::string& log_file = "") {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--data-dir", data_dir.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    std::filesystem::create_directories(data_dir.parent_path());
    start(binary, args, log_file.empty() ? (data_dir.string() + ".log") : log_file);
  }
  /// Starts `binary args...` exactly as given (another --listen, say); waits for its port.
  struct ExactArgs {};
  ServerProcess(ExactArgs, const std::string& binary, const std::vector<std::string>& args,
                const std::string& log_file) {
    start(binary, args, log_file);
  }
  ~ServerProcess() {
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      // It died before the test was done with it: say so, so that a failed request reads as a
      // crash (the sanitizers' report is in the log).
      pid_ = -1;
      if (WIFSIGNALED(status)) {
        std::fprintf(stderr,
                     "[ server   ] sluice died of signal %d before the test ended; see %s\n",
                     WTERMSIG(status), log_.c_str());
      }
    }
    if (pid_ > 0) kill(SIGKILL);
    if (out_ >= 0) ::close(out_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  uint16_t port() const { return port_; }
  /// The "listening on HOST:PORT" line the server printed.
  const std::string& listeningLine() const { return listening_line_; }
  pid_t pid() const { return pid_; }

  /// Sends `sig` and waits for the process to exit; returns its wait status.
  int kill(int sig, std::chrono::milliseconds bound = std::chrono::seconds(60)) {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, sig);
    auto until = std::chrono::steady_clock::now() + bound;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    exit_status_ = status;
    return status;
  }

 private:
  void start(const std::string& binary, std::vector<std::string> args, const std::string& log) {
    log_ = log;
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    args.insert(args.begin(), binary);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (logfd >= 0) ::dup2(logfd, 2);
      ::close(out[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    std::string line;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char c;
      if (::read(out_, &c, 1) != 1) break;
      if (c != '\n') {
        line.push_back(c);
        continue;
      }
      auto pos = line.rfind(':');
      if (line.rfind("listening on ", 0) == 0 && pos != std::string::npos) {
        port_ = static_cast<uint16_t>(std::stoi(line.substr(pos + 1)));
        listening_line_ = line;
        return;
      }
      line.clear();
    }
    kill(SIGKILL);
    throw std::runtime_error("sluice did not report its port; see " + log);
  }

  pid_t pid_ = -1;
  int out_ = -1;
  uint16_t port_ = 0;
  std::string listening_line_;
  int exit_status_ = 0;
  std::string log_;
};

}  // namespace sluice::test
