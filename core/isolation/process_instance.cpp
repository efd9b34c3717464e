// Process isolation, engine side: a plugin instance living in a host process of its own.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "core/isolation/host_channel.hpp"
#include "core/isolation/host_protocol.hpp"
#include "core/isolation/host_reactor.hpp"
#include "core/isolation/instance.hpp"
#include "core/isolation/zygote.hpp"

namespace sluice {

namespace {

const char* hookName(proto::Kind k) {
  switch (k) {
    case proto::Kind::kCreate:
      return "create";
    case proto::Kind::kStart:
      return "start";
    case proto::Kind::kStop:
      return "stop";
    case proto::Kind::kPause:
      return "pause";
    case proto::Kind::kResume:
      return "resume";
    case proto::Kind::kStep:
      return "step";
    case proto::Kind::kReconfigure:
      return "reconfigure";
    case proto::Kind::kRun:
      return "run";
    case proto::Kind::kDestroy:
      return "destroy";
    default:
      return "?";
  }
}

class ProcessInstance final : public Instance {
 public:
  ProcessInstance(HostTable host, std::shared_ptr<const FlowType> type, std::string config,
                  std::function<void(const std::string&)> on_death)
      : type_(std::move(type)), config_(std::move(config)), ch_(std::make_shared<Channel>()) {
    ch_->host = std::move(host);
    ch_->on_death = std::move(on_death);
  }

  ~ProcessInstance() override {
    if (ch_->pid <= 0) return;
    if (HostReactor::instance().thread() == std::this_thread::get_id()) {
      // On the reactor (a death report dropped the last reference): never wait for it. The host
      // is dead then; should it not be, it is ended without its destroy hook.
      if (!isDead()) kill();
      ::shutdown(ch_->fd, SHUT_RDWR);
      return;
    }
    destroy(nullptr);
    std::unique_lock lock(ch_->mu);
    // Bounded: destroy() made sure the host is dead or killed; the reactor reports its end.
    if (!ch_->cv.wait_for(lock, std::chrono::seconds(5), [&] { return ch_->reader_done; })) {
      spdlog::error("flow host {}: the reactor did not report its end; left to end on its own",
                    ch_->pid);
    }
  }

  bool spawn(const ProcessOptions& options, std::string* error) {
    ch_->exe = options.host_executable;
    ch_->limit_mb = options.memory_limit_mb;
    if (!spawnHost(error)) return false;
    HostReactor::instance().add(ch_);
    return true;
  }

  // Through the zygote when it can (a fork of a small process), else a fork+exec of the engine's
  // executable (SLUICE_HOST_SPAWN=exec, or no zygote).
  bool spawnHost(std::string* error) {
    if (HostSpawner::enabled()) {
      HostSpawner& spawner = HostSpawner::forExecutable(ch_->exe);
      HostSpawner::Host h;
      std::string why;
      if (spawner.spawn(&h, &why)) {
        ch_->pid = h.pid;
        ch_->pidfd = h.pidfd;
        ch_->fd = h.fd;
        ch_->serial = h.serial;
        ch_->spawner = &spawner;
        return true;
      }
      spdlog::warn("{}; the host is started with a fork+exec instead", why);
    }
    return proto::spawnHost(ch_->exe, &ch_->pid, &ch_->fd, error);
  }

  // No bound of its own: the flow's deadline kills the host when create does not return.
  int32_t create(sluice_error* e) override {
    const sluice_host& h = *ch_->host;
    proto::Writer w(proto::Kind::kCreate, nextId());
    w.str(type_->load_path.empty() ? type_->file : type_->load_path)
        .str(type_->name)
        .str(std::string(h.flow_id, h.flow_id_len))
        .str(std::string(h.files_root, h.files_root_len))
        .str(config_);
    const int32_t rc = call(std::move(w), proto::Kind::kCreate, nullptr, e);
    if (rc == SLUICE_OK) ch_->created = true;
    return rc;
  }

  int32_t destroy(sluice_error* e) override {
    if (destroyed_ || ch_->pid <= 0) return SLUICE_OK;
    destroyed_ = true;
    {
      std::lock_guard lock(ch_->mu);
      ch_->expected_exit = true;
    }
    int32_t rc = SLUICE_OK;
    if (!isDead()) {
      rc = call(proto::Writer(proto::Kind::kDestroy, nextId()), proto::Kind::kDestroy, nullptr, e,
                std::chrono::milliseconds(2000));
    }
    if (rc != SLUICE_OK && !isDead()) {
      // The destroy hook did not return within its bound: end it with its host.
      kill();
      sluice_error_set(e,
                       "destroy hook did not return within 2000 ms; its host process was killed "
                       "(SIGKILL)");
    }
    // The host exits after destroy. A process it forked may still hold the other end of the
    // socket: our end is shut down, and the host's end is known from its exit, not from EOF.
    ::shutdown(ch_->fd, SHUT_RDWR);
    std::unique_lock lock(ch_->mu);
    if (!ch_->cv.wait_for(lock, std::chrono::milliseconds(2000), [&] { return ch_->dead; })) {
      ch_->sigkill();  // the reactor learns of its end
    }
    return rc;
  }

