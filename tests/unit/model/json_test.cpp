#include "core/model/json.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

bool parses(const std::string& text, json::ParseError* err = nullptr) {
  rapidjson::Document doc;
  return json::parse(text, doc, err);
}

TEST(Json, ParsesValidDocuments) {
  EXPECT_TRUE(parses(R"([{"a":1,"b":[true,null,"x"]}])"));
  EXPECT_TRUE(parses(" {} "));
  EXPECT_TRUE(parses(R"("\u00e9t\u00e9")"));
}

TEST(Json, RefusesTrailingBytesWithOffset) {
  json::ParseError err;
  EXPECT_FALSE(parses("[1] x", &err));
  EXPECT_EQ(err.offset, 4u);
  EXPECT_NE(err.message.find("offset 4"), std::string::npos);
}

TEST(Json, RefusesMalformed) {
  json::ParseError err;
  EXPECT_FALSE(parses("[1,", &err));
  EXPECT_FALSE(parses("", &err));
  EXPECT_FALSE(parses("{'a':1}", &err));
  EXPECT_EQ(err.offset, 1u);
}

TEST(Json, DepthLimit) {
  std::string ok = std::string(json::kMaxDepth, '[') + std::string(json::kMaxDepth, ']');
  EXPECT_TRUE(parses(ok));
  std::string deep = std::string(json::kMaxDepth + 1, '[') + std::string(json::kMaxDepth + 1, ']');
  json::ParseError err;
  EXPECT_FALSE(parses(deep, &err));
  EXPECT_NE(err.message.find("nesting deeper"), std::string::npos);
  // Hostile depth does not overflow the stack.
  EXPECT_FALSE(parses(std::string(1'000'000, '[')));
  std::string objs;
  for (int i = 0; i < 100000; ++i) objs += "{\"a\":";
  EXPECT_FALSE(parses(objs));
}

TEST(Json, RefusesDuplicateKeysAtAnyDepth) {
  json::ParseError err;
  EXPECT_FALSE(parses(R"({"a":1,"a":2})", &err));
  EXPECT_NE(err.message.find("duplicate key \"a\""), std::string::npos);
  EXPECT_FALSE(parses(R"([{"x":{"b":1,"b":1}}])"));
  EXPECT_TRUE(parses(R"({"a":{"a":1},"b":{"a":2}})"));
}

TEST(Json, RefusesInvalidUtf8AndNul) {
  EXPECT_FALSE(parses("[\"\xff\"]"));
  EXPECT_FALSE(parses("[\"\xc3\"]"));
  json::ParseError err;
  EXPECT_FALSE(parses(std::string("[1]\0[2]", 7), &err));
  EXPECT_EQ(err.offset, 3u);
}

TEST(Json, WritesCompactly) {
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(R"({ "a" : [1, 2.5, "é"] })", doc, nullptr));
  EXPECT_EQ(json::write(doc), R"({"a":[1,2.5,"é"]})");
  std::string s;
  json::appendString(s, "q\"\n");
  EXPECT_EQ(s, R"("q\"\n")");
}

}  // namespace
}  // namespace sluice
