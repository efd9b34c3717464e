// The protocol between the engine and a flow host process (process isolation), over a
// socketpair. Every message is one frame:
//
//   u32 length (bytes after this field) | u8 kind | u32 id | payload
//
// little-endian; strings are u32 length + bytes; doubles are their 8 IEEE bytes. `id` pairs a
// request with its reply (0 for one-way messages). Documented in docs/isolation.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::proto {

enum class Kind : uint8_t {
  // engine -> host: hook calls, answered by kResult with the same id
  kCreate = 1,  // str plugin_file, str type, str flow_id, str files_root, str config
  kStart = 2,
  kStop = 3,  // i32 mode
  kPause = 4,
  kResume = 5,
  kStep = 6,         // u32 next_delay_ms (default)
  kReconfigure = 7,  // str config
  kRun = 8,
  kDestroy = 9,     // then the host exits
  kCallReply = 10,  // answer to a kCall: i32 status, i64 number, str text
  kValidate = 11,   // first frame of a validation host: str plugin_file, str type, str config;
                    // answered by kValidateResult; more may follow until EOF
  // host -> engine
  kResult = 20,          // i32 status, u32 next_delay_ms, str error
  kLog = 21,             // one-way: i32 level, str message
  kCounter = 22,         // one-way: str name, i64 delta
  kGauge = 23,           // one-way: str name, f64 value
  kCall = 24,            // host function needing an answer: u8 fn, str key, str value
  kValidateResult = 25,  // i32 status, u32 n, n x (str path, str message)
  kOutput = 26,          // one-way: i32 stream, str bytes (host function `output`, ABI 1.4)
};

enum class Fn : uint8_t {
  kIsCancelled = 1,
  kIsPaused = 2,
  kIsStopRequested = 3,
  kStateGet = 4,
  kStatePut = 5,
  kStateDelete = 6,
  kStateLookup = 7,  // status 0 with the value, 2 absent, 1 store error
};

/// Builds a frame.
class Writer {
 public:
  Writer(Kind kind, uint32_t id) {
    buf_.resize(4);
    u8(static_cast<uint8_t>(kind));
    u32(id);
  }
  Writer& u8(uint8_t v) {
    buf_.push_back(static_cast<char>(v));
    return *this;
  }
  Writer& u32(uint32_t v) { return raw(&v, 4); }
  Writer& i32(int32_t v) { return raw(&v, 4); }
  Writer& i64(int64_t v) { return raw(&v, 8); }
  Writer& f64(double v) { return raw(&v, 8); }
  Writer& str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    buf_.append(s.data(), s.size());
    return *this;
  }
  /// The frame, length field filled in.
  const std::string& frame() {
    uint32_t n = static_cast<uint32_t>(buf_.size() - 4);
    std::memcpy(buf_.data(), &n, 4);
    return buf_;
  }

 private:
  Writer& raw(const void* p, size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string buf_;
};

/// Reads the fields of one frame (without its length field); every getter fails softly
/// (ok() turns false) on a short frame.
class Reader {
 public:
  explicit Reader(std::string_view body) : body_(body) {
    kind_ = static_cast<Kind>(u8());
    id_ = u32();
  }
  Kind kind() const { return kind_; }
  uint32_t id() const { return id_; }
  bool ok() const { return ok_; }
  uint8_t u8() {
    uint8_t v = 0;
    raw(&v, 1);
    return v;
  }
  uint32_t u32() {
    uint32_t v = 0;
    raw(&v, 4);
    return v;
  }
  int32_t i32() {
    int32_t v = 0;
    raw(&v, 4);
    return v;
  }
  int64_t i64() {
    int64_t v = 0;
    raw(&v, 8);
    return v;
  }
  double f64() {
    double v = 0;
    raw(&v, 8);
    return v;
  }
  std::string str() {
    uint32_t n = u32();
    if (!ok_ || n > body_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(body_.substr(pos_, n));
    pos_ += n;
    return s;
  }

 private:
  void raw(void* p, size_t n) {
    if (!ok_ || n > body_.size() - pos_) {
      ok_ = false;
      return;
    }
    std::memcpy(p, body_.data() + pos_, n);
    pos_ += n;
  }
  std::string_view body_;
  size_t pos_ = 0;
  bool ok_ = true;
  Kind kind_;
  uint32_t id_;
};

/// Largest frame either side accepts (a config or a state value).
inline constexpr uint32_t kMaxFrame = 64 * 1024 * 1024;
/// kResult status of a hook that threw: the text is what() (empty for an exception that is not a
/// std::exception). The engine side rethrows it, so that the error reads as in a thread.
inline constexpr int32_t kHookThrew = -2;
/// What the engine side throws for a hook that threw something other than a std::exception.
struct ForeignException {};

/// Writes a whole frame; false when the peer is gone.
bool writeFrame(int fd, const std::string& frame);
/// Reads one frame body; nothing on EOF, error or an oversized frame.
std::optional<std::string> readFrame(int fd);

/// In a child just forked from `parent`: SIGKILL when the parent dies (PR_SET_PDEATHSIG; exits
/// at once when it is gone already), `fd` as its descriptor 3 (kept across exec), every
/// descriptor above closed, no signal blocked. Async-signal-safe.
void enterHelperChild(pid_t parent, int fd);
/// Forks and execs `exe` as `name mode 3` with one end of a new socketpair of `type`
/// (SOCK_STREAM, SOCK_SEQPACKET) as its descriptor 3 (enterHelperChild). *pid and *fd (the
/// caller's end, close-on-exec) on success; false with errno set and *failed_at the step.
enum class SpawnStep { kSocket, kFork };
bool forkExecHelper(const std::string& exe, const char* name, const char* mode, int type,
                    pid_t* pid, int* fd, SpawnStep* failed_at);
/// Forks and execs `exe --flow-host 3` with one end of a new socketpair as its descriptor 3
/// (close_range on the rest, SIGKILL when the engine dies). *pid and *fd (the engine's end,
/// close-on-exec) on success; false and why in *error.
bool spawnHost(const std::string& exe, pid_t* pid, int* fd, std::string* error);
/// "host process killed by signal 11 (SIGSEGV)", "host process exited with code 3".
std::string describeExit(int wait_status);

}  // namespace sluice::proto
