// The flows' logs (core/logs): escaping, line splitting, rotation within the bound, and tails
// that span the rotated file.
#include "core/logs/flow_logs.hpp"

#include <gtest/gtest.h>
#include <sluice/plugin.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

std::filesystem::path freshDir(const char* name) {
  auto dir = std::filesystem::path(SLUICE_TEST_TMP) / "flow-logs" / name;
  std::filesystem::remove_all(dir);
  return dir;
}

std::vector<std::string> texts(const std::vector<LogLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.text);
  return out;
}

TEST(FlowLogs, EscapesWhatIsNotUtf8AndControlCharacters) {
  EXPECT_EQ(escapeLogText("plain text\tand tab"), "plain text\tand tab");
  EXPECT_EQ(escapeLogText("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(escapeLogText("bad \xff byte"), "bad \\xff byte");
  EXPECT_EQ(escapeLogText("cut \xe2\x82"), "cut \\xe2\\x82");
  EXPECT_EQ(escapeLogText("overlong \xc0\xaf"), "overlong \\xc0\\xaf");
  EXPECT_EQ(escapeLogText("surrogate \xed\xa0\x80"), "surrogate \\xed\\xa0\\x80");
  EXPECT_EQ(escapeLogText(std::string("nul \0 bell \a", 12)), "nul \\x00 bell \\x07");
  EXPECT_EQ(escapeLogText("a \\xff is text"), "a \\\\xff is text") << "unambiguous";
}

TEST(FlowLogs, SplitsLinesPerStreamAndLongOnesAtCharacterBoundaries) {
  LineSplitter s;
  std::vector<std::string> lines;
  auto collect = [&](std::string_view l) { lines.emplace_back(l); };
  s.feed("one\ntw", collect);
  s.feed("o\r\nthr", collect);
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two"}));
  s.flush(collect);
  EXPECT_EQ(lines.back(), "thr");
  lines.clear();
  // 16383 ASCII bytes then a 3-byte character: the cut comes before the character.
  std::string longer(FlowLogs::kMaxLineBytes - 1, 'x');
  longer += "\xe2\x82\xac tail\n";
  s.feed(longer, collect);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), FlowLogs::kMaxLineBytes - 1);
  EXPECT_EQ(lines[1], "\xe2\x82\xac tail");
  // A line of exactly the limit is one line, not that and an empty one.
  lines.clear();
  s.feed(std::string(FlowLogs::kMaxLineBytes, 'y') + "\n", collect);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), FlowLogs::kMaxLineBytes);
  EXPECT_EQ(escapeLogText("ab\x01"
                          "cd",
                          4),
            "ab")
      << "never half an escape";
  EXPECT_EQ(escapeLogText("ab\x01"
                          "cd",
                          6),
            "ab\\x01");
  EXPECT_EQ(escapeLogText("\xe2\x82\xac!", 2), "") << "never half a character";
  EXPECT_EQ(utf8Prefix("ab\xe2\x82\xac", 4), 2u);
  EXPECT_EQ(utf8Prefix("ab\xe2\x82\xac", 5), 5u);
  EXPECT_EQ(utf8Prefix("ab\xe2\x82\xac", 3), 2u);
  EXPECT_EQ(utf8Prefix("abc", 10), 3u);
}

TEST(FlowLogs, RotatesWithinTheBoundAndTailsAcrossTheRotatedFile) {
  const auto dir = freshDir("rotate");
  FlowLogs logs(dir, 4096);
  for (int i = 1; i <= 500; ++i) logs.append("f", SLUICE_OUTPUT_STDOUT, {std::to_string(i)});
  EXPECT_LE(std::filesystem::file_size(dir / "f.log"), 4096u);
  EXPECT_LE(std::filesystem::file_size(dir / "f.log.1"), 4096u);
  auto all = logs.tail("f", 10'000);
  ASSERT_TRUE(all.ok());
  ASSERT_FALSE(all.value().empty());
  EXPECT_EQ(all.value().back().text, "500");
  EXPECT_NE(all.value().front().text, "1") << "the oldest lines were rotated away";
  // Consecutive numbers across the two files.
  const auto t = texts(all.value());
  for (size_t i = 1; i < t.size(); ++i) EXPECT_EQ(std::stoi(t[i]), std::stoi(t[i - 1]) + 1);
  auto three = logs.tail("f", 3);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(texts(three.value()), (std::vector<std::string>{"498", "499", "500"}));
  EXPECT_EQ(three.value()[0].stream, "stdout");
  EXPECT_EQ(three.value()[0].time.size(), 24u);
  // A line that escapes past the bound is shortened to fit one file.
  logs.append("big", SLUICE_OUTPUT_STDERR, {std::string(5000, '\x01')});
  EXPECT_LE(std::filesystem::file_size(dir / "big.log"), 4096u);
  auto big = logs.tail("big", 1);
  ASSERT_TRUE(big.ok());
  ASSERT_EQ(big.value().size(), 1u);
  EXPECT_EQ(big.value()[0].stream, "stderr");
  EXPECT_EQ(big.value()[0].text.substr(0, 8), "\\x01\\x01");
  // Unknown flows have an empty log; remove deletes both files.
  auto none = logs.tail("nobody", 5);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none.value().empty());
  logs.remove("f");
  EXPECT_FALSE(std::filesystem::exists(dir / "f.log"));
  EXPECT_FALSE(std::filesystem::exists(dir / "f.log.1"));
}

// Tails read while lines are appended and rotated see whole lines in order, never a torn one.
TEST(FlowLogs, TailsWhileAppendingSeeWholeLinesInOrder) {
  const auto dir = freshDir("concurrent");
  FlowLogs logs(dir, 8192);
  std::thread writer([&] {
    for (int i = 1; i <= 5000; ++i) logs.append("f", SLUICE_OUTPUT_STDOUT, {std::to_string(i)});
  });
  for (int round = 0; round < 200; ++round) {
    auto t = logs.tail("f", 50);
    ASSERT_TRUE(t.ok());
    const auto lines = texts(t.value());
    for (size_t i = 1; i < lines.size(); ++i) {
      ASSERT_EQ(std::stoi(lines[i]), std::stoi(lines[i - 1]) + 1) << "round " << round;
    }
  }
  writer.join();
}

}  // namespace
}  // namespace sluice
