// Versions side by side, reload without a restart (POST /plugins/reload and SIGHUP), the
// `upgrade` command with rollback, and unloading once nothing uses a version: the real server
// with real plugin files, copied into a plugin directory of the test's own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/model/json.hpp"
#include "fakes/http_client.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

rapidjson::Document parsed(const HttpResponse& r) {
  rapidjson::Document doc;
  EXPECT_TRUE(json::parse(r.body, doc, nullptr)) << r.body;
  return doc;
}

std::string str(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsString()) return "";
  return it->value.GetString();
}

class PluginVersions : public ::testing::Test {
 protected:
  void TearDown() override { ::unsetenv("SLUICE_VERSIONED_HOOKS"); }
  void SetUp() override {
    root_ = fs::path(SLUICE_TEST_TMP) /
            ("plugin-versions-" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    fs::create_directories(dir());
    ::setenv("SLUICE_VERSIONED_HOOKS", hooks().c_str(), 1);
  }
  fs::path hooks() const { return root_ / "hooks"; }
  // How many times the server process ran the plugin hook `what` ("init", "shutdown") of
  // `version`.
  size_t hookCalls(const std::string& what, const std::string& version) {
    std::ifstream in(hooks());
    const std::string line_wanted = what + " " + version + " " + std::to_string(server_->pid());
    size_t n = 0;
    for (std::string line; std::getline(in, line);) n += line == line_wanted ? 1 : 0;
    return n;
  }
  fs::path dir() const { return root_ / "plugins"; }
  void add(const std::string& tag) {
    fs::copy_file(fs::path(SLUICE_VERSIONED_PLUGIN_DIR) / ("versioned_" + tag + ".so"),
                  dir() / ("versioned_" + tag + ".so"), fs::copy_options::overwrite_existing);
  }
  void start() {
    server_ = std::make_unique<ServerProcess>(
        SLUICE_BINARY, root_ / "data", std::vector<std::string>{"--plugin-dir", dir().string()});
  }
  uint16_t port() const { return server_->port(); }
  HttpResponse call(const std::string& method, const std::string& path,
                    const std::string& body = "") {
    return request(port(), method, path, body);
  }
  std::string version(const std::string& id) {
    auto doc = parsed(call("GET", "/flows/status/" + id));
    return str(doc, "type_version");
  }
  std::string state(const std::string& id) {
    auto doc = parsed(call("GET", "/flows/status/" + id));
    return str(doc, "status");
  }
  // The versions of "versioned" GET /plugins lists, newest first, joined by ",".
  std::string versions() {
    auto doc = parsed(call("GET", "/plugins"));
    std::string out;
    if (!doc.HasMember("versions") || !doc["versions"].HasMember("versioned")) return out;
    for (const auto& v : doc["versions"]["versioned"].GetArray()) {
      out += (out.empty() ? "" : ",") + std::string(v.GetString());
    }
    return out;
  }
  size_t mappings() {
    std::ifstream in("/proc/" + std::to_string(server_->pid()) + "/maps");
    size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }
  bool mapped(const std::string& needle) {
    std::ifstream in("/proc/" + std::to_string(server_->pid()) + "/maps");
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  fs::path root_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(PluginVersions, PinsResolveToTheNewestAllowedVersion) {
  add("1_0_0");
  add("1_1_0");
  add("2_0_0");
  start();
  EXPECT_EQ(versions(), "2.0.0,1.1.0,1.0.0");
  auto r = call("POST", "/flows", R"([{"flow_id":"any","type":"versioned"},
      {"flow_id":"one","type":"versioned@1"},{"flow_id":"exact","type":"versioned@1.0.0"},
      {"flow_id":"minor","type":"versioned@1.1"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(version("any"), "2.0.0");
  EXPECT_EQ(version("one"), "1.1.0");
  EXPECT_EQ(version("exact"), "1.0.0");
  EXPECT_EQ(version("minor"), "1.1.0");
  // The pin is stored as written.
  auto doc = parsed(call("GET", "/flows/one"));
  EXPECT_EQ(str(doc, "type"), "versioned@1");
  // A pin no loaded version matches, or a malformed one, is refused by name.
  r = call("POST", "/flows", R"([{"flow_id":"none","type":"versioned@3"}])");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("unknown flow type 'versioned@3'"), std::string::npos) << r.body;
  r = call("POST", "/flows", R"([{"flow_id":"bad","type":"versioned@1.x"}])");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("version pin must be MAJOR"), std::string::npos) << r.body;
  // GET /plugins lists the flows on each version.
  r = call("GET", "/plugins");
  EXPECT_NE(r.body.find(R"("version":"1.1.0","description")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("flows":["one","minor"])"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("flows":["exact"])"), std::string::npos) << r.body;
}

TEST_F(PluginVersions, ReloadAddsVersionsAndUpgradeRollsBack) {
  add("1_0_0");
  start();
  auto r = call("POST", "/flows", R"([{"flow_id":"a","type":"versioned"},
      {"flow_id":"b","type":"versioned@1.0"},{"flow_id":"idle","type":"versioned"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  r = call("PATCH", "/flows/commands", R"({"command":"start","flow_ids":["a","b"]})");
  ASSERT_EQ(r.status, 200) << r.body;

  // A new version appears beside the old one; running flows keep their code.
  add("1_1_0");
  r = call("POST", "/plugins/reload");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("versioned_1_1_0.so"), std::string::npos) << r.body;
  EXPECT_EQ(versions(), "1.1.0,1.0.0");
  EXPECT_EQ(version("a"), "1.0.0");
  EXPECT_EQ(version("idle"), "1.1.0") << "a stopped flow will start on the newest version";

  // upgrade: a moves to 1.1.0, softly; b's pin keeps it on 1.0.x.
  r = call("PATCH", "/flows/commands", R"({"command":"upgrade","flow_ids":["a","b"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto doc = parsed(r);
  EXPECT_EQ(str(doc, "status"), "Flows upgraded");
  const auto& a = doc["details"][0];
  EXPECT_EQ(str(a, "from"), "1.0.0");
  EXPECT_EQ(str(a, "to"), "1.1.0");
  EXPECT_TRUE(a["upgraded"].GetBool()) << r.body;
  EXPECT_EQ(str(a, "status"), "running");
  const auto& b = doc["details"][1];
  EXPECT_FALSE(b["upgraded"].GetBool()) << r.body;
  EXPECT_EQ(str(b, "to"), "1.0.0");
  EXPECT_EQ(version("a"), "1.1.0");
  EXPECT_EQ(state("a"), "running");
  EXPECT_EQ(version("b"), "1.0.0");

  // A version that fails to start: the upgrade rolls back to the version that ran.
  add("1_2_0");
  ASSERT_EQ(call("POST", "/plugins/reload").status, 200);
  r = call("PATCH", "/flows/commands", R"({"command":"upgrade","flow_ids":["a"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  doc = parsed(r);
  EXPECT_FALSE(doc["details"][0]["upgraded"].GetBool()) << r.body;
  EXPECT_NE(str(doc["details"][0], "error").find("version 1.2.0 refuses to start"),
            std::string::npos)
      << r.body;
  EXPECT_NE(str(doc["details"][0], "error").find("rolled back to versioned@1.1.0"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(state("a"), "running");
  EXPECT_EQ(version("a"), "1.1.0");

  // Unknown ids change nothing.
  r = call("PATCH", "/flows/commands", R"({"command":"upgrade","flow_ids":["a","nope"]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("'nope'"), std::string::npos) << r.body;

  // A removed file is reported; its version stays loaded (retired) while b runs on it, and is
  // unloaded once nothing uses it.
  fs::remove(dir() / "versioned_1_0_0.so");
  r = call("POST", "/plugins/reload");
  EXPECT_NE(r.body.find(R"("removed":[")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("versioned_1_0_0.so"), std::string::npos) << r.body;
  r = call("GET", "/plugins");
  EXPECT_NE(r.body.find(R"("retired":true)"), std::string::npos) << r.body;
  EXPECT_EQ(version("b"), "1.0.0");
  EXPECT_EQ(state("b"), "running");
  EXPECT_TRUE(mapped("versioned_1_0_0-"));
  EXPECT_EQ(hookCalls("shutdown", "1.0.0"), 0u);
  // Stopping b is enough: a stopped flow holds no version it does not run.
  r = call("PATCH", "/flows/commands", R"({"command":"stop","flow_ids":["b"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(waitFor([&] { return !mapped("versioned_1_0_0-"); }, 10s))
      << "the retired version is still mapped with no flow on it";
  EXPECT_EQ(hookCalls("init", "1.0.0"), 1u);
  EXPECT_EQ(hookCalls("shutdown", "1.0.0"), 1u) << "shutdown runs once, before the unload";
  r = call("GET", "/plugins");
  EXPECT_EQ(r.body.find(R"("retired":true)"), std::string::npos) << r.body;
  // b's pin matches nothing loaded now: a start says so.
  r = call("PATCH", "/flows/commands", R"({"command":"start","flow_ids":["b"]})");
  EXPECT_NE(r.body.find("flow type 'versioned@1.0' is not loaded"), std::string::npos) << r.body;
}

// The version a flow started on is stored with it: an engine restart runs it again while it is
// loaded (automatic starts change no flow's code); a start by command takes the newest.
TEST_F(PluginVersions, TheStartedVersionIsStoredWithTheFlow) {
  add("1_0_0");
  start();
  auto r = call("POST", "/flows", R"([{"flow_id":"a","type":"versioned@1"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_EQ(call("PATCH", "/flows/commands", R"({"command":"start"})").status, 200);
  EXPECT_EQ(version("a"), "1.0.0");
  add("1_1_0");
  ASSERT_EQ(server_->kill(SIGTERM), 0);
  start();  // restored: running again on the version stored with it
  ASSERT_TRUE(waitFor([&] { return state("a") == "running"; }, 10s)) << state("a");
  EXPECT_EQ(version("a"), "1.0.0");
  EXPECT_EQ(versions(), "1.1.0,1.0.0");
  // A stop and a start by command take the newest the pin allows, and store it.
  ASSERT_EQ(call("PATCH", "/flows/commands", R"({"command":"stop"})").status, 200);
  ASSERT_EQ(call("PATCH", "/flows/commands", R"({"command":"start"})").status, 200);
  EXPECT_EQ(version("a"), "1.1.0");
  ASSERT_EQ(server_->kill(SIGTERM), 0);
  start();
  ASSERT_TRUE(waitFor([&] { return state("a") == "running"; }, 10s)) << state("a");
  EXPECT_EQ(version("a"), "1.1.0");
  // The stored version gone: the newest the pin allows.
  ASSERT_EQ(server_->kill(SIGTERM), 0);
  fs::remove(dir() / "versioned_1_1_0.so");
  start();
  ASSERT_TRUE(waitFor([&] { return state("a") == "running"; }, 10s)) << state("a");
  EXPECT_EQ(version("a"), "1.0.0");
}

TEST_F(PluginVersions, SighupReloads) {
  add("1_0_0");
  start();
  add("2_0_0");
  ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
  EXPECT_TRUE(waitFor([&] { return versions() == "2.0.0,1.0.0"; }, 20s)) << versions();
}

// 100 reloads under load: each adds a version, runs a flow on it, deletes the flow and removes
// the file. No crash, and the mappings do not grow: every version is unloaded once unused.
TEST_F(PluginVersions, HundredReloadsUnderLoadLeakNoMapping) {
  add("1_0_0");
  start();
  auto r = call("POST", "/flows", R"([{"flow_id":"steady","type":"versioned@1.0"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_EQ(call("PATCH", "/flows/commands", R"({"command":"start"})").status, 200);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::thread load([&] {
    while (!stop) {
      if (request(port(), "GET", "/flows/status").status == 200) ++reads;
    }
  });
  // Same bytes and mtime every round: the verdict cache answers, and the copy loaded is new.
  const auto source = fs::path(SLUICE_VERSIONED_PLUGIN_DIR) / "versioned_1_1_0.so";
  const auto target = dir() / "versioned_1_1_0.so";
  size_t baseline = 0;
  for (int i = 0; i < 100; ++i) {
    fs::copy_file(source, target, fs::copy_options::overwrite_existing);
    fs::last_write_time(target, fs::last_write_time(source));
    r = call("POST", "/plugins/reload");
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_NE(r.body.find("versioned_1_1_0.so"), std::string::npos) << i << ": " << r.body;
    r = call("POST", "/flows", R"([{"flow_id":"round","type":"versioned@1.1"}])");
    ASSERT_EQ(r.status, 201) << r.body;
    r = call("PATCH", "/flows/commands", R"({"command":"start","flow_ids":["round"]})");
    ASSERT_NE(r.body.find("\"status\":\"running\""), std::string::npos) << r.body;
    ASSERT_EQ(version("round"), "1.1.0");
    ASSERT_EQ(call("DELETE", "/flows/round").status, 200);
    fs::remove(target);
    r = call("POST", "/plugins/reload");
    ASSERT_EQ(r.status, 200) << r.body;
    if (i == 9) {
      ASSERT_TRUE(waitFor([&] { return !mapped("versioned_1_1_0-"); }, 10s));
      baseline = mappings();
    }
  }
  stop = true;
  load.join();
  EXPECT_GT(reads.load(), 100) << "the load ran beside the reloads";
  EXPECT_TRUE(waitFor([&] { return !mapped("versioned_1_1_0-"); }, 10s))
      << "a version nothing uses is still mapped";
  // Thread stacks and allocator arenas come and go; a leaked library would add ~5 lines per
  // round (90 rounds: 450).
  EXPECT_LE(mappings(), baseline + 40) << "baseline " << baseline;
  // Each of the 100 loads was initialised once and shut down once.
  EXPECT_EQ(hookCalls("init", "1.1.0"), 100u);
  EXPECT_EQ(hookCalls("shutdown", "1.1.0"), 100u);
  EXPECT_EQ(state("steady"), "running");
  EXPECT_EQ(server_->kill(SIGTERM), 0);
}

}  // namespace
}  // namespace sluice::test
