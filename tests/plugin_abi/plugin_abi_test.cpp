// Deliberately broken plugins: each is refused with its exact reason, and the engine stays up.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/model/json.hpp"
#include "core/plugins/plugin_registry.hpp"
#include "fakes/http_client.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {
namespace {

std::map<std::string, std::string> refusals(const PluginRegistry& r) {
  std::map<std::string, std::string> out;
  for (const auto& x : r.refused())
    out[std::filesystem::path(x.file).filename().string()] = x.reason;
  return out;
}

TEST(PluginAbi, EachBrokenPluginIsRefusedWithItsReason) {
  PluginRegistry registry;
  registry.loadDirectory(SLUICE_BUNDLED_PLUGIN_DIR);
  registry.loadDirectory(SLUICE_BROKEN_PLUGIN_DIR);
  auto r = refusals(registry);
  EXPECT_EQ(r["not_a_plugin.so"],
            "not a Sluice plugin: no symbol sluice_plugin_entry (a hand-written entry needs "
            "extern \"C\" and SLUICE_EXPORT: sluice_add_plugin hides every other symbol)");
  EXPECT_EQ(r["garbage.so"].rfind("cannot load shared object: ", 0), 0u) << r["garbage.so"];
  EXPECT_EQ(r["broken_null_descriptor.so"], "entry symbol returned no descriptor (null)");
  const std::string minor = std::to_string(SLUICE_ABI_MINOR);
  EXPECT_EQ(r["broken_wrong_major.so"], "ABI major version mismatch: plugin built for ABI 2." +
                                            minor + ", engine supports 1." + minor);
  EXPECT_EQ(r["broken_newer_minor.so"], "plugin needs engine ABI 1." +
                                            std::to_string(SLUICE_ABI_MINOR + 1) +
                                            " or later, this engine has 1." + minor);
  EXPECT_EQ(r["broken_small_descriptor.so"].rfind("descriptor struct too small: 8 bytes", 0), 0u)
      << r["broken_small_descriptor.so"];
  EXPECT_EQ(r["broken_small_type.so"].rfind("flow type #0 struct too small: 16 bytes", 0), 0u)
      << r["broken_small_type.so"];
  EXPECT_EQ(r["broken_missing_hook.so"],
            "flow type 'c_missing_hook': required hook 'start' is missing");
  EXPECT_EQ(r["broken_step_without_hook.so"],
            "flow type 'c_step_without_hook': required hook 'step' is missing");
  EXPECT_NE(r["broken_duplicate_type.so"].find(
                "flow type 'noop' version 1.0.0 is already registered by plugin 'noop'"),
            std::string::npos)
      << r["broken_duplicate_type.so"];
  EXPECT_EQ(r.count("broken_plain_c.so"), 0u);
  EXPECT_EQ(r["broken_unknown_flag.so"],
            "flow type 'c_unknown_flag': unknown flag bits 0x80 (this engine knows "
            "SLUICE_FLOW_HAS_STEP and SLUICE_FLOW_DEDICATED_THREAD; a newer engine may)");
  EXPECT_EQ(r.count("broken_old_sizes.so"), 0u) << r["broken_old_sizes.so"];
  EXPECT_EQ(r["broken_bad_version.so"],
            "flow type 'c_bad_version': version 'one' is not a semantic version MAJOR.MINOR.PATCH "
            "(e.g. 1.0.0)");
  EXPECT_EQ(r["broken_init_fails.so"], "plugin init failed: connection pool unavailable");
  // Built against a newer SDK (bigger structs), needing nothing new: loaded.
  EXPECT_EQ(r.count("broken_newer_sdk.so"), 0u) << r["broken_newer_sdk.so"];
  ASSERT_NE(registry.find("c_newer_sdk@3"), nullptr);
  EXPECT_EQ(registry.find("c_newer_sdk")->version.str(), "3.1.4");
  EXPECT_EQ(r.size(), 13u);
  // the good ones still work
  EXPECT_NE(registry.find("noop"), nullptr);
  EXPECT_NE(registry.find("ticker"), nullptr);
  EXPECT_NE(registry.find("c_plain_c"), nullptr);
  // An ABI 1.0 flow type in storage of exactly its declared size is read only that far, into
  // the engine's own zeroed copy: fields of later minors read as absent.
  auto old = registry.find("c_old_sizes");
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->def->struct_size, offsetof(sluice_flow_type, run) + sizeof(void*));
  EXPECT_EQ(old->def, &old->def_copy);
  EXPECT_NE(old->def->create, nullptr);
  EXPECT_EQ(registry.find("noop")->plugin_name, "noop");
}

