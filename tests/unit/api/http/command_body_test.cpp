// A command's answer body (api/routes/responses.cpp), written by hand: byte for byte what a
// RapidJSON writer writes, for every kind of detail and id.
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <vector>

#include "api/routes/responses.hpp"

namespace sluice::api {
namespace {

std::string byWriter(const char* summary, const std::vector<CommandDetail>& details) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("status");
  w.String(summary);
  w.Key("details");
  w.StartArray();
  for (const auto& d : details) {
    w.StartObject();
    w.Key("flow_id");
    w.String(d.flow_id.data(), static_cast<rapidjson::SizeType>(d.flow_id.size()));
    w.Key("status");
    const auto state = toString(d.state);
    w.String(state.data(), static_cast<rapidjson::SizeType>(state.size()));
    if (!d.error.empty()) {
      w.Key("error");
      w.String(d.error.data(), static_cast<rapidjson::SizeType>(d.error.size()));
    }
    if (d.pending) {
      w.Key("pending");
      w.Bool(true);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

TEST(CommandBody, IsWhatAJsonWriterWrites) {
  std::vector<CommandDetail> details;
  EXPECT_EQ(commandBody(Command::kStart, details), byWriter("Flows started", details));
  CommandDetail plain;
  plain.flow_id = "a";
  plain.state = State::kRunning;
  CommandDetail failed;
  failed.flow_id = "quote\" back\\slash \x01 tab\t é";
  failed.state = State::kFailed;
  failed.error = "start hook failed: \"boom\"\n";
  CommandDetail pending;
  pending.flow_id = "remote";
  pending.state = State::kStopped;
  pending.pending = true;
  details = {plain, failed, pending};
  EXPECT_EQ(commandBody(Command::kStart, details), byWriter("Flows started", details));
  EXPECT_EQ(commandBody(Command::kStop, details), byWriter("Flows stopped", details));
  EXPECT_EQ(commandBody(Command::kPause, details), byWriter("Flows paused", details));
  EXPECT_EQ(commandBody(Command::kResume, details), byWriter("Flows resumed", details));
}

}  // namespace
}  // namespace sluice::api
