// Crash-proof plugin scanning against the real server: plugins that abort, crash or hang when
// loaded are scanned in a child process, refused with the signal named, never loaded into the
// engine, and remembered by file and mtime across restarts; a reload gets the same protection.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/model/json.hpp"
#include "fakes/http_client.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;

// How many times `plugin` was loaded (its constructor or entry ran), from the marks file.
size_t loads(const fs::path& marks, const std::string& plugin) {
  std::ifstream in(marks);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += line == plugin ? 1 : 0;
  return n;
}

// file name -> refusal reason, from GET /plugins.
std::map<std::string, std::string> refusals(uint16_t port) {
  std::map<std::string, std::string> out;
  auto r = request(port, "GET", "/plugins");
  rapidjson::Document doc;
  if (r.status != 200 || !json::parse(r.body, doc, nullptr)) return out;
  for (const auto& x : doc["refused"].GetArray()) {
    out[fs::path(x["file"].GetString()).filename().string()] = x["reason"].GetString();
  }
  return out;
}

class PluginScan : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(SLUICE_TEST_TMP) / "plugin-scan";
    fs::remove_all(root_);
    fs::create_directories(root_ / "plugins");
    for (const char* name : {"crash_abort.so", "crash_segv.so", "crash_hang.so"}) {
      fs::copy_file(fs::path(SLUICE_CRASH_PLUGIN_DIR) / name, root_ / "plugins" / name);
    }
    fs::copy_file(fs::path(SLUICE_VERSIONED_PLUGIN_DIR) / "versioned_1_0_0.so",
                  root_ / "plugins" / "versioned_1_0_0.so");
    marks_ = root_ / "marks";
    ::setenv("SLUICE_CRASH_MARK", marks_.c_str(), 1);
  }
  void TearDown() override { ::unsetenv("SLUICE_CRASH_MARK"); }
  std::unique_ptr<ServerProcess> start() {
    return std::make_unique<ServerProcess>(
        SLUICE_BINARY, root_ / "data",
        std::vector<std::string>{"--plugin-dir", (root_ / "plugins").string(),
                                 "--plugin-scan-timeout", "2s"});
  }
  void expectRefusals(uint16_t port) {
    auto r = refusals(port);
    EXPECT_NE(r["crash_abort.so"].find("crashed while loading"), std::string::npos)
        << r["crash_abort.so"];
    EXPECT_NE(r["crash_abort.so"].find("SIGABRT"), std::string::npos) << r["crash_abort.so"];
    EXPECT_NE(r["crash_segv.so"].find("SIGSEGV"), std::string::npos) << r["crash_segv.so"];
    EXPECT_NE(r["crash_hang.so"].find("hung while loading"), std::string::npos)
        << r["crash_hang.so"];
    EXPECT_EQ(r.count("versioned_1_0_0.so"), 0u);
  }
  fs::path root_;
  fs::path marks_;
};

TEST_F(PluginScan, CrashingPluginsAreRefusedRememberedAndNeverLoaded) {
  auto server = start();  // the engine starts at all: nothing it loaded took it down
  expectRefusals(server->port());
  for (const char* plugin : {"crash_abort", "crash_segv", "crash_hang"}) {
    EXPECT_EQ(loads(marks_, plugin), 1u) << plugin << " was loaded once, by the scanner";
  }
  // The good plugin beside them works.
  auto r = request(server->port(), "POST", "/flows", R"([{"flow_id":"v","type":"versioned"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  r = request(server->port(), "PATCH", "/flows/commands",
              R"({"command":"start","flow_ids":["v"]})");
  EXPECT_NE(r.body.find("\"status\":\"running\""), std::string::npos) << r.body;
  EXPECT_EQ(server->kill(SIGTERM), 0);

  // A restart remembers the verdicts (file, size and mtime): nothing is scanned again.
  server = start();
  expectRefusals(server->port());
  for (const char* plugin : {"crash_abort", "crash_segv", "crash_hang"}) {
    EXPECT_EQ(loads(marks_, plugin), 1u) << "a restart scanned " << plugin << " again";
  }

  // A changed file is scanned again, by a reload too, and still never loaded by the engine.
  const auto abort_so = root_ / "plugins" / "crash_abort.so";
  fs::last_write_time(abort_so, fs::last_write_time(abort_so) + std::chrono::seconds(5));
  r = request(server->port(), "POST", "/plugins/reload");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("SIGABRT"), std::string::npos) << r.body;
  EXPECT_EQ(loads(marks_, "crash_abort"), 2u);
  EXPECT_EQ(loads(marks_, "crash_segv"), 1u);
  expectRefusals(server->port());
  EXPECT_EQ(request(server->port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(server->kill(SIGTERM), 0) << "the engine exits cleanly: it never ran the plugin";
}

}  // namespace
}  // namespace sluice::test
