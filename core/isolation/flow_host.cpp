// Process isolation, host side: `sluice --flow-host FD` serves one plugin instance over FD.
//
// A reader thread takes every frame from the engine: answers to host-function calls go to the
// thread waiting for them; hook calls are queued for the main thread, which runs them one at a
// time; `run` gets a thread of its own. When the engine goes away (EOF), the host exits.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/isolation/host_protocol.hpp"
#include "core/isolation/instance.hpp"
#include "core/model/wall_clock.hpp"
#include "core/plugins/plugin_abi.hpp"
#include "core/runtime/flow_signals.hpp"

namespace sluice {
namespace {

class HostClient {
 public:
  explicit HostClient(int fd) : fd_(fd) {}

  void send(const std::string& frame) {
    std::lock_guard lock(write_mu_);
    if (!proto::writeFrame(fd_, frame)) ::_exit(0);  // the engine is gone
  }

  struct CallResult {
    int32_t status = SLUICE_ERROR;
    int64_t number = 0;
    std::string text;
  };

  CallResult call(proto::Fn fn, std::string_view key = {}, std::string_view value = {}) {
    uint32_t id = next_id_.fetch_add(1);
    {
      std::lock_guard lock(mu_);
      waiting_[id] = std::nullopt;
    }
    proto::Writer w(proto::Kind::kCall, id);
    w.u8(static_cast<uint8_t>(fn)).str(key).str(value);
    send(w.frame());
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return waiting_[id].has_value(); });
    CallResult r = std::move(*waiting_[id]);
    waiting_.erase(id);
    return r;
  }

  void deliver(uint32_t id, CallResult r) {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(id);
    if (it != waiting_.end()) it->second = std::move(r);
    cv_.notify_all();
  }

  sluice_host table{};
  std::string flow_id;
  std::string files_root;
  // stop_fd: raised by a watcher that asks the engine every 20 ms, started on first use.
  WakeFd stop_wake;
  std::once_flag stop_watcher;

 private:
  int fd_;
  std::mutex write_mu_;
  std::atomic<uint32_t> next_id_{1};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, std::optional<CallResult>> waiting_;  // guarded by mu_
};

HostClient* client(void* ctx) { return static_cast<HostClient*>(ctx); }

