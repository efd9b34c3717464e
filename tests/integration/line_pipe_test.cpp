// The bundled line-pipe plugin moving real data through the real binary.
#include <fstream>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

class LinePipeTest : public ApiFixture {
 protected:
  std::filesystem::path files() { return dir_ / "data" / "files"; }
  void append(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((files() / rel).parent_path());
    std::ofstream(files() / rel, std::ios::app | std::ios::binary) << text;
  }
  std::vector<std::string> lines(const std::string& rel) {
    std::ifstream in(files() / rel);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  bool waitLines(const std::string& rel, size_t n) {
    return waitFor([&] { return lines(rel).size() >= n; }, 20s);
  }
  static std::string numbered(int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) s += "line " + std::to_string(i) + "\n";
    return s;
  }
};

TEST_F(LinePipeTest, RefusesPathsOutsideTheFilesRoot) {
  for (const char* cfg :
       {R"({"input":"/etc/passwd","output":"o"})", R"({"input":"a/../../x","output":"o"})",
        R"({"input":"i","output":"../o"})", R"({"input":"i"})", R"({"input":"i","output":"i"})",
        R"({"input":"i","output":"o","transform":"rot13"})", R"({"input":5,"output":"o"})"}) {
    auto r = post("/flows",
                  std::string(R"([{"flow_id":"lp","type":"line-pipe","config":)") + cfg + "}]");
    EXPECT_EQ(r.status, 400) << cfg << " " << r.body;
    EXPECT_NE(r.body.find("/config"), std::string::npos) << r.body;
  }
  auto v = post("/flows/validate",
                R"([{"flow_id":"lp","type":"line-pipe","config":{"input":"/abs","output":"o"}}])");
  ASSERT_EQ(v.status, 200);
  EXPECT_FALSE(parseJson(v.body)["valid"].GetBool());
  // a symlink leading out of the root is refused at start
  std::filesystem::create_directories(files());
  std::filesystem::create_symlink("/etc", files() / "etc");
  ASSERT_EQ(
      post(
          "/flows",
          R"([{"flow_id":"sym","type":"line-pipe","config":{"input":"etc/hostname","output":"o"}}])")
          .status,
      201);
  auto r = patch(R"({"command":"start","flow_ids":["sym"]})");
  EXPECT_NE(r.body.find("resolves outside the files root"), std::string::npos) << r.body;
  EXPECT_EQ(statusOf("sym"), "failed");
}

TEST_F(LinePipeTest, TransformsLines) {
  append("in.txt", "Hello World\nsay \"hi\"\tnow\n");
  ASSERT_EQ(post("/flows", R"([
    {"flow_id":"id","type":"line-pipe","config":{"input":"in.txt","output":"out/id.txt","interval_ms":10}},
    {"flow_id":"up","type":"line-pipe","config":{"input":"in.txt","output":"out/up.txt","transform":"upper","interval_ms":10}},
    {"flow_id":"lo","type":"line-pipe","config":{"input":"in.txt","output":"out/lo.txt","transform":"lower","interval_ms":10}},
    {"flow_id":"js","type":"line-pipe","config":{"input":"in.txt","output":"out/js.txt","transform":"json","interval_ms":10}}])")
                .status,
            201);
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  ASSERT_TRUE(waitLines("out/js.txt", 2) && waitLines("out/id.txt", 2) &&
              waitLines("out/up.txt", 2) && waitLines("out/lo.txt", 2));
  EXPECT_EQ(lines("out/id.txt"), (std::vector<std::string>{"Hello World", "say \"hi\"\tnow"}));
  EXPECT_EQ(lines("out/up.txt"), (std::vector<std::string>{"HELLO WORLD", "SAY \"HI\"\tNOW"}));
  EXPECT_EQ(lines("out/lo.txt"), (std::vector<std::string>{"hello world", "say \"hi\"\tnow"}));
  auto js = lines("out/js.txt");
  EXPECT_EQ(js[0], R"({"line":"Hello World"})");
  EXPECT_EQ(js[1], R"({"line":"say \"hi\"\tnow"})");
  EXPECT_TRUE(jsonEqual(js[1], R"({"line":"say \"hi\"\tnow"})"));
  // a line is taken only once it is complete
  ASSERT_TRUE(waitFor([&] { return metric("id", "lines") == 2; }, 20s));
  append("in.txt", "half");
  append("in.txt", " and half\n");
  ASSERT_TRUE(waitFor([&] { return metric("id", "lines") == 3; }, 20s));
  EXPECT_EQ(lines("out/id.txt").back(), "half and half");
  EXPECT_EQ(lines("out/id.txt").size(), 3u);  // "half" alone was never taken as a line
}

