// The SDK's own JSON reader behind sluice::sdk::Config (no RapidJSON in the plugin headers), and
// the opt-in RapidJSON view.
#include <gtest/gtest.h>

#include <sluice/sdk/config.hpp>
#include <sluice/sdk/rapidjson.hpp>

namespace {

using sluice::sdk::Config;
using sluice::sdk::Json;

TEST(SdkConfig, ReadsEveryKindOfValue) {
  Config c;
  std::string error;
  ASSERT_TRUE(c.parse(R"({"i": -42, "big": 9223372036854775807, "d": 1.5e3, "t": true,
      "n": null, "s": "a\"b\\c\n\u00e9\ud83d\ude00", "a": [1, [2, {}]], "o": {"k": "v"}})",
                      &error))
      << error;
  EXPECT_EQ(c.getInt("i", 0), -42);
  EXPECT_EQ(c.getInt("big", 0), INT64_MAX);
  EXPECT_EQ(c.getDouble("d", 0), 1500.0);
  EXPECT_EQ(c.getDouble("i", 0), -42.0);
  EXPECT_TRUE(c.getBool("t", false));
  EXPECT_TRUE(c.find("n")->isNull());
  EXPECT_EQ(c.getString("s", ""), "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
  ASSERT_EQ(c.find("a")->items().size(), 2u);
  EXPECT_EQ(c.find("a")->items()[1].items()[0].asInt(), 2);
  EXPECT_TRUE(c.find("a")->items()[1].items()[1].isObject());
  EXPECT_EQ(c.find("o")->find("k")->asString(), "v");
  EXPECT_EQ(c.getInt("absent", 7), 7);
  EXPECT_THROW(c.getInt("s", 0), std::invalid_argument);
  EXPECT_THROW(c.getInt("d", 0), std::invalid_argument);
  EXPECT_THROW(c.find("o")->asString(), std::invalid_argument);
  // A number too big for int64 is a double.
  ASSERT_TRUE(c.parse(R"({"x": 92233720368547758070})", &error));
  EXPECT_FALSE(c.find("x")->isInt());
  EXPECT_TRUE(c.find("x")->isNumber());
}

TEST(SdkConfig, RefusesWhatIsNotJsonWithItsOffset) {
  Config c;
  std::string error;
  for (const char* bad :
       {"", "{", "[]", R"({"a":})", R"({"a":1,})", R"({"a":"\x"})", R"({"a":"\ud800"})",
        R"({"a":01x})", R"({"a":1} x)", "{\"a\":\"\x01\"}", R"({"a":tru})"}) {
    EXPECT_FALSE(c.parse(bad, &error)) << bad;
  }
  EXPECT_FALSE(c.parse(R"({"a":1} x)", &error));
  EXPECT_NE(error.find("trailing characters at offset 8"), std::string::npos) << error;
  EXPECT_FALSE(c.parse("[1]", &error));
  EXPECT_EQ(error, "config must be a JSON object");
  std::string deep(300, '[');
  Json out;
  EXPECT_FALSE(Json::parse(deep, &out, &error));
  EXPECT_NE(error.find("nesting"), std::string::npos) << error;
}

TEST(SdkConfig, RapidJsonIsOptIn) {
  Config c;
  std::string error;
  ASSERT_TRUE(c.parse(R"({"list": [1, 2, 3]})", &error));
  auto doc = sluice::sdk::toRapidJson(c);
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["list"].Size(), 3u);
}

}  // namespace
