// libFuzzer target: the host-protocol decoder between the engine and a flow host process
// (core/isolation/host_protocol.hpp). Arbitrary bytes are decoded twice:
//  - as a stream on a socket: proto::readFrame splits it into frames, and each frame body is
//    decoded into the fields its kind carries, as the engine's and the host's reader loops do;
//  - as one frame body handed straight to proto::Reader.
//
// Invariants beyond "no crash":
//  - the frames readFrame returns, each with its length field, are exactly the prefix of the
//    stream; it stops exactly where the rest is short, or declares a length below 5 or above
//    kMaxFrame;
//  - proto::Reader fails (ok() false) exactly when a reference reader finds the body too short
//    for the fields of its kind, and a failed getter yields zero or empty values;
//  - the fields of a body that decoded, written again with proto::Writer, give back the bytes
//    they were read from.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/isolation/host_protocol.hpp"
#include "fuzz_common.hpp"

namespace {

namespace proto = sluice::proto;
using Kind = proto::Kind;

enum class Field { kU8, kU32, kI32, kI64, kF64, kStr };

// The payload of each kind, as documented in host_protocol.hpp and read in process_instance.cpp
// (engine side) and flow_host.cpp (host side). Unknown kinds carry nothing.
std::vector<Field> payloadOf(Kind kind) {
  using F = Field;
  switch (kind) {
    case Kind::kCreate:
      return {F::kStr, F::kStr, F::kStr, F::kStr, F::kStr};
    case Kind::kStop:
      return {F::kI32};
    case Kind::kStep:
      return {F::kU32};
    case Kind::kReconfigure:
      return {F::kStr};
    case Kind::kCallReply:
      return {F::kI32, F::kI64, F::kStr};
    case Kind::kResult:
      return {F::kI32, F::kU32, F::kStr};
    case Kind::kLog:
      return {F::kI32, F::kStr};
    case Kind::kCounter:
      return {F::kStr, F::kI64};
    case Kind::kGauge:
      return {F::kStr, F::kF64};
    case Kind::kCall:
      return {F::kU8, F::kStr, F::kStr};
    default:
      return {};
  }
}

uint32_t le32(std::string_view b, size_t at) {
  uint32_t v = 0;
  for (int k = 3; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(b[at + k]);
  return v;
}

// Reference: how many bytes the header and fields take, or 0 when the body is too short.
size_t referenceSize(std::string_view body, const std::vector<Field>& fields) {
  size_t pos = 5;
  if (body.size() < pos) return 0;
  for (Field f : fields) {
    size_t need = 0;
    switch (f) {
      case Field::kU8:
        need = 1;
        break;
      case Field::kU32:
      case Field::kI32:
        need = 4;
        break;
      case Field::kI64:
      case Field::kF64:
        need = 8;
        break;
      case Field::kStr:
        if (body.size() - pos < 4) return 0;
        need = 4 + static_cast<size_t>(le32(body, pos));
        break;
    }
    if (body.size() - pos < need) return 0;
    pos += need;
  }
  return pos;
}

using Value = std::variant<uint64_t, double, std::string>;

// Decodes `body` with proto::Reader, writes the fields again with proto::Writer and compares.
void checkBody(std::string_view body) {
  proto::Reader r(body);
  const std::vector<Field> fields = payloadOf(r.kind());
  std::vector<Value> values;
  for (Field f : fields) {
    switch (f) {
      case Field::kU8:
        values.emplace_back(uint64_t{r.u8()});
        break;
      case Field::kU32:
        values.emplace_back(uint64_t{r.u32()});
        break;
      case Field::kI32:
        values.emplace_back(static_cast<uint64_t>(static_cast<uint32_t>(r.i32())));
        break;
      case Field::kI64:
        values.emplace_back(static_cast<uint64_t>(r.i64()));
        break;
      case Field::kF64:
        values.emplace_back(r.f64());
        break;
      case Field::kStr:
        values.emplace_back(r.str());
        break;
    }
  }
  const size_t used = referenceSize(body, fields);
  FUZZ_CHECK(r.ok() == (used != 0));
  if (!r.ok()) {
    // Once failed, every getter gives zero or empty.
    FUZZ_CHECK(r.u32() == 0 && r.i64() == 0 && r.str().empty() && !r.ok());
    return;
  }
  FUZZ_CHECK(r.id() == le32(body, 1));
  FUZZ_CHECK(static_cast<uint8_t>(r.kind()) == static_cast<unsigned char>(body[0]));
  proto::Writer w(r.kind(), r.id());
  for (size_t i = 0; i < fields.size(); ++i) {
    const Value& v = values[i];
    switch (fields[i]) {
      case Field::kU8:
        w.u8(static_cast<uint8_t>(std::get<uint64_t>(v)));
        break;
      case Field::kU32:
        w.u32(static_cast<uint32_t>(std::get<uint64_t>(v)));
        break;
      case Field::kI32:
        w.i32(static_cast<int32_t>(static_cast<uint32_t>(std::get<uint64_t>(v))));
        break;
      case Field::kI64:
        w.i64(static_cast<int64_t>(std::get<uint64_t>(v)));
        break;
      case Field::kF64:
        w.f64(std::get<double>(v));
        break;
      case Field::kStr:
        w.str(std::get<std::string>(v));
        break;
    }
  }
  const std::string& frame = w.frame();
  FUZZ_CHECK(frame.size() == used + 4);
  FUZZ_CHECK(le32(frame, 0) == used);
  FUZZ_CHECK(std::string_view(frame).substr(4) == body.substr(0, used));
}

// True when readFrame would meet a frame that declares more than 1 MiB and is cut short: it
// then allocates the declared length (up to kMaxFrame, 64 MiB) before the read fails. That
// costs ~10 ms under ASan, and mutations of such inputs kept the run at ~250 exec/s; the path
// is the same as for a short truncated frame, and LLVMFuzzerInitialize runs it once at full size.
bool truncatedHugeFrame(std::string_view stream) {
  size_t pos = 0;
  while (stream.size() - pos >= 4) {
    const uint32_t n = le32(stream, pos);
    if (n < 5 || n > proto::kMaxFrame) return false;
    if (stream.size() - pos - 4 < n) return n > (1u << 20);
    pos += 4 + n;
  }
  return false;
}

// The stream through a socket pair, as the engine and the host read it.
void checkStream(std::string_view stream) {
  int fds[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  size_t sent = 0;
  while (sent < stream.size()) {
    ssize_t n = ::send(fds[1], stream.data() + sent, stream.size() - sent, MSG_NOSIGNAL);
    FUZZ_CHECK(n > 0);
    sent += static_cast<size_t>(n);
  }
  ::close(fds[1]);  // EOF after the bytes
  size_t pos = 0;
  while (auto body = proto::readFrame(fds[0])) {
    FUZZ_CHECK(body->size() >= 5 && body->size() <= proto::kMaxFrame);
    FUZZ_CHECK(stream.size() - pos >= 4 + body->size());
    FUZZ_CHECK(le32(stream, pos) == body->size());
    FUZZ_CHECK(stream.substr(pos + 4, body->size()) == *body);
    pos += 4 + body->size();
    checkBody(*body);
  }
  ::close(fds[0]);
  // Where it stopped: the rest is too short, or its length field is out of bounds.
  const size_t rest = stream.size() - pos;
  if (rest >= 4) {
    const uint32_t n = le32(stream, pos);
    FUZZ_CHECK(n < 5 || n > proto::kMaxFrame || rest - 4 < n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Once: a frame of exactly kMaxFrame declared and cut short, then one past kMaxFrame.
  std::string stream(4, '\0');
  const uint32_t n = proto::kMaxFrame;
  std::memcpy(stream.data(), &n, 4);
  stream += std::string(16, 'x');
  checkStream(stream);
  const uint32_t over = proto::kMaxFrame + 1;
  std::memcpy(stream.data(), &over, 4);
  checkStream(stream);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  checkBody(bytes);
  // A socket pair buffers ~200 KiB: keep the stream below that so one thread can write it all.
  if (size <= 64 * 1024 && !truncatedHugeFrame(bytes)) checkStream(bytes);
  return 0;
}
