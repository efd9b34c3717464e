#include "core/model/flow_spec.hpp"

#include <array>

#include "core/model/semver.hpp"
#include "core/schedule/cron.hpp"

namespace sluice {
namespace {

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool isNameLike(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!isNameChar(c)) return false;
  }
  return true;
}

void add(std::vector<Problem>& problems, std::string path, std::string message) {
  problems.push_back(Problem{std::nullopt, "", std::move(path), std::move(message)});
}

bool parseTimeout(const rapidjson::Value& v, const char* key, uint32_t* out,
                  std::vector<Problem>& problems) {
  if (!v.IsInt64() || v.GetInt64() < 1 || v.GetInt64() > kMaxTimeoutMs) {
    add(problems, std::string("/runtime/") + key,
        std::string("runtime.") + key + " must be an integer from 1 to " +
            std::to_string(kMaxTimeoutMs));
    return false;
  }
  *out = static_cast<uint32_t>(v.GetInt64());
  return true;
}

bool parseUint(const rapidjson::Value& v, const std::string& path, uint32_t min, uint32_t max,
               uint32_t* out, std::vector<Problem>& problems) {
  if (!v.IsInt64() || v.GetInt64() < min || v.GetInt64() > max) {
    add(problems, path,
        path.substr(1) + " must be an integer from " + std::to_string(min) + " to " +
            std::to_string(max));
    return false;
  }
  *out = static_cast<uint32_t>(v.GetInt64());
  return true;
}

void parseRestart(const rapidjson::Value& v, RestartPolicy* out, std::vector<Problem>& problems) {
  if (!v.IsObject()) {
    add(problems, "/runtime/restart", "runtime.restart must be a JSON object");
    return;
  }
  for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
    std::string key(m->name.GetString(), m->name.GetStringLength());
    std::string path = "/runtime/restart/" + key;
    if (key == "policy") {
      std::string p =
          m->value.IsString() ? std::string(m->value.GetString(), m->value.GetStringLength()) : "";
      if (p == "never" || p == "on-failure") {
        out->on_failure = p == "on-failure";
      } else {
        add(problems, path, "runtime.restart.policy must be \"never\" or \"on-failure\"");
      }
    } else if (key == "max_restarts") {
      parseUint(m->value, path, 0, 1'000'000, &out->max_restarts, problems);
    } else if (key == "backoff_ms") {
      parseUint(m->value, path, 1, 3'600'000, &out->backoff_ms, problems);
    } else if (key == "max_backoff_ms") {
      parseUint(m->value, path, 1, 3'600'000, &out->max_backoff_ms, problems);
    } else if (key == "reset_after_ms") {
      parseUint(m->value, path, 1, 86'400'000, &out->reset_after_ms, problems);
    } else {
      add(problems, path,
          "unknown restart setting \"" + key +
              "\" (known: policy, max_restarts, backoff_ms, max_backoff_ms, reset_after_ms)");
    }
  }
  if (out->max_backoff_ms < out->backoff_ms) {
    add(problems, "/runtime/restart/max_backoff_ms",
        "runtime.restart.max_backoff_ms must not be less than backoff_ms");
  }
}

void parseSchedule(const rapidjson::Value& v, std::optional<ScheduleSpec>* out,
                   std::vector<Problem>& problems) {
  const std::string path = "/runtime/schedule";
  if (!v.IsObject()) {
    add(problems, path, "runtime.schedule must be a JSON object with a \"cron\" expression");
    return;
  }
  ScheduleSpec s;
  bool has_cron = false;
  for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
    std::string key(m->name.GetString(), m->name.GetStringLength());
    const std::string at = path + "/" + key;
    const bool is_string = m->value.IsString();
    const std::string text =
        is_string ? std::string(m->value.GetString(), m->value.GetStringLength()) : "";
    if (key == "cron") {
      has_cron = true;
      std::string error;
      if (!is_string) {
        add(problems, at, "runtime.schedule.cron must be a string such as \"*/5 * * * *\"");
      } else if (!schedule::CronExpr::parse(text, &error)) {
        add(problems, at, "runtime.schedule.cron: " + error);
      } else {
        s.cron = text;
      }
    } else if (key == "timezone") {
      if (!is_string || text.empty() || text.size() > 64) {
        add(problems, at,
            "runtime.schedule.timezone must be an IANA time zone name such as "
            "\"Europe/Berlin\"");
      } else {
        s.timezone = text;
      }
    } else if (key == "overlap") {
      if (text == "skip" && is_string) {
        s.overlap = Overlap::kSkip;
      } else if (text == "queue" && is_string) {
        s.overlap = Overlap::kQueue;
      } else if (text == "replace" && is_string) {
        s.overlap = Overlap::kReplace;
      } else {
        add(problems, at, "runtime.schedule.overlap must be \"skip\", \"queue\" or \"replace\"");
      }
    } else if (key == "catch_up") {
      if (!m->value.IsBool()) {
        add(problems, at, "runtime.schedule.catch_up must be true or false");
      } else {
        s.catch_up = m->value.GetBool();
      }
    } else {
      add(problems, at,
          "unknown schedule setting \"" + key + "\" (known: cron, timezone, overlap, catch_up)");
    }
  }
  if (!has_cron) add(problems, path + "/cron", "runtime.schedule.cron is required");
  *out = s;
}

