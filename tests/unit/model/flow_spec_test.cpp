#include "core/model/flow_spec.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

struct Parsed {
  bool ok;
  FlowSpec spec;
  std::vector<Problem> problems;
};

Parsed parseSpec(const std::string& text, std::string_view path_id = "") {
  rapidjson::Document doc;
  EXPECT_TRUE(json::parse(text, doc, nullptr)) << text;
  Parsed p;
  p.ok = parseFlowSpec(doc, path_id, &p.spec, p.problems);
  return p;
}

TEST(FlowSpec, MinimalDefaultsToNoop) {
  auto p = parseSpec(R"({"flow_id":"orders"})");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.spec.id, "orders");
  EXPECT_EQ(p.spec.type, "noop");
  EXPECT_EQ(p.spec.config_json, "{}");
  EXPECT_EQ(p.spec.record_json, R"({"flow_id":"orders"})");
  EXPECT_EQ(p.spec.runtime.stop_timeout_ms, RuntimeOptions{}.stop_timeout_ms);
}

TEST(FlowSpec, KeepsEveryOtherMemberVerbatim) {
  auto p = parseSpec(
      R"({"flow_id":"a","type":"ticker","config":{"interval_ms":5},"name":"N","x":[1,{"y":null}]})");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.spec.config_json, R"({"interval_ms":5})");
  EXPECT_EQ(
      p.spec.record_json,
      R"({"flow_id":"a","type":"ticker","config":{"interval_ms":5},"name":"N","x":[1,{"y":null}]})");
}

TEST(FlowSpec, FlowIdRules) {
  EXPECT_TRUE(isValidFlowId("a"));
  EXPECT_TRUE(isValidFlowId("9.a_b-c"));
  EXPECT_TRUE(isValidFlowId(std::string(128, 'x')));
  EXPECT_FALSE(isValidFlowId(std::string(129, 'x')));
  EXPECT_FALSE(isValidFlowId(""));
  EXPECT_FALSE(isValidFlowId("-a"));
  EXPECT_FALSE(isValidFlowId(".a"));
  EXPECT_FALSE(isValidFlowId("_a"));
  EXPECT_FALSE(isValidFlowId("a/b"));
  EXPECT_FALSE(isValidFlowId("a b"));
  EXPECT_FALSE(isValidFlowId("é"));
  EXPECT_FALSE(isValidFlowId("status"));
  EXPECT_FALSE(isValidFlowId("commands"));
  EXPECT_FALSE(isValidFlowId("validate"));
  EXPECT_FALSE(parseSpec(R"({"flow_id":"status"})").ok);
  EXPECT_FALSE(parseSpec(R"({"flow_id":7})").ok);
  EXPECT_FALSE(parseSpec(R"({"name":"x"})").ok);
  EXPECT_FALSE(parseSpec(R"([])").ok);
}

TEST(FlowSpec, ReportsEveryProblemWithItsPath) {
  auto p = parseSpec(
      R"({"flow_id":"-x","type":"../evil","config":[],"runtime":{"stop_timeout_ms":0,"bogus":1}})");
  ASSERT_FALSE(p.ok);
  std::vector<std::string> paths;
  for (const auto& pr : p.problems) paths.push_back(pr.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/flow_id", "/type", "/config",
                                             "/runtime/stop_timeout_ms", "/runtime/bogus"}));
}

TEST(FlowSpec, RuntimeSettings) {
  auto p =
      parseSpec(R"({"flow_id":"a","runtime":{"stop_timeout_ms":250,"start_timeout_ms":1000}})");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.spec.runtime.stop_timeout_ms, 250u);
  EXPECT_EQ(p.spec.runtime.start_timeout_ms, 1000u);
  EXPECT_FALSE(parseSpec(R"({"flow_id":"a","runtime":{"stop_timeout_ms":"1"}})").ok);
  EXPECT_FALSE(parseSpec(R"({"flow_id":"a","runtime":{"stop_timeout_ms":1.5}})").ok);
  EXPECT_FALSE(parseSpec(R"({"flow_id":"a","runtime":[]})").ok);
}

// K3 (docs/fuzzing.md): a NUL inside a word is not the word before it.
TEST(FlowSpec, WordsWithANulAreRefused) {
  EXPECT_FALSE(parseSpec(R"({"flow_id":"a","runtime":{"isolation":"process\u0000x"}})").ok);
  EXPECT_FALSE(parseSpec(R"({"flow_id":"a","runtime":{"restart":{"policy":"never\u0000x"}}})").ok);
  EXPECT_TRUE(parseSpec(R"({"flow_id":"a","runtime":{"isolation":"process"}})").ok);
}

TEST(FlowSpec, PutMayOmitFlowIdButMustMatch) {
  auto p = parseSpec(R"({"type":"noop","name":"n"})", "abc");
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.spec.record_json, R"({"flow_id":"abc","type":"noop","name":"n"})");
  auto empty = parseSpec(R"({})", "abc");
  ASSERT_TRUE(empty.ok);
  EXPECT_EQ(empty.spec.record_json, R"({"flow_id":"abc"})");
  EXPECT_FALSE(parseSpec(R"({"flow_id":"other"})", "abc").ok);
  EXPECT_TRUE(parseSpec(R"({"flow_id":"abc"})", "abc").ok);
}

}  // namespace
}  // namespace sluice
