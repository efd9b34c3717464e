#include "api/cli/plugin_command.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <string>

namespace sluice::cli {
namespace {

struct NewArgs {
  std::string name;
  std::string dir = ".";
};

// "my-flow" -> "MyFlow"; "my_flow" too.
std::string className(const std::string& name) {
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '-' || c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out + "Flow";
}

std::string fill(std::string text, const std::string& name) {
  std::string ident = name;
  for (char& c : ident) c = c == '-' ? '_' : c;
  const std::pair<std::string, std::string> vars[] = {
      {"@NAME@", name}, {"@IDENT@", ident}, {"@CLASS@", className(name)}};
  for (const auto& [key, value] : vars) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
      text.replace(at, key.size(), value);
      at += value.size();
    }
  }
  return text;
}

const char* kCMakeLists = R"TPL(cmake_minimum_required(VERSION 3.20)
project(@IDENT@ CXX)
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)

# The installed Sluice SDK: Sluice::sdk, Sluice::testing and sluice_add_plugin().
# Point CMAKE_PREFIX_PATH at its prefix when it is not installed system-wide.
find_package(Sluice 0.1 REQUIRED)

# The plugin: one shared object, loaded by `sluice --plugin-dir <this build directory>`.
sluice_add_plugin(@IDENT@ src/plugin.cpp)
target_include_directories(@IDENT@ PRIVATE src)

# Unit tests with the SDK's harness: no engine needed (ctest runs them).
include(CTest)
if(BUILD_TESTING)
  find_package(GTest REQUIRED)
  add_executable(@IDENT@_test tests/@IDENT@_test.cpp)
  target_include_directories(@IDENT@_test PRIVATE src)
  target_link_libraries(@IDENT@_test PRIVATE Sluice::testing GTest::gtest_main)
  target_compile_definitions(@IDENT@_test PRIVATE PLUGIN_SO="$<TARGET_FILE:@IDENT@>")
  add_dependencies(@IDENT@_test @IDENT@)
  include(GoogleTest)
  gtest_discover_tests(@IDENT@_test)
endif()
)TPL";

const char* kFlowHpp =
    R"TPL(// The @NAME@ flow type: counts to config.limit, one step every config.interval_ms.
// Replace the body of step() with your flow's work (docs/plugin-guide.md in the Sluice sources).
#pragma once

#include <sluice/sdk/flow.hpp>
#include <string>

class @CLASS@ : public sluice::sdk::StepFlow {
 public:
  static constexpr const char* kName = "@NAME@";
  static constexpr const char* kDescription = "Counts to config.limit, then idles.";
  static constexpr const char* kVersion = "0.1.0";
  // Checked by the engine before validate() and before any instance is created.
  static constexpr const char* kConfigSchema = R"json({
    "type": "object",
    "properties": {
      "limit": {"type": "integer", "minimum": 1},
      "interval_ms": {"type": "integer", "minimum": 10}
    },
    "additionalProperties": false
  })json";

  // Checks the schema cannot express; every problem names its member.
  static void validate(const sluice::sdk::Config& config, sluice::sdk::Problems& problems) {
    if (config.getInt("limit", 10) > 1000000) problems.add("/limit", "must be at most 1000000");
  }

  @CLASS@(sluice::sdk::Host host, const sluice::sdk::Config& config)
      : StepFlow(host),
        limit_(config.getInt("limit", 10)),
        interval_ms_(static_cast<uint32_t>(config.getInt("interval_ms", 1000))) {}

  sluice::sdk::Status step(sluice::sdk::StepControl& next) override {
    if (count_ < limit_) {
      ++count_;
      host().counterAdd("counted");
    }
    next.nextIn(interval_ms_);
    return sluice::sdk::Status::ok();
  }

 private:
  int64_t limit_;
  uint32_t interval_ms_;
  int64_t count_ = 0;
};
)TPL";

const char* kPluginCpp =
    R"TPL(// The plugin's entry: every flow type it provides, with the plugin's name and version.
#include "@IDENT@_flow.hpp"

SLUICE_PLUGIN("@NAME@", "0.1.0", @CLASS@)
)TPL";

const char* kTest =
    R"TPL(// Unit tests of the @NAME@ flow type with the SDK's harness (sluice/testing/harness.hpp).
#include <gtest/gtest.h>

#include <sluice/testing/harness.hpp>

#include "@IDENT@_flow.hpp"

using sluice::testing::Harness;
using sluice::testing::Stop;

// The built plugin, as the engine loads it.
TEST(@CLASS@, CountsToItsLimit) {
  auto h = Harness::load(PLUGIN_SO, "@NAME@");
  ASSERT_TRUE(h.create(R"({"limit": 2, "interval_ms": 50})"));
  ASSERT_TRUE(h.start());
  for (int i = 0; i < 3; ++i) {
    auto step = h.step();
    ASSERT_TRUE(step) << step;
    EXPECT_EQ(step.next_delay_ms, 50u);
  }
  EXPECT_EQ(h.counter("counted"), 2);
  EXPECT_TRUE(h.stop(Stop::kSoft));
}

