// The host spawner (zygote) of process isolation: both ends (zygote.hpp has the protocol).
#include "core/isolation/zygote.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/isolation/host_protocol.hpp"
#include "core/isolation/instance.hpp"

namespace sluice {
namespace {

enum class Kind : uint32_t { kReady = 1, kSpawn = 2, kSpawned = 3, kExited = 4 };

struct Msg {
  Kind kind;
  uint32_t pad = 0;
  uint64_t serial = 0;
  int64_t value = 0;  // Spawned: the pid or -errno; Exited: the wait status
};

constexpr auto kAnswerBound = std::chrono::seconds(10);
constexpr auto kRetryAfter = std::chrono::seconds(30);  // after a zygote that could not start

// One message, with one descriptor when fd >= 0.
bool sendMsg(int sock, const Msg& m, int fd) {
  iovec iov{const_cast<Msg*>(&m), sizeof m};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    h.msg_control = ctrl;
    h.msg_controllen = sizeof ctrl;
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    ssize_t n = ::sendmsg(sock, &h, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof m);
  }
}

// One message and the descriptor it carries (-1 when none; close-on-exec). 0 at EOF, -1 on
// an error, 1 for a message.
int recvMsg(int sock, Msg* m, int* fd) {
  *fd = -1;
  iovec iov{m, sizeof *m};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
  h.msg_control = ctrl;
  h.msg_controllen = sizeof ctrl;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return n == 0 ? 0 : -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(fd, CMSG_DATA(c), sizeof(int));
    }
  }
  return n == static_cast<ssize_t>(sizeof *m) ? 1 : -1;
}

// ---- the zygote process

// The command line the zygote's process shows, rewritten in place in a host it forked, so that
// `ps` tells the hosts from their zygote as it does for exec'd hosts.
void renameToHost(int argc, char** argv) {
  if (argc < 1 || argv == nullptr) return;
  for (int i = 1; i < argc; ++i) {  // only the kernel's layout: the strings back to back
    if (argv[i] != argv[i - 1] + std::strlen(argv[i - 1]) + 1) return;
  }
  char* begin = argv[0];
  char* end = argv[argc - 1] + std::strlen(argv[argc - 1]) + 1;
  static const char kHost[] =
      "sluice-flow-host\0--flow-host\0"
      "3";
  if (static_cast<size_t>(end - begin) < sizeof kHost) return;
  std::memset(begin, 0, static_cast<size_t>(end - begin));
  std::memcpy(begin, kHost, sizeof kHost);
}

// In the forked child: becomes the flow host of `fd`. Never returns.
[[noreturn]] void becomeHost(int fd, pid_t zygote, int argc, char** argv) {
  renameToHost(argc, argv);
  proto::enterHelperChild(zygote, fd);
  ::_exit(runFlowHost(3));
}

}  // namespace

int runZygote(int ctl, int argc, char** argv) {
  // SIGCHLD ignored (inherited through exec from whoever started the engine) would have the
  // kernel reap the hosts unseen: the engine would never learn how they ended.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &dfl, nullptr);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  const int sig = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig < 0 || !sendMsg(ctl, Msg{Kind::kReady}, -1)) return 1;
  const pid_t self = ::getpid();
  std::unordered_map<pid_t, uint64_t> serials;  // hosts not reaped yet
  for (;;) {
    pollfd fds[2] = {{ctl, POLLIN, 0}, {sig, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (fds[1].revents != 0) {
      signalfd_siginfo info;
      while (::read(sig, &info, sizeof info) > 0) {
      }
      int status = 0;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = serials.find(pid);
        if (it == serials.end()) continue;
        if (!sendMsg(ctl, Msg{Kind::kExited, 0, it->second, status}, -1)) return 0;
        serials.erase(it);
      }
    }
    if (fds[0].revents == 0) continue;
    Msg m{};
    int fd = -1;
    const int got = recvMsg(ctl, &m, &fd);
    if (got <= 0) return 0;  // the engine is gone; its hosts die with this process
    if (m.kind != Kind::kSpawn || fd < 0) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(ctl);
      ::close(sig);
      becomeHost(fd, self, argc, argv);
    }
    const int err = errno;
    ::close(fd);
    int pidfd = -1;
    int64_t answer = pid > 0 ? pid : -err;
    if (pid > 0) {
      pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (pidfd < 0) {
        // Without a pidfd the engine's signals could reach a process that reused the pid once
        // this one reaped the host: no host, and the engine forks+execs one itself instead.
        answer = -errno;
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
      } else {
        serials[pid] = m.serial;
      }
    }
    const bool sent = sendMsg(ctl, Msg{Kind::kSpawned, 0, m.serial, answer}, pidfd);
    if (pidfd >= 0) ::close(pidfd);
    if (!sent) return 0;
  }
}