void bindHostTable(HostClient& c) {
  sluice_host& h = c.table;
  h.struct_size = sizeof(sluice_host);
  h.abi_major = SLUICE_ABI_MAJOR;
  h.abi_minor = SLUICE_ABI_MINOR;
  h.ctx = &c;
  h.flow_id = c.flow_id.c_str();
  h.flow_id_len = c.flow_id.size();
  h.files_root = c.files_root.c_str();
  h.files_root_len = c.files_root.size();
  h.log = [](void* ctx, int32_t level, const char* m, size_t n) {
    proto::Writer w(proto::Kind::kLog, 0);
    w.i32(level).str(std::string_view(m, n));
    client(ctx)->send(w.frame());
  };
  h.output = [](void* ctx, int32_t stream, const char* data, size_t n) {
    proto::Writer w(proto::Kind::kOutput, 0);
    w.i32(stream).str(std::string_view(data, n));
    client(ctx)->send(w.frame());
  };
  h.counter_add = [](void* ctx, const char* name, size_t n, int64_t delta) {
    proto::Writer w(proto::Kind::kCounter, 0);
    w.str(std::string_view(name, n)).i64(delta);
    client(ctx)->send(w.frame());
  };
  h.gauge_set = [](void* ctx, const char* name, size_t n, double v) {
    proto::Writer w(proto::Kind::kGauge, 0);
    w.str(std::string_view(name, n)).f64(v);
    client(ctx)->send(w.frame());
  };
  h.is_cancelled = [](void* ctx) {
    return static_cast<int32_t>(client(ctx)->call(proto::Fn::kIsCancelled).number);
  };
  h.is_paused = [](void* ctx) {
    return static_cast<int32_t>(client(ctx)->call(proto::Fn::kIsPaused).number);
  };
  h.is_stop_requested = [](void* ctx) {
    return static_cast<int32_t>(client(ctx)->call(proto::Fn::kIsStopRequested).number);
  };
  h.stop_fd = [](void* ctx) -> int32_t {
    HostClient* c = client(ctx);
    const int fd = c->stop_wake.fd(false);  // before the watcher can raise it
    std::call_once(c->stop_watcher, [c] {
      std::thread([c] {
        for (;;) {
          if (c->call(proto::Fn::kIsStopRequested).number != 0 ||
              c->call(proto::Fn::kIsCancelled).number != 0) {
            c->stop_wake.raise();
            return;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }).detach();
    });
    return fd;
  };
  h.now_ms = [](void*) -> int64_t { return wallClockMs(); };
  h.state_get = [](void* ctx, const char* k, size_t n, sluice_value_sink sink, void* sctx) {
    auto r = client(ctx)->call(proto::Fn::kStateGet, std::string_view(k, n));
    if (r.status == SLUICE_OK) sink(sctx, r.text.data(), r.text.size());
    return r.status;
  };
  h.state_put = [](void* ctx, const char* k, size_t n, const char* v, size_t vn) {
    return client(ctx)
        ->call(proto::Fn::kStatePut, std::string_view(k, n), std::string_view(v, vn))
        .status;
  };
  h.state_delete = [](void* ctx, const char* k, size_t n) {
    return client(ctx)->call(proto::Fn::kStateDelete, std::string_view(k, n)).status;
  };
  h.state_lookup = [](void* ctx, const char* k, size_t n, sluice_value_sink sink, void* sctx) {
    auto r = client(ctx)->call(proto::Fn::kStateLookup, std::string_view(k, n));
    if (r.status == SLUICE_OK) sink(sctx, r.text.data(), r.text.size());
    return r.status;
  };
}

void reply(HostClient& c, uint32_t id, int32_t status, uint32_t next, const std::string& error) {
  proto::Writer w(proto::Kind::kResult, id);
  w.i32(status).u32(next).str(error);
  c.send(w.frame());
}

// Runs one hook, catching anything a plugin lets escape, and answers it.
template <class Fn>
void runHook(HostClient& c, uint32_t id, const char* name, Fn&& fn, uint32_t next = 0) {
  std::array<char, 1024> buf;  // not zeroed (a call per step): empty, and cut at its end
  buf.front() = buf.back() = '\0';
  sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};
  int32_t rc;
  (void)name;
  try {
    rc = fn(&e, &next);
  } catch (const std::exception& ex) {
    reply(c, id, proto::kHookThrew, next, ex.what());
    return;
  } catch (...) {
    reply(c, id, proto::kHookThrew, next, "");
    return;
  }
  buf.back() = '\0';
  reply(c, id, rc, next, rc == SLUICE_OK ? "" : (buf[0] != '\0' ? buf.data() : "no message"));
}

// The checked copy of flow type `name` in an opened plugin; null when it has none.
const sluice_flow_type* findType(const OpenedPlugin& plugin, const std::string& name) {
  for (const auto& t : plugin.info.types) {
    if (t.name == name) return &t.def;
  }
  return nullptr;
}

// A validation host: answers kValidate frames until EOF, loading each plugin file once.
int runValidations(int fd, std::string first) {
  HostClient c(fd);
  std::map<std::string, OpenedPlugin> libraries;  // each file opened (and checked) once
  std::optional<std::string> body = std::move(first);
  for (; body; body = proto::readFrame(fd)) {
    proto::Reader r(*body);
    if (r.kind() != proto::Kind::kValidate) return 2;
    const std::string file = r.str();
    const std::string type_name = r.str();
    const std::string config = r.str();
    std::vector<std::pair<std::string, std::string>> problems;
    int32_t rc = SLUICE_OK;
    try {
      auto it = libraries.find(file);
      std::string reason;
      if (it == libraries.end()) {
        if (auto opened = openPlugin(file, &reason)) {
          it = libraries.emplace(file, std::move(*opened)).first;
        }
      }
      const sluice_flow_type* type =
          it == libraries.end() ? nullptr : findType(it->second, type_name);
      if (type == nullptr || type->validate == nullptr) {
        problems.emplace_back(
            "", reason.empty() ? "host found no validate hook of flow type '" + type_name + "'"
                               : "host refused the plugin: " + reason);
        rc = SLUICE_ERROR;
      } else {
        sluice_problems sink{
            sizeof(sluice_problems), &problems,
            [](void* ctx, const char* path, size_t path_len, const char* msg, size_t msg_len) {
              static_cast<std::vector<std::pair<std::string, std::string>>*>(ctx)->emplace_back(
                  std::string(path, path_len), std::string(msg, msg_len));
            }};
        rc = type->validate(config.data(), config.size(), &sink);
      }
    } catch (const std::exception& e) {
      problems.emplace_back("", std::string("validate hook threw an exception: ") + e.what());
      rc = SLUICE_ERROR;
    } catch (...) {
      problems.emplace_back("", "validate hook threw an exception");
      rc = SLUICE_ERROR;
    }
    proto::Writer w(proto::Kind::kValidateResult, r.id());
    w.i32(rc).u32(static_cast<uint32_t>(problems.size()));
    for (const auto& [path, msg] : problems) w.str(path).str(msg);
    c.send(w.frame());
  }
  return 0;
}

}  // namespace