void parseAfter(const rapidjson::Value& v, std::vector<AfterSpec>* out,
                std::vector<Problem>& problems) {
  const std::string path = "/runtime/after";
  const std::string rule =
      "runtime.after must be an array of {\"flow_id\": \"...\", \"on\": "
      "\"succeeded|failed|completed\"}";
  if (!v.IsArray()) return add(problems, path, rule);
  if (v.Size() > 100) return add(problems, path, "runtime.after lists at most 100 upstream flows");
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const std::string at = path + "/" + std::to_string(i);
    const rapidjson::Value& e = v[i];
    if (!e.IsObject()) {
      add(problems, at, rule);
      continue;
    }
    AfterSpec edge;
    bool has_id = false;
    for (auto m = e.MemberBegin(); m != e.MemberEnd(); ++m) {
      const std::string key(m->name.GetString(), m->name.GetStringLength());
      const std::string text = m->value.IsString()
                                   ? std::string(m->value.GetString(), m->value.GetStringLength())
                                   : std::string();
      if (key == "flow_id") {
        has_id = true;
        if (!m->value.IsString() || !isValidFlowId(text)) {
          add(problems, at + "/flow_id",
              "runtime.after[" + std::to_string(i) + "].flow_id must be the id of a flow");
        } else {
          edge.flow_id = text;
        }
      } else if (key == "on") {
        if (m->value.IsString() && text == "succeeded") {
          edge.on = AfterOn::kSucceeded;
        } else if (m->value.IsString() && text == "failed") {
          edge.on = AfterOn::kFailed;
        } else if (m->value.IsString() && text == "completed") {
          edge.on = AfterOn::kCompleted;
        } else {
          add(problems, at + "/on",
              "runtime.after[" + std::to_string(i) +
                  "].on must be \"succeeded\", \"failed\" or \"completed\"");
        }
      } else {
        add(problems, at + "/" + key,
            "unknown setting \"" + key + "\" of runtime.after[" + std::to_string(i) +
                "] (known: flow_id, on)");
      }
    }
    if (!has_id) {
      add(problems, at + "/flow_id",
          "runtime.after[" + std::to_string(i) + "].flow_id is required");
      continue;
    }
    for (const AfterSpec& seen : *out) {
      if (!edge.flow_id.empty() && seen.flow_id == edge.flow_id) {
        add(problems, at + "/flow_id",
            "runtime.after lists flow '" + edge.flow_id + "' more than once");
      }
    }
    out->push_back(std::move(edge));
  }
}

}  // namespace

std::string_view toString(AfterOn on) {
  switch (on) {
    case AfterOn::kSucceeded:
      return "succeeded";
    case AfterOn::kFailed:
      return "failed";
    case AfterOn::kCompleted:
      return "completed";
  }
  return "succeeded";
}

bool isReservedFlowId(std::string_view id) {
  return id == "status" || id == "commands" || id == "validate";
}

bool isValidFlowId(std::string_view id) {
  return isNameLike(id) && id.front() != '.' && id.front() != '_' && id.front() != '-' &&
         !isReservedFlowId(id);
}

bool isValidTypeName(std::string_view name) { return isNameLike(name); }