// ---- the engine's side

struct HostSpawner::State {
  std::string exe;
  std::mutex mu;
  std::condition_variable cv;
  enum class Phase { kDown, kStarting, kUp } phase = Phase::kDown;  // guarded by mu
  std::string failure;                                              // guarded by mu
  uint64_t generation = 0;   // guarded by mu: one more each time a zygote ends
  uint64_t next_serial = 1;  // guarded by mu
  struct Spawned {
    int64_t pid;
    int pidfd;
  };
  std::map<uint64_t, Spawned> replies;  // guarded by mu
  std::set<uint64_t> pending;           // guarded by mu: spawns whose caller awaits the answer
  std::set<uint64_t> dropped;           // guarded by mu: hosts spawned for a caller gone since
  std::chrono::steady_clock::time_point retry_after;  // guarded by mu: after a failed start
  std::set<uint64_t> live;                            // guarded by mu: hosts not reaped yet
  std::map<uint64_t, int> exits;  // guarded by mu: wait statuses nobody waits for yet
  std::map<uint64_t, std::function<void(int)>> watchers;  // guarded by mu: onExit's callbacks
  bool thread_started = false;                            // guarded by mu
  std::mutex send_mu;           // one sender at a time; guards ctl's closing
  int ctl = -1;                 // guarded by send_mu (and mu to assign)
  uint64_t ctl_generation = 0;  // guarded by send_mu: the generation ctl belongs to

  // The spawner's thread: starts a zygote whenever one is wanted and reads its messages. The
  // zygote dies with the thread that forked it (PR_SET_PDEATHSIG), so it is this one, which
  // lives as long as the process.
  void serve() {
    for (;;) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return phase == Phase::kStarting; });
      }
      pid_t zpid = -1;
      int sock = startZygote(&zpid);
      {
        std::lock_guard lock(mu);
        std::lock_guard sl(send_mu);
        ctl = sock;
        ctl_generation = generation;
        phase = sock >= 0 ? Phase::kUp : Phase::kDown;
        if (sock < 0) retry_after = std::chrono::steady_clock::now() + kRetryAfter;
      }
      cv.notify_all();
      if (sock < 0) continue;
      readMessages(sock);
      ::shutdown(sock, SHUT_RDWR);  // a sender blocked on a full socket returns
      {
        std::lock_guard lock(mu);
        std::lock_guard sl(send_mu);
        ::close(sock);
        ctl = -1;
        phase = Phase::kDown;
        ++generation;
        for (uint64_t s : live) exits[s] = SIGKILL;  // PR_SET_PDEATHSIG killed them
        live.clear();
        dropped.clear();
      }
      cv.notify_all();
      deliverExits();
      spdlog::warn("flow host spawner (zygote, pid {}) ended; the next host starts a new one",
                   zpid);
      ::waitpid(zpid, nullptr, 0);
    }
  }

  // The zygote process and the engine's end of its socket; -1 and `failure` set when it does
  // not say Ready within the bound.
  int startZygote(pid_t* zpid) {
    pid_t pid = -1;
    int sock = -1;
    proto::SpawnStep failed_at{};
    if (!proto::forkExecHelper(exe, "sluice-flow-zygote", "--flow-zygote", SOCK_SEQPACKET, &pid,
                               &sock, &failed_at)) {
      return fail(std::string(failed_at == proto::SpawnStep::kSocket ? "cannot create its socket: "
                                                                     : "cannot fork: ") +
                  std::strerror(errno));
    }
    pollfd p{sock, POLLIN, 0};
    Msg m{};
    int fd = -1;
    const auto bound = std::chrono::duration_cast<std::chrono::milliseconds>(kAnswerBound);
    if (::poll(&p, 1, static_cast<int>(bound.count())) == 1 && recvMsg(sock, &m, &fd) == 1 &&
        m.kind == Kind::kReady) {
      *zpid = pid;
      return sock;
    }
    if (fd >= 0) ::close(fd);
    ::close(sock);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return fail("it did not start (" + exe + " --flow-zygote: wait status " +
                std::to_string(status) + ")");
  }

  int fail(std::string why) {
    std::lock_guard lock(mu);
    failure = "the flow host spawner (zygote) cannot run: " + std::move(why);
    return -1;
  }

  void readMessages(int sock) {
    for (;;) {
      Msg m{};
      int fd = -1;
      if (recvMsg(sock, &m, &fd) != 1) return;
      {
        std::lock_guard lock(mu);
        if (m.kind == Kind::kSpawned) {
          if (pending.count(m.serial) == 0) {
            // Its caller gave up: the host ends at its socket's EOF, and its exit is dropped.
            if (fd >= 0) ::close(fd);
            if (m.value > 0) dropped.insert(m.serial);
            continue;
          }
          replies[m.serial] = Spawned{m.value, fd};
          if (m.value > 0) live.insert(m.serial);
        } else if (m.kind == Kind::kExited) {
          live.erase(m.serial);
          if (dropped.erase(m.serial) == 0) exits[m.serial] = static_cast<int>(m.value);
        } else if (fd >= 0) {
          ::close(fd);
        }
      }
      cv.notify_all();
      if (m.kind == Kind::kExited) deliverExits();
    }
  }

  // Calls the onExit callbacks whose status is known, outside the lock.
  void deliverExits() {
    std::vector<std::pair<std::function<void(int)>, int>> due;
    {
      std::lock_guard lock(mu);
      for (auto it = exits.begin(); it != exits.end();) {
        auto w = watchers.find(it->first);
        if (w == watchers.end()) {
          ++it;
          continue;
        }
        due.emplace_back(std::move(w->second), it->second);
        watchers.erase(w);
        it = exits.erase(it);
      }
    }
    for (auto& [fn, status] : due) fn(status);
  }
};

