// The store conformance suite's fixture: each test runs once per backend (SQLite in a fresh
// directory, PostgreSQL in a fresh database of the run's server) through the Store interface.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/store/store_factory.hpp"
#include "fakes/pg_server.hpp"

namespace sluice::test {

class StoreConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->name());
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = std::filesystem::path(SLUICE_TEST_TMP) / ("conformance-" + name);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    url_ =
        GetParam() == "sqlite" ? "sqlite:" + dir_.string() : PgServer::shared().freshDatabase(name);
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }
  /// Another store on the same data (the same file, the same database): another process.
  std::unique_ptr<Store> open() {
    auto s = openStore(url_, dir_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s.value()) : nullptr;
  }
  void reopen() {
    store_.reset();
    store_ = open();
    ASSERT_NE(store_, nullptr);
  }
  /// A second, empty store of the other backend or the same one (for snapshots).
  std::unique_ptr<Store> emptyStore(const std::string& backend, const std::string& suffix) {
    const auto dir = dir_ / suffix;
    std::filesystem::create_directories(dir);
    const std::string url =
        backend == "sqlite"
            ? "sqlite:" + dir.string()
            : PgServer::shared().freshDatabase(
                  std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                  suffix);
    auto s = openStore(url, dir);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  std::filesystem::path dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

inline std::string backendName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace sluice::test