bool parseFlowSpec(const rapidjson::Value& v, std::string_view path_id, FlowSpec* out,
                   std::vector<Problem>& problems) {
  const size_t before = problems.size();
  if (!v.IsObject()) {
    add(problems, "", "a configuration must be a JSON object");
    return false;
  }
  // flow_id
  auto id_it = v.FindMember("flow_id");
  if (id_it == v.MemberEnd()) {
    if (path_id.empty()) {
      add(problems, "/flow_id", "flow_id is required");
    } else {
      out->id = std::string(path_id);
    }
  } else if (!id_it->value.IsString()) {
    add(problems, "/flow_id", "flow_id must be a string");
  } else {
    std::string id(id_it->value.GetString(), id_it->value.GetStringLength());
    if (!path_id.empty() && id != path_id) {
      add(problems, "/flow_id",
          "flow_id \"" + id + "\" does not match the flow id of the path \"" +
              std::string(path_id) + "\"");
    } else if (isReservedFlowId(id)) {
      add(problems, "/flow_id", "flow_id \"" + id + "\" is reserved");
    } else if (!isValidFlowId(id)) {
      add(problems, "/flow_id",
          "flow_id must be 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit");
    }
    out->id = std::move(id);
  }
  // type
  out->type = kDefaultFlowType;
  if (auto it = v.FindMember("type"); it != v.MemberEnd()) {
    if (!it->value.IsString()) {
      add(problems, "/type", "type must be a string naming a flow type");
    } else {
      std::string type(it->value.GetString(), it->value.GetStringLength());
      std::string pin_error;
      if (!parseTypePin(type, &pin_error)) add(problems, "/type", "type " + pin_error);
      out->type = std::move(type);
    }
  }
  // config
  out->config_json = "{}";
  if (auto it = v.FindMember("config"); it != v.MemberEnd()) {
    if (!it->value.IsObject()) {
      add(problems, "/config", "config must be a JSON object");
    } else {
      out->config_json = json::write(it->value);
    }
  }
  // runtime
  out->runtime = RuntimeOptions{};
  if (auto it = v.FindMember("runtime"); it != v.MemberEnd()) {
    if (!it->value.IsObject()) {
      add(problems, "/runtime", "runtime must be a JSON object");
    } else {
      for (auto m = it->value.MemberBegin(); m != it->value.MemberEnd(); ++m) {
        std::string key(m->name.GetString(), m->name.GetStringLength());
        if (key == "start_timeout_ms") {
          parseTimeout(m->value, "start_timeout_ms", &out->runtime.start_timeout_ms, problems);
        } else if (key == "stop_timeout_ms") {
          parseTimeout(m->value, "stop_timeout_ms", &out->runtime.stop_timeout_ms, problems);
        } else if (key == "isolation") {
          std::string v = m->value.IsString()
                              ? std::string(m->value.GetString(), m->value.GetStringLength())
                              : "";
          if (v == "thread") {
            out->runtime.isolation = Isolation::kThread;
          } else if (v == "process") {
            out->runtime.isolation = Isolation::kProcess;
          } else {
            add(problems, "/runtime/isolation",
                "runtime.isolation must be \"thread\" or \"process\"");
          }
        } else if (key == "restart") {
          parseRestart(m->value, &out->runtime.restart, problems);
        } else if (key == "schedule") {
          parseSchedule(m->value, &out->runtime.schedule, problems);
        } else if (key == "after") {
          parseAfter(m->value, &out->runtime.after, problems);
        } else if (key == "memory_limit_mb") {
          if (!m->value.IsInt64() || m->value.GetInt64() < 1 || m->value.GetInt64() > 1'048'576) {
            add(problems, "/runtime/memory_limit_mb",
                "runtime.memory_limit_mb must be an integer from 1 to 1048576");
          } else {
            out->runtime.memory_limit_mb = static_cast<uint32_t>(m->value.GetInt64());
          }
        } else {
          add(problems, "/runtime/" + key,
              "unknown runtime setting \"" + key +
                  "\" (known: start_timeout_ms, stop_timeout_ms, isolation, memory_limit_mb, "
                  "restart, schedule, after)");
        }
      }
    }
  }
  if (out->runtime.memory_limit_mb != 0 && out->runtime.isolation != Isolation::kProcess) {
    add(problems, "/runtime/memory_limit_mb",
        "runtime.memory_limit_mb needs \"isolation\": \"process\" (a thread cannot be limited)");
  }
  if (problems.size() != before) return false;
  // The stored record: the object as received, with flow_id first when a PUT omitted it.
  if (id_it == v.MemberEnd()) {
    std::string body = json::write(v);
    std::string record = "{\"flow_id\":";
    json::appendString(record, out->id);
    if (body.size() > 2) record += ",";
    record.append(body, 1, std::string::npos);
    out->record_json = std::move(record);
  } else {
    out->record_json = json::write(v);
  }
  return true;
}

}  // namespace sluice