TEST_F(LinePipeTest, SoftStopsAndRestartsLoseAndRepeatNothing) {
  ASSERT_EQ(
      post(
          "/flows",
          R"([{"flow_id":"lp","type":"line-pipe","config":{"input":"in.log","output":"out.log","batch_lines":7,"interval_ms":5}}])")
          .status,
      201);
  append("in.log", numbered(0, 100));
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  append("in.log", numbered(100, 200));
  ASSERT_EQ(patch(R"({"command":"stop","type":0})").status, 200);
  append("in.log", numbered(200, 300));
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  ASSERT_EQ(patch(R"({"command":"pause"})").status, 200);
  append("in.log", numbered(300, 400));
  ASSERT_EQ(patch(R"({"command":"resume"})").status, 200);
  // an engine restart (SIGTERM: soft stop) resumes from the checkpoint
  server_->kill(SIGTERM);
  append("in.log", numbered(400, 500));
  startServer();
  ASSERT_TRUE(waitLines("out.log", 500));
  auto out = lines("out.log");
  ASSERT_EQ(out.size(), 500u);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(out[i], "line " + std::to_string(i));
}

TEST_F(LinePipeTest, KillNineLosesNoLine) {
  ASSERT_EQ(
      post(
          "/flows",
          R"([{"flow_id":"lp","type":"line-pipe","config":{"input":"in.log","output":"out.log","batch_lines":3,"interval_ms":1}}])")
          .status,
      201);
  append("in.log", numbered(0, 3000));
  ASSERT_EQ(patch(R"({"command":"start"})").status, 200);
  ASSERT_TRUE(waitLines("out.log", 300));
  server_->kill(SIGKILL);
  startServer();
  ASSERT_TRUE(waitFor(
      [&] {
        auto out = lines("out.log");
        return !out.empty() && out.back() == "line 2999";
      },
      30s));
  // at-least-once: every line is there, in order; a batch cut by the kill may repeat
  auto out = lines("out.log");
  int next = 0;
  for (const auto& l : out) {
    int n = std::stoi(l.substr(5));
    ASSERT_LE(n, next) << "line " << next << " was lost";
    if (n == next) ++next;
  }
  EXPECT_EQ(next, 3000);
  EXPECT_LE(out.size(), 3000u + 3u);
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

// A flow deleted mid-stream and created again under the same id is a new flow: it starts from
// the beginning of its input, never from the deleted flow's checkpoint (written by the step in
// flight after the DELETE, or left before it).
TEST_F(LinePipeTest, RecreatedFlowStartsFromTheBeginning) {
  const int total = 3000;
  append("big.txt", numbered(0, total));
  const auto until = std::chrono::steady_clock::now() + 4s;
  for (int round = 0; round < 2 || std::chrono::steady_clock::now() < until; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string out = "out/r" + std::to_string(round) + ".txt";
    const std::string flow = R"([{"flow_id":"lp","type":"line-pipe","config":{"input":"big.txt",)"
                             R"("output":")" +
                             out + R"(","batch_lines":1,"interval_ms":1}}])";
    ASSERT_EQ(post("/flows", flow).status, 201);
    ASSERT_EQ(patch(R"({"command":"start","flow_ids":["lp"]})").status, 200);
    if (round > 0) {
      // The new flow's first line is the input's first line, and it copies everything.
      ASSERT_TRUE(waitLines(out, 1));
      EXPECT_EQ(lines(out)[0], "line 0");
    }
    // Mid-stream: some lines copied, not all.
    ASSERT_TRUE(waitFor([&] { return lines(out).size() >= 20; }, 20s));
    EXPECT_LT(lines(out).size(), static_cast<size_t>(total));
    ASSERT_EQ(del("/flows/lp").status, 200);
  }
}

}  // namespace
}  // namespace sluice::test
