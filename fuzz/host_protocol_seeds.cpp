// Writes the seed corpus of fuzz_host_protocol: one file per typical stream of frames, built with
// proto::Writer. Usage: host_protocol_seeds <dir> (fuzz/corpus/host_protocol is its output).
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "core/isolation/host_protocol.hpp"

namespace proto = sluice::proto;
using Kind = proto::Kind;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: host_protocol_seeds <dir>\n";
    return 2;
  }
  auto w = [](Kind k, uint32_t id) { return proto::Writer(k, id); };
  std::vector<std::pair<std::string, std::string>> seeds;
  seeds.emplace_back("create", w(Kind::kCreate, 1)
                                   .str("/usr/lib/sluice/plugins/ticker.so")
                                   .str("ticker")
                                   .str("orders")
                                   .str("/var/lib/sluice/files")
                                   .str("{\"interval_ms\":1000}")
                                   .frame());
  seeds.emplace_back("hooks", w(Kind::kStart, 2).frame() + w(Kind::kStep, 3).u32(1000).frame() +
                                  w(Kind::kPause, 4).frame() + w(Kind::kResume, 5).frame() +
                                  w(Kind::kStop, 6).i32(1).frame() + w(Kind::kDestroy, 7).frame());
  seeds.emplace_back("reconfigure_run", w(Kind::kReconfigure, 8).str("{\"a\":[1,2]}").frame() +
                                            w(Kind::kRun, 9).frame());
  seeds.emplace_back("result", w(Kind::kResult, 2).i32(0).u32(250).str("").frame() +
                                   w(Kind::kResult, 3).i32(-1).u32(0).str("step failed").frame());
  seeds.emplace_back("log_metrics", w(Kind::kLog, 0).i32(2).str("hello from the host").frame() +
                                        w(Kind::kCounter, 0).str("lines_total").i64(42).frame() +
                                        w(Kind::kGauge, 0).str("lag_seconds").f64(0.5).frame());
  seeds.emplace_back("call_state", w(Kind::kCall, 11)
                                           .u8(static_cast<uint8_t>(proto::Fn::kStatePut))
                                           .str("offset")
                                           .str("1234")
                                           .frame() +
                                       w(Kind::kCallReply, 11).i32(0).i64(0).str("").frame() +
                                       w(Kind::kCall, 12)
                                           .u8(static_cast<uint8_t>(proto::Fn::kStateGet))
                                           .str("offset")
                                           .str("")
                                           .frame() +
                                       w(Kind::kCallReply, 12).i32(0).i64(0).str("1234").frame());
  seeds.emplace_back(
      "call_flags",
      w(Kind::kCall, 13).u8(static_cast<uint8_t>(proto::Fn::kIsCancelled)).str("").str("").frame() +
          w(Kind::kCallReply, 13).i32(0).i64(1).str("").frame());
  // Not well formed: a frame cut short, and a length field past kMaxFrame.
  std::string cut = w(Kind::kResult, 4).i32(0).u32(0).str("cut here").frame();
  seeds.emplace_back("truncated", cut.substr(0, cut.size() - 3));
  seeds.emplace_back("oversized", std::string("\x01\x00\x00\x05\x14\x01\x00\x00\x00", 9));
  for (const auto& [name, bytes] : seeds) {
    std::ofstream out(std::string(argv[1]) + "/" + name + ".bin", std::ios::binary);
    out << bytes;
    if (!out) {
      std::cerr << "cannot write " << name << "\n";
      return 1;
    }
  }
  return 0;
}