TEST(@CLASS@, RefusesBadConfigs) {
  auto h = Harness::load(PLUGIN_SO, "@NAME@");
  EXPECT_TRUE(h.validate(R"({"limit": 5})").empty());
  auto problems = h.validate(R"({"limit": 0})");  // the schema
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "/limit");
  problems = h.validate(R"({"limit": 2000000})");  // validate()
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].path, "/limit") << problems[0];
}

// The class compiled into the test, for tests that need no .so.
TEST(@CLASS@, DefaultsToTen) {
  auto h = Harness::of<@CLASS@>();
  ASSERT_TRUE(h.create());
  ASSERT_TRUE(h.start());
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(h.step());
  EXPECT_EQ(h.counter("counted"), 10);
}
)TPL";

const char* kReadme = R"TPL(# @NAME@: a Sluice flow plugin

Scaffolded by `sluice plugin new @NAME@`. The flow type `@NAME@` counts to `config.limit`.

## Build and test

```sh
cmake -S . -B build -DCMAKE_PREFIX_PATH=/path/to/sluice/prefix   # where Sluice is installed
cmake --build build
ctest --test-dir build --output-on-failure                       # harness tests, no engine
```

## Run it in the engine

```sh
sluice --plugin-dir build --data-dir /tmp/@NAME@-data   # keep the engine's data out of the tree
curl -X POST localhost:5000/flows -d '[{"flow_id": "c1", "type": "@NAME@", "config": {"limit": 5}}]'
curl -X PATCH localhost:5000/flows/commands -d '{"command": "start", "flow_ids": ["c1"]}'
curl localhost:5000/flows/status/c1        # metrics.counted grows to 5
```

Rebuilt the plugin while the engine runs? `curl -X POST localhost:5000/plugins/reload` (admin)
loads the new build beside the old one; `{"command": "upgrade"}` moves flows to it.

## Layout

- `src/@IDENT@_flow.hpp`: the flow type (schema, validate, step).
- `src/plugin.cpp`: the plugin's entry (`SLUICE_PLUGIN`).
- `tests/@IDENT@_test.cpp`: unit tests with `sluice::testing::Harness`.
)TPL";

int scaffold(const NewArgs& a) {
  static const std::regex kName("[a-z][a-z0-9_-]{0,62}");
  if (!std::regex_match(a.name, kName)) {
    std::cerr << "sluice plugin new: NAME must be 1-63 characters of [a-z0-9_-] starting with a "
                 "letter (it names the plugin, its flow type and its CMake target)\n";
    return 2;
  }
  for (const char* reserved :
       {"all", "test", "install", "clean", "help", "package", "package_source", "edit_cache",
        "rebuild_cache", "list_install_components"}) {
    if (a.name == reserved) {
      std::cerr << "sluice plugin new: '" << a.name
                << "' is a target name CMake reserves; choose another name\n";
      return 2;
    }
  }
  namespace fs = std::filesystem;
  const fs::path root = fs::path(a.dir) / a.name;
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_empty(root, ec)) {
    std::cerr << "sluice plugin new: " << root.string()
              << " exists and is not empty; nothing was written\n";
    return 2;
  }
  std::string ident = a.name;
  for (char& c : ident) c = c == '-' ? '_' : c;
  const std::pair<std::string, const char*> files[] = {{"CMakeLists.txt", kCMakeLists},
                                                       {"src/" + ident + "_flow.hpp", kFlowHpp},
                                                       {"src/plugin.cpp", kPluginCpp},
                                                       {"tests/" + ident + "_test.cpp", kTest},
                                                       {"README.md", kReadme}};
  for (const auto& [rel, text] : files) {
    const fs::path file = root / rel;
    fs::create_directories(file.parent_path(), ec);
    std::ofstream out(file);
    out << fill(text, a.name);
    if (!out) {
      std::cerr << "sluice plugin new: cannot write " << file.string() << "\n";
      return 1;
    }
  }
  std::cout << "created " << root.string() << " (flow type '" << a.name << "'): build it with\n"
            << "  cmake -S " << root.string() << " -B " << (root / "build").string()
            << " && cmake --build " << (root / "build").string() << " && ctest --test-dir "
            << (root / "build").string() << "\n";
  return 0;
}

}  // namespace

std::function<int()> addPluginCommand(CLI::App& app) {
  auto args = std::make_shared<NewArgs>();
  auto* plugin = app.add_subcommand("plugin", "plugin authoring tools");
  auto* create = plugin->add_subcommand(
      "new", "scaffold an out-of-tree plugin project: CMake, a flow type, a harness test");
  create->add_option("NAME", args->name, "the plugin and flow type name ([a-z][a-z0-9_-]*)")
      ->required();
  create->add_option("--dir", args->dir, "where to create the NAME directory (default .)");
  plugin->require_subcommand(1);
  return [create, args]() -> int { return create->parsed() ? scaffold(*args) : -1; };
}

}  // namespace sluice::cli
