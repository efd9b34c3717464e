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

// Found by fuzz_json (docs/fuzzing.md, K1): an escape may not decode to a lone surrogate.
TEST(Json, RefusesEscapedLoneSurrogates) {
  json::ParseError err;
  EXPECT_FALSE(parses(R"(["\udc00"])", &err));
  EXPECT_NE(err.message.find("not valid UTF-8"), std::string::npos) << err.message;
  EXPECT_FALSE(parses(R"({"\udfff":1})"));
  EXPECT_FALSE(parses(R"(["\ud800"])"));
  EXPECT_TRUE(parses(R"(["\ud83d\ude00"])"));  // a pair is one code point
}

// K4: a number past a double's range is refused, not read as infinity.
TEST(Json, RefusesNumbersBeyondADouble) {
  json::ParseError err;
  EXPECT_FALSE(parses("[1.8e308]", &err));
  EXPECT_NE(err.message.find("out of range"), std::string::npos) << err.message;
  EXPECT_FALSE(parses("[-1.8e308]"));
  EXPECT_TRUE(parses("[1.7976931348623157e308]"));
}

// K2: numbers read back as exactly what was written.
TEST(Json, NumbersRoundTripExactly) {
  for (const char* text : {"[0.30000000000000004]", "[0.1]", "[1e-320]", "[123456789.123456789]",
                           "[1111100000000000000000000000000000002775781120330840291]"}) {
    rapidjson::Document a, b;
    ASSERT_TRUE(json::parse(text, a, nullptr)) << text;
    const std::string once = json::write(a);
    ASSERT_TRUE(json::parse(once, b, nullptr)) << once;
    EXPECT_EQ(json::write(b), once) << text;
    EXPECT_EQ(a[0].GetDouble(), b[0].GetDouble()) << text;
  }
}

TEST(Json, WritesCompactly) {
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(R"({ "a" : [1, 2.5, "é"] })", doc, nullptr));
  EXPECT_EQ(json::write(doc), R"({"a":[1,2.5,"é"]})");
  std::string s;
  json::appendString(s, "q\"\n");
  EXPECT_EQ(s, R"("q\"\n")");
}

// appendString quotes a string that needs no escape as it is, and escapes exactly what
// RapidJSON's writer escapes otherwise: the two agree on every byte value.
TEST(Json, AppendStringAgreesWithTheWriter) {
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  all += std::string("\0x", 3);  // a NUL inside
  std::vector<std::string> cases = {"",        "plain id-1.2/x", "é ü", "tab\there", "back\\slash",
                                    "quote\"", "\x7f",           all};
  for (int c = 0; c < 256; ++c) cases.push_back(std::string(1, static_cast<char>(c)) + "z");
  for (const auto& text : cases) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    std::string got = "x";
    json::appendString(got, text);
    EXPECT_EQ(got, "x" + std::string(buffer.GetString(), buffer.GetSize())) << text;
  }
}

}  // namespace
}  // namespace sluice
