// libFuzzer target: the configuration parser (sluice::parseFlowSpec) on parsed JSON, as the API
// calls it: every element of an array (POST /flows, POST /flows/validate), or one object with
// the id from the path (PUT /flows/{id}).
//
// Invariants beyond "no crash" (and no exception: the API would answer 500; known issues K1, K4):
//  - a refusal appends at least one problem, each with a message and a JSON-pointer path;
//  - an accepted spec has a valid id and type name, values inside their documented ranges, and
//    runtime.isolation / restart.policy that are exactly one of the allowed words (known
//    issue K3);
//  - its config_json is a JSON object, and its record_json parses to an object that
//    parseFlowSpec accepts again as an equal spec (the restore path of the engine).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "core/model/flow_spec.hpp"
#include "core/model/json.hpp"
#include "core/model/semver.hpp"
#include "fuzz_common.hpp"

namespace {

using sluice::FlowSpec;
using sluice::Problem;
using sluice::fuzz::knownIssue;

constexpr std::string_view kPathId = "fuzz-flow";

std::string_view view(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

// The string member `key` of object `v`, or nothing.
const rapidjson::Value* stringMember(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString() ? &it->value : nullptr;
}

// False (after flagging K3) when an accepted spec holds a word the parser should have refused.
bool wordsExact(const rapidjson::Value& element) {
  auto rt = element.FindMember("runtime");
  if (rt == element.MemberEnd()) return true;
  if (const auto* iso = stringMember(rt->value, "isolation")) {
    if (view(*iso) != "thread" && view(*iso) != "process") {
      FUZZ_CHECK(view(*iso).find('\0') != std::string_view::npos);
      knownIssue("K3", "runtime.isolation with a NUL byte read as the word before it");
      return false;
    }
  }
  auto rs = rt->value.FindMember("restart");
  if (rs == rt->value.MemberEnd()) return true;
  if (const auto* policy = stringMember(rs->value, "policy")) {
    if (view(*policy) != "never" && view(*policy) != "on-failure") {
      FUZZ_CHECK(view(*policy).find('\0') != std::string_view::npos);
      knownIssue("K3", "runtime.restart.policy with a NUL byte read as the word before it");
      return false;
    }
  }
  return true;
}

bool sameRuntime(const sluice::RuntimeOptions& a, const sluice::RuntimeOptions& b) {
  return a.start_timeout_ms == b.start_timeout_ms && a.stop_timeout_ms == b.stop_timeout_ms &&
         a.isolation == b.isolation && a.memory_limit_mb == b.memory_limit_mb &&
         a.restart.on_failure == b.restart.on_failure &&
         a.restart.max_restarts == b.restart.max_restarts &&
         a.restart.backoff_ms == b.restart.backoff_ms &&
         a.restart.max_backoff_ms == b.restart.max_backoff_ms &&
         a.restart.reset_after_ms == b.restart.reset_after_ms;
}

void checkAccepted(const rapidjson::Value& element, std::string_view path_id,
                   const FlowSpec& spec) {
  FUZZ_CHECK(sluice::isValidFlowId(spec.id));
  // A type name, optionally pinned to versions (name@1, name@1.2, name@1.2.3).
  std::string pin_error;
  const auto pin = sluice::parseTypePin(spec.type, &pin_error);
  FUZZ_CHECK(pin.has_value());
  FUZZ_CHECK(sluice::isValidTypeName(pin->name));
  FUZZ_CHECK(pin->str() == spec.type || pin->parts > 0);
  if (!path_id.empty()) FUZZ_CHECK(spec.id == path_id);
  const auto& rt = spec.runtime;
  FUZZ_CHECK(rt.start_timeout_ms >= 1 && rt.start_timeout_ms <= sluice::kMaxTimeoutMs);
  FUZZ_CHECK(rt.stop_timeout_ms >= 1 && rt.stop_timeout_ms <= sluice::kMaxTimeoutMs);
  FUZZ_CHECK(rt.memory_limit_mb == 0 || rt.isolation == sluice::Isolation::kProcess);
  FUZZ_CHECK(rt.memory_limit_mb <= 1'048'576);
  FUZZ_CHECK(rt.restart.max_backoff_ms >= rt.restart.backoff_ms);
  if (!wordsExact(element)) return;

  rapidjson::Document config;
  FUZZ_CHECK(sluice::json::parse(spec.config_json, config, nullptr));
  FUZZ_CHECK(config.IsObject());

  // The record re-serializes to JSON that parses, and the engine's restore reads it back equal.
  rapidjson::Document record;
  FUZZ_CHECK(sluice::json::parse(spec.record_json, record, nullptr));
  FUZZ_CHECK(record.IsObject());
  const auto* id = stringMember(record, "flow_id");
  FUZZ_CHECK(id != nullptr && view(*id) == spec.id);
  if (!element.HasMember("flow_id")) {  // a PUT without flow_id: the record names it first
    FUZZ_CHECK(view(record.MemberBegin()->name) == "flow_id");
  }
  FlowSpec restored;
  std::vector<Problem> problems;
  FUZZ_CHECK(sluice::parseFlowSpec(record, "", &restored, problems));
  FUZZ_CHECK(problems.empty());
  FUZZ_CHECK(restored.id == spec.id && restored.type == spec.type);
  FUZZ_CHECK(sameRuntime(restored.runtime, spec.runtime));
  if (restored.record_json != spec.record_json || restored.config_json != spec.config_json) {
    FUZZ_CHECK(!sluice::fuzz::numbersExact(spec.record_json, record));
    knownIssue("K2", "a stored record changed its numbers when read back");
  }
}

void checkOne(const rapidjson::Value& element, std::string_view path_id) {
  FlowSpec spec;
  std::vector<Problem> problems(1);  // an earlier element's problem: must stay untouched
  problems[0].message = "earlier";
  bool ok = false;
  try {
    ok = sluice::parseFlowSpec(element, path_id, &spec, problems);
  } catch (const std::exception& e) {
    if (!sluice::fuzz::allStringsValid(element)) {
      knownIssue("K1", "parseFlowSpec threw on a string that is not valid UTF-8");
      return;
    }
    if (!sluice::fuzz::allNumbersFinite(element)) {
      knownIssue("K4", "parseFlowSpec threw on a number parsed as infinity");
      return;
    }
    std::fprintf(stderr, "parseFlowSpec threw: %s\n", e.what());
    FUZZ_CHECK(!"parseFlowSpec threw");
  }
  FUZZ_CHECK(problems[0].message == "earlier");
  if (!ok) {
    FUZZ_CHECK(problems.size() > 1);
    for (size_t i = 1; i < problems.size(); ++i) {
      const Problem& p = problems[i];
      FUZZ_CHECK(!p.message.empty());
      FUZZ_CHECK(p.path.empty() || p.path[0] == '/');
      FUZZ_CHECK(!p.index.has_value() && p.flow_id.empty());
    }
    return;
  }
  FUZZ_CHECK(problems.size() == 1);
  checkAccepted(element, path_id, spec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  rapidjson::Document doc;
  if (!sluice::json::parse(text, doc, nullptr)) return 0;
  if (doc.IsArray()) {
    for (const auto& element : doc.GetArray()) checkOne(element, "");
  } else {
    checkOne(doc, kPathId);
    checkOne(doc, "");
  }
  return 0;
}