TEST(PluginAbi, ServerStartsAndReportsRefusals) {
  auto data = std::filesystem::path(SLUICE_TEST_TMP) / "abi-server";
  std::filesystem::remove_all(data);
  ServerProcess server(SLUICE_BINARY, data, {"--plugin-dir", SLUICE_BROKEN_PLUGIN_DIR});
  auto r = request(server.port(), "GET", "/plugins");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"reason\":\"ABI major version mismatch"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("not_a_plugin.so"), std::string::npos);
  EXPECT_NE(r.body.find("\"name\":\"c_plain_c\""), std::string::npos);
  // a plain C plugin built for ABI 1.0 (before state_lookup) is loaded and runs flows
  EXPECT_NE(r.body.find("\"abi\":\"1.0\""), std::string::npos) << r.body;
  r = request(server.port(), "POST", "/flows", R"([{"flow_id":"c","type":"c_plain_c"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  r = request(server.port(), "PATCH", "/flows/commands", R"({"command":"start","flow_ids":["c"]})");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"status\":\"running\""), std::string::npos) << r.body;
  // the log names the file and the reason
  EXPECT_EQ(server.kill(SIGTERM), 0);
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

// Hooks that misbehave at run time: each becomes a failed flow with an error naming it, while
// the engine keeps serving.
TEST(PluginAbi, MisbehavingHooksAreContained) {
  auto data = std::filesystem::path(SLUICE_TEST_TMP) / "abi-hooks";
  std::filesystem::remove_all(data);
  ServerProcess server(SLUICE_BINARY, data, {"--plugin-dir", SLUICE_TEST_PLUGIN_DIR});
  auto r = request(server.port(), "POST", "/flows", R"([
    {"flow_id":"throws","type":"probe","config":{"throw":"start"}},
    {"flow_id":"errors","type":"probe","config":{"fail":"start"}},
    {"flow_id":"blocks","type":"probe","config":{"block":"start","block_ms":3000,"ignore_cancel":true},"runtime":{"start_timeout_ms":200}},
    {"flow_id":"fine","type":"probe"}])");
  ASSERT_EQ(r.status, 201) << r.body;
  r = request(server.port(), "PATCH", "/flows/commands", R"({"command":"start"})");
  ASSERT_EQ(r.status, 200);
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(r.body, doc, nullptr));
  const auto& d = doc["details"];
  EXPECT_STREQ(d[0]["status"].GetString(), "failed");
  EXPECT_STREQ(d[0]["error"].GetString(), "start hook failed: probe: injected exception in start");
  EXPECT_STREQ(d[1]["status"].GetString(), "failed");
  EXPECT_STREQ(d[1]["error"].GetString(), "start hook failed: probe: injected failure in start");
  EXPECT_STREQ(d[2]["status"].GetString(), "failed");
  EXPECT_STREQ(d[2]["error"].GetString(),
               "start did not finish within 200 ms (runtime.start_timeout_ms): plugin code is "
               "still running (in the start hook)");
  EXPECT_STREQ(d[3]["status"].GetString(), "running");
  EXPECT_EQ(request(server.port(), "GET", "/flows/status").status, 200);
  EXPECT_EQ(server.kill(SIGTERM), 0);
}

}  // namespace
}  // namespace sluice::test
