// Google Benchmark of what the gate does per request: hashing a token, checking it against the
// token cache, and the whole admit() of a valid token, with 1 and 100 tokens stored.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "api/auth/auth_gate.hpp"
#include "api/auth/token_crypto.hpp"
#include "core/store/sqlite_store.hpp"

namespace {

using namespace sluice;

struct Fixture {
  explicit Fixture(int tokens) {
    dir = std::filesystem::temp_directory_path() / ("sluice-auth-bench-" + std::to_string(tokens));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    store = std::move(SqliteStore::open((dir / "sluice.db").string()).value());
    book = std::make_unique<auth::TokenBook>(*store);
    for (int i = 0; i < tokens; ++i) {
      auto t = book->issue("t" + std::to_string(i), auth::Role::kViewer, std::nullopt,
                           auth::nowMs(), nullptr);
      header = "Bearer " + t.value().secret;
      secret = t.value().secret;
    }
    gate =
        std::make_unique<auth::AuthGate>(*book, auth::AuthMode::kRequired, auth::LimiterOptions{});
  }
  ~Fixture() {
    gate.reset();
    book.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::filesystem::path dir;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<auth::TokenBook> book;
  std::unique_ptr<auth::AuthGate> gate;
  std::string header;
  std::string secret;
};

void BM_Sha256Hex(benchmark::State& state) {
  const std::string secret = auth::newTokenSecret();
  for (auto _ : state) benchmark::DoNotOptimize(auth::sha256Hex(secret));
}
BENCHMARK(BM_Sha256Hex);

void BM_TokenCheck(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(f.book->check(f.secret, 0));
}
BENCHMARK(BM_TokenCheck)->Arg(1)->Arg(100);

void BM_AdmitValidToken(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)));
  const std::string remote = "127.0.0.1";
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        f.gate->admit(std::string_view(f.header), remote, auth::Role::kViewer));
  }
}
BENCHMARK(BM_AdmitValidToken)->Arg(1)->Arg(100);

}  // namespace

BENCHMARK_MAIN();
