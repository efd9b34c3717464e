#include "core/isolation/host_validate.hpp"

#include <poll.h>
#include <signal.h>
#include <sluice/plugin.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/isolation/host_protocol.hpp"

namespace sluice {

std::vector<Problem> validateInHost(const std::string& host_executable,
                                    const std::vector<HostValidation>& jobs,
                                    std::chrono::steady_clock::time_point deadline,
                                    uint32_t timeout_ms) {
  std::vector<Problem> problems;
  if (jobs.empty()) return problems;
  pid_t pid = -1;
  int fd = -1;
  std::string error;
  auto fail_from = [&](size_t first, const std::string& why) {
    for (size_t i = first; i < jobs.size(); ++i) {
      problems.push_back({jobs[i].index, jobs[i].flow_id, "/config", why});
    }
  };
  if (!proto::spawnHost(host_executable, &pid, &fd, &error)) {
    fail_from(0, "config not validated: " + error);
    return problems;
  }
  bool killed = false;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const HostValidation& job = jobs[i];
    proto::Writer w(proto::Kind::kValidate, static_cast<uint32_t>(i + 1));
    w.str(job.file).str(job.type).str(job.config);
    std::optional<std::string> reply;
    if (proto::writeFrame(fd, w.frame())) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) > 0) {
        reply = proto::readFrame(fd);
      } else {
        ::kill(pid, SIGKILL);
        killed = true;
        fail_from(i, "validate hook did not finish within " + std::to_string(timeout_ms) +
                         " ms; its host process was killed (SIGKILL)");
        break;
      }
    }
    if (!reply) {  // the host died: name how
      ::shutdown(fd, SHUT_RDWR);
      int status = 0;
      ::waitpid(pid, &status, 0);
      pid = -1;
      const bool no_exec = WIFEXITED(status) && WEXITSTATUS(status) == 127;
      fail_from(i, no_exec ? "config not validated: host process could not run " + host_executable +
                                 " --flow-host (exit code 127)"
                           : "validate hook failed: " + proto::describeExit(status));
      break;
    }
    proto::Reader r(*reply);
    const int32_t rc = r.i32();
    const uint32_t n = r.u32();
    const size_t before = problems.size();
    for (uint32_t k = 0; k < n && r.ok(); ++k) {
      std::string path = r.str();
      std::string message = r.str();
      problems.push_back({job.index, job.flow_id, "/config" + path, message});
    }
    if (rc != SLUICE_OK && problems.size() == before) {
      problems.push_back(
          {job.index, job.flow_id, "/config", "config refused by flow type '" + job.type + "'"});
    }
  }
  ::close(fd);  // the host exits on EOF
  if (pid > 0) {
    int status = 0;
    if (!killed) {
      // Bounded: a host that does not exit on EOF is killed.
      for (int i = 0; i < 200 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::usleep(10'000);
      if (::waitpid(pid, &status, WNOHANG) == 0) ::kill(pid, SIGKILL);
    }
    ::waitpid(pid, &status, 0);
  }
  return problems;
}

}  // namespace sluice