int runFlowHost(int fd) {
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [flow-host %P] %v");
  // The socket must not outlive this process in a child the plugin starts: close it on exec.
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  HostClient c(fd);
  auto first = proto::readFrame(fd);
  if (!first) return 0;
  proto::Reader create(*first);
  if (create.kind() == proto::Kind::kValidate) return runValidations(fd, *first);
  if (create.kind() != proto::Kind::kCreate) return 2;
  const std::string file = create.str();
  const std::string type_name = create.str();
  c.flow_id = create.str();
  c.files_root = create.str();
  const std::string config = create.str();
  bindHostTable(c);

  // The same checks as the engine's (core/plugins/plugin_abi): a zeroed copy of every struct.
  std::string reason;
  auto opened = openPlugin(file, &reason);
  if (!opened) {
    reply(c, create.id(), SLUICE_ERROR, 0, "host refused " + file + ": " + reason);
    return 1;
  }
  const sluice_flow_type* type = findType(*opened, type_name);
  if (type == nullptr) {
    reply(c, create.id(), SLUICE_ERROR, 0,
          "host found no flow type '" + type_name + "' in " + file);
    return 1;
  }
  // Hook calls for the main thread. The reader runs from before create, so that a constructor
  // that calls a host function gets its answer.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;  // guarded by mu
  std::thread reader([&] {
    while (auto body = proto::readFrame(fd)) {
      proto::Reader r(*body);
      if (r.kind() == proto::Kind::kCallReply) {
        HostClient::CallResult res;
        res.status = r.i32();
        res.number = r.i64();
        res.text = r.str();
        c.deliver(r.id(), std::move(res));
        continue;
      }
      std::lock_guard lock(mu);
      queue.push_back(std::move(*body));
      cv.notify_one();
    }
    ::_exit(0);  // the engine is gone: so is this host
  });
  reader.detach();

  void* instance = nullptr;
  runHook(c, create.id(), "create", [&](sluice_error* e, uint32_t*) {
    return type->create(&c.table, config.data(), config.size(), &instance, e);
  });

  std::thread runner;
  for (;;) {
    std::string body;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !queue.empty(); });
      body = std::move(queue.front());
      queue.pop_front();
    }
    proto::Reader r(body);
    const uint32_t id = r.id();
    switch (r.kind()) {
      case proto::Kind::kStart:
        runHook(c, id, "start",
                [&](sluice_error* e, uint32_t*) { return type->start(instance, e); });
        break;
      case proto::Kind::kStop: {
        int32_t mode = r.i32();
        runHook(c, id, "stop",
                [&](sluice_error* e, uint32_t*) { return type->stop(instance, mode, e); });
        break;
      }
      case proto::Kind::kPause:
        runHook(c, id, "pause", [&](sluice_error* e, uint32_t*) {
          return type->pause != nullptr ? type->pause(instance, e) : SLUICE_OK;
        });
        break;
      case proto::Kind::kResume:
        runHook(c, id, "resume", [&](sluice_error* e, uint32_t*) {
          return type->resume != nullptr ? type->resume(instance, e) : SLUICE_OK;
        });
        break;
      case proto::Kind::kStep: {
        uint32_t next = r.u32();
        runHook(
            c, id, "step", [&](sluice_error* e, uint32_t* n) { return type->step(instance, n, e); },
            next);
        break;
      }
      case proto::Kind::kReconfigure: {
        std::string cfg = r.str();
        runHook(c, id, "reconfigure", [&](sluice_error* e, uint32_t*) {
          return type->reconfigure(instance, cfg.data(), cfg.size(), e);
        });
        break;
      }
      case proto::Kind::kRun:
        if (runner.joinable()) runner.join();
        runner = std::thread([&c, type, instance, id] {
          runHook(c, id, "run", [&](sluice_error* e, uint32_t*) { return type->run(instance, e); });
        });
        break;
      case proto::Kind::kDestroy:
        if (runner.joinable()) runner.join();
        try {
          if (instance != nullptr) type->destroy(instance);
        } catch (...) {
        }
        reply(c, id, SLUICE_OK, 0, "");
        opened->library.reset();  // the plugin's shutdown hook, once for this load
        ::_exit(0);
      default:
        break;
    }
  }
}

}  // namespace sluice
