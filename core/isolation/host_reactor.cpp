// One reactor for every host process's socket (host_reactor.hpp).
#include "core/isolation/host_reactor.hpp"

#include <linux/sockios.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <unordered_map>
#include <vector>

#include "core/isolation/zygote.hpp"

namespace sluice {
namespace {

// epoll data: a channel's id shifted left once, its low bit telling the pidfd (1) from the
// socket (0); 0 is the reactor's own wake-up descriptor. Ids only grow: an event or a report
// for a host that ended never reaches another.
constexpr uint64_t kPidfdTag = 1;
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerWake = 16;  // then the other hosts get their turn (level-triggered)
constexpr int kCallThreads = 4;    // host-function calls answered at once
// How long after its pidfd said a zygote's host exited the reactor waits for the zygote's report
// of how (a stopped or stuck zygote must not leave the flow waiting).
constexpr auto kStatusGrace = std::chrono::seconds(2);
// The wait status given when the zygote did not report one in time: neither exited nor
// signalled, which proto::describeExit words "host process ended".
constexpr int kStatusUnknown = 0x7f;

// Whether the process behind `pidfd` has exited (it may have been reaped and its pid reused).
bool hasExited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

}  // namespace

// A FIFO of work run by a few threads of its own (started on first use).
class ReactorWorkers {
 public:
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      q_.push_back(std::move(fn));
      if (!started_) {
        started_ = true;
        for (int i = 0; i < kCallThreads; ++i) std::thread([this] { run(); }).detach();
      }
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !q_.empty(); });
        fn = std::move(q_.front());
        q_.pop_front();
      }
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool started_ = false;
};