HostSpawner::HostSpawner(std::string exe) : s_(new State) { s_->exe = std::move(exe); }

HostSpawner& HostSpawner::forExecutable(const std::string& exe) {
  static std::mutex mu;
  static auto* spawners = new std::map<std::string, std::unique_ptr<HostSpawner>>();
  std::lock_guard lock(mu);
  auto& slot = (*spawners)[exe];
  if (!slot) slot.reset(new HostSpawner(exe));
  return *slot;
}

bool HostSpawner::enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SLUICE_HOST_SPAWN");
    return v == nullptr || std::string(v) != "exec";
  }();
  return on;
}

bool HostSpawner::spawn(Host* out, std::string* error) {
  State& s = *s_;
  std::unique_lock lock(s.mu);
  if (s.phase == State::Phase::kDown && std::chrono::steady_clock::now() < s.retry_after) {
    *error = s.failure;  // it failed to start a moment ago: not tried again at every host
    return false;
  }
  if (s.phase == State::Phase::kDown) {
    s.phase = State::Phase::kStarting;
    if (!s.thread_started) {
      s.thread_started = true;
      std::thread([st = s_] { st->serve(); }).detach();
    }
    s.cv.notify_all();
  }
  if (!s.cv.wait_for(lock, kAnswerBound + std::chrono::seconds(1),
                     [&] { return s.phase != State::Phase::kStarting; }) ||
      s.phase != State::Phase::kUp) {
    *error = s.failure.empty() ? "the flow host spawner (zygote) did not start" : s.failure;
    return false;
  }
  const uint64_t serial = s.next_serial++;
  const uint64_t generation = s.generation;
  s.pending.insert(serial);
  lock.unlock();

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    *error = std::string("cannot create the host's socket: ") + std::strerror(errno);
    std::lock_guard relock(s.mu);
    s.pending.erase(serial);
    return false;
  }
  bool sent;
  {
    // Only to the zygote this serial was taken for: one started since knows nothing of it.
    std::lock_guard sl(s.send_mu);
    sent = s.ctl >= 0 && s.ctl_generation == generation &&
           sendMsg(s.ctl, Msg{Kind::kSpawn, 0, serial, 0}, sv[1]);
  }
  ::close(sv[1]);
  lock.lock();
  const bool answered = sent && s.cv.wait_for(lock, kAnswerBound, [&] {
    return s.replies.count(serial) != 0 || s.generation != generation;
  });
  s.pending.erase(serial);  // an answer coming after this is dropped by the spawner's thread
  auto it = s.replies.find(serial);
  if (!answered || it == s.replies.end()) {
    ::close(sv[0]);
    *error = "the flow host spawner (zygote) did not answer";
    return false;
  }
  const State::Spawned r = it->second;
  s.replies.erase(it);
  if (r.pid > 0 && r.pidfd < 0) {
    // The pidfd was lost on the way (the engine out of descriptors): no host without one. It
    // ends at its socket's EOF; its exit is dropped.
    s.dropped.insert(serial);
    ::close(sv[0]);
    *error = "the flow host spawner (zygote) sent no pidfd for the host";
    return false;
  }
  if (r.pid <= 0) {
    ::close(sv[0]);
    if (r.pidfd >= 0) ::close(r.pidfd);
    *error =
        std::string("cannot fork the host process: ") + std::strerror(static_cast<int>(-r.pid));
    return false;
  }
  *out = Host{static_cast<pid_t>(r.pid), r.pidfd, sv[0], serial};
  return true;
}

void HostSpawner::onExit(uint64_t serial, std::function<void(int)> fn) {
  {
    std::lock_guard lock(s_->mu);
    s_->watchers[serial] = std::move(fn);
  }
  s_->deliverExits();
}

}  // namespace sluice