  int32_t start(sluice_error* e) override { return simple(proto::Kind::kStart, e); }
  int32_t stop(int32_t mode, sluice_error* e) override {
    proto::Writer w(proto::Kind::kStop, nextId());
    w.i32(mode);
    return call(std::move(w), proto::Kind::kStop, nullptr, e);
  }
  int32_t pause(sluice_error* e) override { return simple(proto::Kind::kPause, e); }
  int32_t resume(sluice_error* e) override { return simple(proto::Kind::kResume, e); }
  int32_t step(uint32_t* next, sluice_error* e) override {
    proto::Writer w(proto::Kind::kStep, nextId());
    w.u32(*next);
    return call(std::move(w), proto::Kind::kStep, next, e);
  }
  int32_t reconfigure(const std::string& config, sluice_error* e) override {
    proto::Writer w(proto::Kind::kReconfigure, nextId());
    w.str(config);
    return call(std::move(w), proto::Kind::kReconfigure, nullptr, e);
  }
  int32_t run(sluice_error* e) override { return simple(proto::Kind::kRun, e); }
  bool canReconfigure() const override { return type_->def->reconfigure != nullptr; }
  bool kill() override {
    std::lock_guard lock(ch_->mu);
    if (ch_->dead || ch_->pid <= 0) return true;
    if (ch_->kill_reason.empty())
      ch_->kill_reason =
          "host process killed (SIGKILL) by the engine: plugin code did not return in time";
    ch_->sigkill();
    return true;
  }

 private:
  uint32_t nextId() { return next_id_.fetch_add(1); }

  bool isDead() {
    std::lock_guard lock(ch_->mu);
    return ch_->dead;
  }

  int32_t simple(proto::Kind k, sluice_error* e) {
    return call(proto::Writer(k, nextId()), k, nullptr, e);
  }

  // Sends a hook call and waits for its result or the host's death. `bound` 0 = no bound (the
  // flow's deadlines kill the host when needed).
  int32_t call(proto::Writer w, proto::Kind k, uint32_t* next, sluice_error* e,
               std::chrono::milliseconds bound = std::chrono::milliseconds(0)) {
    Channel& ch = *ch_;
    const std::string& frame = w.frame();
    uint32_t id;
    std::memcpy(&id, frame.data() + 5, 4);
    std::unique_lock lock(ch.mu);
    if (ch.dead) {
      sluice_error_set(e, (ch.death + " (before the " + hookName(k) + " hook)").c_str());
      return SLUICE_ERROR;
    }
    ch.waiting.insert({id, k});
    lock.unlock();
    bool sent;
    {
      std::lock_guard wl(ch.write_mu);
      sent = proto::writeFrame(ch.fd, frame);
    }
    lock.lock();
    auto ready = [&] { return ch.dead || ch.results.count(id) != 0; };
    if (!sent) {
      ch.cv.wait_for(lock, std::chrono::milliseconds(2000), ready);
    } else if (bound.count() > 0) {
      ch.cv.wait_for(lock, bound, ready);
    } else {
      ch.cv.wait(lock, ready);
    }
    ch.waiting.erase(id);
    auto it = ch.results.find(id);
    if (it == ch.results.end()) {
      std::string why = ch.dead ? ch.death : "host process did not answer";
      sluice_error_set(e, (why + " while running the " + hookName(k) + " hook").c_str());
      return SLUICE_ERROR;
    }
    Channel::Reply r = std::move(it->second);
    ch.results.erase(it);
    if (next != nullptr) *next = r.next;
    if (r.status == proto::kHookThrew) {
      // Rethrown here, so that the caller words it exactly as for a hook in a thread.
      if (r.error.empty()) throw proto::ForeignException{};
      throw std::runtime_error(r.error);
    }
    if (r.status != SLUICE_OK) sluice_error_set(e, r.error.c_str());
    return r.status;
  }

  std::shared_ptr<const FlowType> type_;
  std::string config_;
  std::shared_ptr<Channel> ch_;
  std::atomic<uint32_t> next_id_{1};
  bool destroyed_ = false;  // strand only
};

}  // namespace

std::shared_ptr<Instance> makeProcessInstance(const std::shared_ptr<const FlowType>& type,
                                              HostTable host, std::string config_json,
                                              const ProcessOptions& options,
                                              std::function<void(const std::string&)> on_death,
                                              std::string* error) {
  auto instance = std::make_shared<ProcessInstance>(std::move(host), type, std::move(config_json),
                                                    std::move(on_death));
  if (!instance->spawn(options, error)) return nullptr;
  return instance;
}

}  // namespace sluice