struct HostReactor::State {
  int ep = -1;
  int wake = -1;
  std::thread::id id;
  std::atomic<uint64_t> next_id{1};
  std::mutex mu;
  std::vector<std::function<void()>> posted;  // guarded by mu
  // The reactor thread's own: the hosts served, by id.
  std::unordered_map<uint64_t, std::shared_ptr<Channel>> channels;
  // Zygote hosts that exited, and until when their status is awaited from the zygote.
  std::vector<std::pair<uint64_t, std::chrono::steady_clock::time_point>> awaiting;
  ReactorWorkers calls;
  // The hosts with a memory limit, checked every 50 ms on a thread of their own.
  std::mutex watch_mu;
  std::vector<std::weak_ptr<Channel>> watched;  // guarded by watch_mu
  bool watch_started = false;                   // guarded by watch_mu

  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu);
      posted.push_back(std::move(fn));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake, &one, sizeof one);
  }

  Channel* find(uint64_t id) {
    auto it = channels.find(id);
    return it == channels.end() ? nullptr : it->second.get();
  }

  void loop() {
    std::vector<epoll_event> events(256);
    std::vector<std::function<void()>> work;
    for (;;) {
      const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout());
      if (n < 0 && errno != EINTR) {
        spdlog::critical("host reactor: epoll_wait failed: {}", std::strerror(errno));
        return;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t data = events[i].data.u64;
        if (data == 0) {
          uint64_t count;
          [[maybe_unused]] ssize_t r = ::read(wake, &count, sizeof count);
          continue;
        }
        const uint64_t id = data >> 1;
        Channel* ch = find(id);
        if (ch == nullptr) continue;  // ended by an earlier event of this batch
        if ((data & kPidfdTag) == 0) {
          readFrames(ch, kReadsPerWake);
        } else if (ch->spawner == nullptr) {
          reapChild(id, ch);
        } else {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, ch->pidfd, nullptr);
          awaiting.emplace_back(id, std::chrono::steady_clock::now() + kStatusGrace);
        }
      }
      {
        std::lock_guard lock(mu);
        work.swap(posted);
      }
      for (auto& fn : work) fn();
      work.clear();
      endOverdue();
    }
  }

  int timeout() const {
    if (awaiting.empty()) return -1;
    auto first = awaiting.front().second;
    for (const auto& a : awaiting) first = std::min(first, a.second);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        first - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count() + 1));
  }

  // Zygote hosts whose status did not come within the grace: ended without it.
  void endOverdue() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<uint64_t> overdue;
    std::erase_if(awaiting, [&](const auto& a) {
      if (channels.count(a.first) == 0) return true;  // its status came
      if (a.second > now) return false;
      overdue.push_back(a.first);
      return true;
    });
    for (uint64_t id : overdue) {
      spdlog::warn("flow host {}: exited, and its zygote did not say how within {} s",
                   channels[id]->pid, kStatusGrace.count());
      exited(id, kStatusUnknown);
    }
  }

  void serve(uint64_t id, const std::shared_ptr<Channel>& ch) {
    channels[id] = ch;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = id << 1;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, ch->fd, &ev) != 0) {
      spdlog::error("host reactor: cannot watch host {}: {}", ch->pid, std::strerror(errno));
      ch->sigkill();  // its end then comes from the pidfd or the spawner
      ch->reading = false;
    }
    if (ch->pidfd >= 0) {
      ev.events = EPOLLIN;
      ev.data.u64 = (id << 1) | kPidfdTag;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, ch->pidfd, &ev);
    }
  }

  // Reads what the host sent, at most `budget` reads (or, with `limit`, at most that many
  // bytes), and hands each whole frame to the channel. At EOF (or a malformed length) it stops
  // polling the socket: the host's end comes from its exit.
  void readFrames(Channel* ch, int budget, size_t limit = SIZE_MAX) {
    char buf[kReadChunk];
    while (ch->reading && budget-- != 0 && limit > 0) {
      ssize_t r = ::recv(ch->fd, buf, std::min(sizeof buf, limit), MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (r <= 0) {
        stopReading(ch);
        return;
      }
      limit -= static_cast<size_t>(r);
      ch->inbuf.append(buf, static_cast<size_t>(r));
      if (!takeFrames(ch)) stopReading(ch);
    }
  }

  bool takeFrames(Channel* ch) {
    std::string& in = ch->inbuf;
    size_t pos = 0;
    bool ok = true;
    const std::shared_ptr<Channel>& keep = channels[ch->reactor_id];
    auto answer = [this, &keep](std::function<void()> fn) {
      calls.post([keep, fn = std::move(fn)] { fn(); });
    };
    while (in.size() - pos >= 4) {
      uint32_t len;
      std::memcpy(&len, in.data() + pos, 4);
      if (len < 5 || len > proto::kMaxFrame) {
        ok = false;
        break;
      }
      if (in.size() - pos - 4 < len) break;
      ch->frame(std::string_view(in.data() + pos + 4, len), answer);
      pos += 4 + len;
    }
    in.erase(0, pos);
    return ok;
  }

  void stopReading(Channel* ch) {
    if (!ch->reading) return;
    ch->reading = false;
    ::epoll_ctl(ep, EPOLL_CTL_DEL, ch->fd, nullptr);
    ch->inbuf.clear();
    ch->inbuf.shrink_to_fit();
  }

  // A host the engine forked itself: its pidfd says it exited; reap it.
  void reapChild(uint64_t id, Channel* ch) {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(ch->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return;  // not yet (spurious)
    ::epoll_ctl(ep, EPOLL_CTL_DEL, ch->pidfd, nullptr);
    exited(id, r == ch->pid ? status : 0);
  }

  // The host is gone: everything it wrote is in the socket by now. Read that much (a child it
  // forked may still hold the socket and write on), then end.
  void exited(uint64_t id, int status) {
    auto it = channels.find(id);
    if (it == channels.end()) return;
    std::shared_ptr<Channel> keep = it->second;
    Channel* ch = keep.get();
    int queued = 0;
    if (ch->reading && ::ioctl(ch->fd, SIOCINQ, &queued) == 0 && queued > 0) {
      readFrames(ch, -1, static_cast<size_t>(queued));
    }
    stopReading(ch);
    if (ch->pidfd >= 0) ::epoll_ctl(ep, EPOLL_CTL_DEL, ch->pidfd, nullptr);  // may be gone: fine
    channels.erase(it);
    ch->ended(status);
  }

  void watch(const std::shared_ptr<Channel>& ch) {
    std::lock_guard lock(watch_mu);
    watched.push_back(ch);
    if (watch_started) return;
    watch_started = true;
    std::thread([this] { watchMemory(); }).detach();
  }

  // Resident memory of each host with a limit, every 50 ms, against runtime.memory_limit_mb.
  void watchMemory() {
    for (;;) {
      std::vector<std::shared_ptr<Channel>> now;
      {
        std::lock_guard lock(watch_mu);
        std::erase_if(watched, [](const std::weak_ptr<Channel>& w) { return w.expired(); });
        for (auto& w : watched) {
          if (auto ch = w.lock()) now.push_back(std::move(ch));
        }
      }
      for (auto& ch : now) check(*ch);
      now.clear();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  static void check(Channel& ch) {
    std::ifstream in("/proc/" + std::to_string(ch.pid) + "/status");
    std::string line;
    uint64_t rss_kb = 0;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) rss_kb = std::stoull(line.substr(6));
    }
    // The pid read may be another process's once the host exited and was reaped.
    if (ch.pidfd >= 0 ? hasExited(ch.pidfd) : ch.reaped.load()) return;
    std::lock_guard lock(ch.mu);
    if (ch.dead || !ch.kill_reason.empty()) return;
    if (rss_kb > static_cast<uint64_t>(ch.limit_mb) * 1024) {
      ch.kill_reason = "host process killed (SIGKILL): resident memory " +
                       std::to_string(rss_kb / 1024) + " MB over runtime.memory_limit_mb " +
                       std::to_string(ch.limit_mb);
      ch.sigkill();
    }
  }
};

HostReactor::HostReactor() : s_(new State) {
  s_->ep = ::epoll_create1(EPOLL_CLOEXEC);
  s_->wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s_->ep < 0 || s_->wake < 0) {
    throw std::runtime_error(std::string("host reactor: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  ::epoll_ctl(s_->ep, EPOLL_CTL_ADD, s_->wake, &ev);
  std::thread t([st = s_] { st->loop(); });
  s_->id = t.get_id();
  t.detach();
}

HostReactor& HostReactor::instance() {
  static auto* reactor = new HostReactor();
  return *reactor;
}

std::thread::id HostReactor::thread() const { return s_->id; }

void HostReactor::add(const std::shared_ptr<Channel>& ch) {
  State* s = s_;
  const uint64_t id = s->next_id.fetch_add(1);
  ch->reactor_id = id;
  if (ch->spawner == nullptr && ch->pidfd < 0) {
    ch->pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ch->pid, 0));
  }
  s->post([s, id, ch] { s->serve(id, ch); });
  if (ch->spawner != nullptr) {
    ch->spawner->onExit(
        ch->serial, [s, id](int status) { s->post([s, id, status] { s->exited(id, status); }); });
  } else if (ch->pidfd < 0) {
    // No pidfd (a kernel before 5.3): a thread of its own waits for this child.
    std::thread([s, id, ch] {
      int status = 0;
      while (::waitpid(ch->pid, &status, 0) < 0 && errno == EINTR) {
      }
      ch->reaped = true;  // kill(pid) must not reach a process that reuses the pid
      s->post([s, id, status] { s->exited(id, status); });
    }).detach();
  }
  if (ch->limit_mb > 0) s->watch(ch);
}

}  // namespace sluice
