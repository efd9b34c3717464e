#include "core/model/run_record.hpp"

#include "core/model/json.hpp"
#include "core/model/wall_clock.hpp"

namespace sluice {
namespace {

int64_t toMs(RunRecord::Time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

RunRecord::Time fromMs(int64_t ms) {
  return RunRecord::Time(
      std::chrono::duration_cast<RunRecord::Time::duration>(std::chrono::milliseconds(ms)));
}

std::optional<RunResult> resultNamed(std::string_view s) {
  for (RunResult r :
       {RunResult::kNone, RunResult::kSucceeded, RunResult::kFailed, RunResult::kCancelled}) {
    if (toString(r) == s) return r;
  }
  return std::nullopt;
}

}  // namespace

std::string storedRunRecord(const RunRecord& r) {
  if (!r.started && !r.due) return "";
  // Written twice per run on the flow's strand (100,000 flows started at once: 100,000 of them),
  // so by hand instead of through a writer's buffer; parseStoredRunRecord() reads it back.
  std::string out;
  out.reserve(96 + r.error.size());
  auto append_time = [&out](const std::optional<RunRecord::Time>& t) {
    if (t) {
      out += std::to_string(toMs(*t));
    } else {
      out += "null";
    }
  };
  out += R"({"started":)";
  append_time(r.started);  // null: never ran, only the last firing is kept
  out += R"(,"ended":)";
  append_time(r.ended);
  out += R"(,"result":)";
  json::appendString(out, toString(r.result));
  out += R"(,"error":)";
  json::appendString(out, r.error);
  if (r.due) {
    out += R"(,"due":)";
    append_time(r.due);
  }
  out += '}';
  return out;
}

RunRecord parseStoredRunRecord(std::string_view text) {
  RunRecord r;
  if (text.empty()) return r;
  rapidjson::Document doc;
  json::ParseError ignored;
  if (!json::parse(text, doc, &ignored) || !doc.IsObject()) return r;
  auto due = doc.FindMember("due");
  if (due != doc.MemberEnd() && due->value.IsInt64()) r.due = fromMs(due->value.GetInt64());
  auto started = doc.FindMember("started");
  if (started == doc.MemberEnd() || !started->value.IsInt64()) return r;
  r.started = fromMs(started->value.GetInt64());
  auto ended = doc.FindMember("ended");
  if (ended != doc.MemberEnd() && ended->value.IsInt64()) r.ended = fromMs(ended->value.GetInt64());
  auto result = doc.FindMember("result");
  if (result != doc.MemberEnd() && result->value.IsString()) {
    r.result = resultNamed(result->value.GetString()).value_or(RunResult::kNone);
  }
  auto error = doc.FindMember("error");
  if (error != doc.MemberEnd() && error->value.IsString()) r.error = error->value.GetString();
  if (r.result == RunResult::kNone) {
    // Begun and never ended: the engine stopped while it ran.
    r.result = RunResult::kCancelled;
    r.error = std::string(kRunInterrupted);
  }
  return r;
}

std::string runRecordJson(const RunRecord& r) {
  if (!r.started) return "null";
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&w](std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("started");
  str(formatTime(*r.started));
  w.Key("ended");
  if (r.ended) {
    str(formatTime(*r.ended));
  } else {
    w.Null();
  }
  w.Key("result");
  if (r.result == RunResult::kNone) {
    w.Null();
  } else {
    str(toString(r.result));
  }
  w.Key("error");
  if (r.error.empty()) {
    w.Null();
  } else {
    str(r.error);
  }
  w.EndObject();
  return buf.GetString();
}

}  // namespace sluice
