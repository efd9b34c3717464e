// Test plugin `fault`: a step flow that misbehaves in one hook, the way real plugins do.
//   in: "create" | "start" | "step" | "stop" | "pause" | "resume" | "destroy"
//   do: "segv" | "abort" | "exit0" | "hang" | "throw" | "error" | "hog" | "hostcall" | "fork"
//       | "forkwait"
// "hostcall" calls host functions that need an answer (state_get, is_cancelled) and goes on.
// "fork" starts `sleep 30` (fork + exec) and "forkwait" a forked copy of itself that sleeps 30 s
// (no exec: it keeps every descriptor); the child's pid is the gauge `child_pid`.
//   hang_ms: how long "hang" lasts, ignoring cancellation (default 600000)
//   interval_ms: delay between steps (default 5); each step adds 1 to `steps`
// "hog" allocates and touches 16 MB more on each call of the hook, keeping it.
//   times: N   misbehave only the first N times (counted in the flow's durable state, so the
//              count survives crashes and restarts); 0 = always (default)
//   every: N   misbehave only on every Nth call of the hook in this instance (calls N, 2N, ...;
//              counted in memory, so a restarted instance starts over): with in "step", a
//              crash on a schedule (about every N * interval_ms). 0 or 1 = every call (default)
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sluice/sdk/flow.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using sluice::sdk::Status;

class Fault : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "fault";
  static constexpr const char* kDescription = "Test flow that crashes, hangs or leaks on demand.";

  Fault(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host),
        in_(config.getString("in", "")),
        do_(config.getString("do", "")),
        hang_ms_(config.getInt("hang_ms", 600000)),
        interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", 5))),
        times_(config.getInt("times", 0)),
        every_(config.getInt("every", 0)) {
    Status s = act("create");
    if (!s.isOk()) throw std::runtime_error(s.message());
  }

  ~Fault() override { act("destroy"); }

  Status start() override { return act("start"); }
  Status stop(sluice::sdk::StopMode) override { return act("stop"); }
  Status pause() override { return act("pause"); }
  Status resume() override { return act("resume"); }
  Status step(sluice::sdk::StepControl& control) override {
    host().counterAdd("steps");
    control.nextIn(interval_ms_);
    return act("step");
  }

 private:
  Status act(const char* hook) {
    if (in_ != hook) return Status::ok();
    if (every_ > 1 && ++calls_ % every_ != 0) return Status::ok();
    if (times_ > 0) {
      int64_t done = std::stoll(host().stateGet("faults").value_or("0"));
      if (done >= times_) return Status::ok();
      host().statePut("faults", std::to_string(done + 1));
    }
    if (do_ == "segv") {
      // A wild (not null) pointer: UBSan's null check would report a null store as an error
      // exit instead of letting the segfault happen.
      volatile int* p = reinterpret_cast<volatile int*>(static_cast<uintptr_t>(16));
      *p = 42;  // NOLINT: the point of this plugin
    } else if (do_ == "abort") {
      std::abort();
    } else if (do_ == "exit0") {
      std::_Exit(0);
    } else if (do_ == "hang") {
      std::this_thread::sleep_for(std::chrono::milliseconds(hang_ms_));
    } else if (do_ == "throw") {
      throw std::runtime_error(std::string("fault: injected exception in ") + hook);
    } else if (do_ == "error") {
      return Status::error(std::string("fault: injected error in ") + hook);
    } else if (do_ == "hostcall") {
      host().stateGet("hostcall");
      if (host().cancelled()) return Status::error("fault: cancelled during hostcall");
      host().counterAdd("hostcalls");
    } else if (do_ == "fork" || do_ == "forkwait") {
      const pid_t child = ::fork();
      if (child == 0) {
        if (do_ == "fork") ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
        ::sleep(30);
        ::_exit(0);
      }
      host().gaugeSet("child_pid", static_cast<double>(child));
    } else if (do_ == "hog") {
      hog_.emplace_back(16 * 1024 * 1024);
      std::memset(hog_.back().data(), 1, hog_.back().size());
      host().gaugeSet("hog_mb", static_cast<double>(hog_.size() * 16));
    }
    return Status::ok();
  }

  std::string in_;
  std::string do_;
  int64_t hang_ms_;
  uint32_t interval_ms_;
  int64_t times_;
  int64_t every_;
  int64_t calls_ = 0;
  std::vector<std::vector<char>> hog_;
};

}  // namespace

SLUICE_PLUGIN("fault", "0.1.0", Fault)
