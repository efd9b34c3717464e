#include "api/routes/responses.hpp"

#include <cmath>

#include "core/model/json.hpp"

namespace sluice::api {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void writeProblems(Writer& w, const std::vector<Problem>& details) {
  w.StartArray();
  for (const auto& p : details) {
    w.StartObject();
    if (p.index) {
      w.Key("index");
      w.Uint64(*p.index);
    }
    if (!p.flow_id.empty()) {
      w.Key("flow_id");
      json::writeString(w, p.flow_id);
    }
    if (!p.path.empty()) {
      w.Key("path");
      json::writeString(w, p.path);
    }
    w.Key("message");
    json::writeString(w, p.message);
    w.EndObject();
  }
  w.EndArray();
}

std::string done(rapidjson::StringBuffer& b) { return std::string(b.GetString(), b.GetSize()); }

void writeStatus(Writer& w, const FlowStatus& s) {
  w.StartObject();
  w.Key("flow_id");
  json::writeString(w, s.id);
  w.Key("status");
  w.String(toString(s.state).data(), static_cast<rapidjson::SizeType>(toString(s.state).size()));
  w.Key("desired");
  w.String(toString(s.desired).data(),
           static_cast<rapidjson::SizeType>(toString(s.desired).size()));
  w.Key("type");
  json::writeString(w, s.type);
  w.Key("type_version");  // the version the flow runs (or would start on); null: none loaded
  if (s.type_version.empty()) {
    w.Null();
  } else {
    json::writeString(w, s.type_version);
  }
  w.Key("since");
  json::writeString(w, formatTime(s.since));
  if (!s.error.empty()) {
    w.Key("error");
    json::writeString(w, s.error);
  }
  if (s.clustered) {  // docs/cluster.md: the owner node and its fencing epoch
    w.Key("node");
    if (s.node.empty()) {
      w.Null();  // not assigned yet
    } else {
      json::writeString(w, s.node);
    }
    w.Key("epoch");
    w.Uint64(s.epoch);
  }
  if (!s.operation.empty()) {
    w.Key("operation");
    json::writeString(w, s.operation);
    if (s.deadline) {
      w.Key("deadline");
      json::writeString(w, formatTime(*s.deadline));
    }
  }
  if (s.restarts || s.restart_count > 0) {
    w.Key("restart_count");
    w.Uint(s.restart_count);
  }
  if (s.next_restart_at) {
    w.Key("next_restart_at");
    json::writeString(w, formatTime(*s.next_restart_at));
  }
  if (s.scheduled) {
    w.Key("next_run_at");  // null: suspended (paused), or a schedule that never fires
    if (s.next_run_at) {
      json::writeString(w, formatTime(*s.next_run_at));
    } else {
      w.Null();
    }
  }
  if (s.has_after) {
    // runtime.after: the upstream runs it still waits for (empty: none; it starts, or started).
    w.Key("waiting_for");
    w.StartArray();
    for (const auto& wait : s.waiting_for) {
      w.StartObject();
      w.Key("flow_id");
      json::writeString(w, wait.flow_id);
      w.Key("on");
      json::writeString(w, std::string(toString(wait.on)));
      w.Key("last_result");  // how its last run since this flow's last start ended; null: none
      if (wait.last_result == RunResult::kNone) {
        w.Null();
      } else {
        json::writeString(w, std::string(toString(wait.last_result)));
      }
      if (wait.missing) {
        w.Key("missing");  // deleted with ?force=true
        w.Bool(true);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("runs");  // runs begun, and the last one (null: never ran): durable
  w.Uint64(s.runs);
  w.Key("last_run");
  const std::string last_run = runRecordJson(s.last_run);
  w.RawValue(last_run.data(), last_run.size(),
             s.last_run.started ? rapidjson::kObjectType : rapidjson::kNullType);
  w.Key("metrics");
  w.StartObject();
  for (const auto& [name, value] : s.counters) {
    json::writeString(w, name);
    w.Int64(value);
  }
  for (const auto& [name, value] : s.gauges) {
    json::writeString(w, name);
    if (std::isfinite(value)) {
      w.Double(value);
    } else {
      w.Null();
    }
  }
  w.EndObject();
  w.EndObject();
}

}  // namespace

int httpStatus(ErrorKind kind, NotFoundAs not_found) {
  switch (kind) {
    case ErrorKind::kInvalid:
      return 400;
    case ErrorKind::kNotFound:
      return not_found == NotFoundAs::k404 ? 404 : 400;
    case ErrorKind::kConflict:
      return 409;
    case ErrorKind::kPrecondition:
      return 412;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kInternal:
      return 500;
  }
  return 500;
}

std::string errorBody(const std::string& message, const std::vector<Problem>& details) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("error");
  json::writeString(w, message);
  if (!details.empty()) {
    w.Key("details");
    writeProblems(w, details);
  }
  w.EndObject();
  return done(b);
}

std::string parseErrorBody(const std::string& message, size_t offset) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("error");
  json::writeString(w, "malformed JSON: " + message);
  w.Key("offset");
  w.Uint64(offset);
  w.EndObject();
  return done(b);
}

std::string statusBody(const FlowStatus& s) {
  rapidjson::StringBuffer b;
  Writer w(b);
  writeStatus(w, s);
  return done(b);
}

std::string statusMapBody(const std::vector<FlowStatus>& all) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  for (const auto& s : all) {
    json::writeString(w, s.id);
    writeStatus(w, s);
  }
  w.EndObject();
  return done(b);
}

std::string commandBody(Command c, const std::vector<CommandDetail>& details) {
  const char* summary = "Flows started";
  switch (c) {
    case Command::kStart:
      summary = "Flows started";
      break;
    case Command::kStop:
      summary = "Flows stopped";
      break;
    case Command::kPause:
      summary = "Flows paused";
      break;
    case Command::kResume:
      summary = "Flows resumed";
      break;
  }
  // 100,000 flows answer in one body (4 MB): written by hand, byte for byte what a writer
  // writes (json::appendString), on the HTTP thread after the last flow answered.
  std::string out;
  out.reserve(48 + details.size() * 48);
  out += R"({"status":)";
  json::appendString(out, summary);
  out += R"(,"details":[)";
  for (size_t i = 0; i < details.size(); ++i) {
    const auto& d = details[i];
    if (i != 0) out += ',';
    out += R"({"flow_id":)";
    json::appendString(out, d.flow_id);
    out += R"(,"status":)";
    json::appendString(out, toString(d.state));
    if (!d.error.empty()) {
      out += R"(,"error":)";
      json::appendString(out, d.error);
    }
    if (d.pending) out += R"(,"pending":true)";
    out += '}';
  }
  out += "]}";
  return out;
}

std::string createdBody(const std::vector<std::string>& ids) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("status");
  w.String("Flows created");
  w.Key("flow_ids");
  w.StartArray();
  for (const auto& id : ids) json::writeString(w, id);
  w.EndArray();
  w.EndObject();
  return done(b);
}

std::string validateBody(const std::vector<Problem>& problems) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("valid");
  w.Bool(problems.empty());
  w.Key("details");
  writeProblems(w, problems);
  w.EndObject();
  return done(b);
}

std::string deletedBody(const std::string& id, const Outcome& outcome) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  w.Key("status");
  w.String("Flow deleted");
  w.Key("flow_id");
  json::writeString(w, id);
  if (!outcome.error.empty()) {
    w.Key("warning");
    json::writeString(w, "the flow did not stop cleanly: " + outcome.error);
  }
  w.EndObject();
  return done(b);
}

}  // namespace sluice::api
