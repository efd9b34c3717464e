// The host functions of a flow: the state_get sink runs outside the binding's lock, "absent" is
// told from "store error" (ABI 1.1 state_lookup), a detached binding refuses everything, and
// line-pipe fails rather than start over when its checkpoint cannot be read.
#include "core/runtime/host_binding.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "core/isolation/instance.hpp"
#include "core/plugins/plugin_registry.hpp"
#include "core/store/sqlite_store.hpp"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// A store whose plugin state cannot be read (a disk error, say).
class FailingStateStore final : public Store {
 public:
  Result<std::vector<StoredFlow>> loadAll() override { return std::vector<StoredFlow>{}; }
  Result<std::vector<Incarnation>> insertFlows(const std::vector<StoredFlow>&,
                                               AuditRecord*) override {
    return std::vector<Incarnation>{};
  }
  Result<Done> updateFlow(const std::string&, Incarnation, const std::string&,
                          AuditRecord*) override {
    return Done{};
  }
  Result<Done> deleteFlow(const std::string&, AuditRecord*) override { return Done{}; }
  Result<Done> deleteState(Incarnation) override { return Done{}; }
  Result<Done> setRunRecords(const std::vector<RunRecordRow>&) override { return Done{}; }
  Result<Done> setDesired(const std::vector<DesiredRow>&, AuditRecord*) override { return Done{}; }
  Result<std::optional<std::string>> stateGet(Incarnation, const std::string&) override {
    return Error{ErrorKind::kInternal, "disk I/O error", {}};
  }
  Result<Done> statePut(Incarnation, const std::string&, const std::string&) override {
    return Error{ErrorKind::kInternal, "disk I/O error", {}};
  }
  Result<Done> stateDelete(Incarnation, const std::string&) override { return Done{}; }
  Result<std::vector<TokenRecord>> loadTokens() override { return std::vector<TokenRecord>{}; }
  Result<Done> insertToken(const TokenRecord&, AuditRecord*) override { return Done{}; }
  Result<Done> revokeToken(const std::string&, int64_t, AuditRecord*) override { return Done{}; }
  Result<uint64_t> externalChanges() override { return uint64_t{0}; }
  Result<uint64_t> appendAudit(const AuditEntry&) override { return uint64_t{0}; }
  Result<std::vector<AuditEntry>> listAudit(uint64_t, size_t) override {
    return std::vector<AuditEntry>{};
  }
  Result<uint64_t> pruneAudit(int64_t) override { return uint64_t{0}; }
  Result<uint64_t> reserveSequence(const std::string&, uint64_t) override { return uint64_t{1}; }
  Result<Done> checkWritable() override { return Done{}; }
  Result<StoreSnapshot> exportAll() override { return StoreSnapshot{}; }
  Result<Done> importAll(const StoreSnapshot&) override { return Done{}; }
  Result<std::vector<SchemaVersion>> schemaHistory() override {
    return std::vector<SchemaVersion>{};
  }
  Result<int64_t> renewNodeLease(const std::string&, const std::string&, int64_t, int64_t,
                                 bool) override {
    return int64_t{0};
  }
  Result<std::vector<NodeRecord>> listNodes() override { return std::vector<NodeRecord>{}; }
  Result<Done> leaveCluster(const std::string&) override { return Done{}; }
  Result<bool> holdLeadership(int64_t) override { return true; }
};

class HostBindingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(SLUICE_TEST_TMP) /
        ("binding-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "files");
    auto s = SqliteStore::open((dir_ / "sluice.db").string());
    ASSERT_TRUE(s.ok());
    store_ = std::move(s.value());
  }
  std::shared_ptr<HostBinding> bind(Store* store, Incarnation inc = 1) {
    auto b = std::make_shared<HostBinding>("f", inc, (dir_ / "files").string(), store, &signals_);
    metrics_ = std::shared_ptr<FlowMetrics>(b, &b->metrics());
    return b;
  }
  int64_t counter(const std::string& name) {
    for (const auto& [n, v] : metrics_->counters()) {
      if (n == name) return v;
    }
    return 0;
  }
  std::filesystem::path dir_;
  std::unique_ptr<SqliteStore> store_;
  FlowSignals signals_;
  std::shared_ptr<FlowMetrics> metrics_;  // the last binding's
};

struct SinkCtx {
  const sluice_host* host;
  std::string value;
};

TEST_F(HostBindingTest, SinkMayCallHostFunctions) {
  auto b = bind(store_.get());
  auto table = b->table();
  ASSERT_EQ(table->state_put(table->ctx, "k", 1, "v1", 2), SLUICE_OK);
  // The sink calls a host function; with the binding's lock held that would deadlock, so the
  // call runs on its own thread and the test waits for it with a deadline.
  auto result = std::make_shared<std::promise<int32_t>>();
  auto ctx = std::make_shared<SinkCtx>(SinkCtx{table.get(), ""});
  std::thread([table, result, ctx] {
    auto sink = [](void* c, const char* v, size_t n) {
      auto* s = static_cast<SinkCtx*>(c);
      s->value.assign(v, n);
      s->host->counter_add(s->host->ctx, "in_sink", 7, 1);
      s->host->is_cancelled(s->host->ctx);
    };
    int32_t a = table->state_get(table->ctx, "k", 1, sink, ctx.get());
    int32_t b = table->state_lookup(table->ctx, "k", 1, sink, ctx.get());
    result->set_value(a == SLUICE_OK && b == SLUICE_OK ? SLUICE_OK : SLUICE_ERROR);
  }).detach();
  auto f = result->get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << "state_get deadlocked in its sink";
  EXPECT_EQ(f.get(), SLUICE_OK);
  EXPECT_EQ(ctx->value, "v1");
  EXPECT_EQ(counter("in_sink"), 2);
}

TEST_F(HostBindingTest, LookupTellsAbsentFromStoreError) {
  auto sink = [](void* c, const char* v, size_t n) { static_cast<std::string*>(c)->assign(v, n); };
  std::string out;
  auto good = bind(store_.get())->table();
  EXPECT_EQ(good->state_lookup(good->ctx, "none", 4, sink, &out), SLUICE_ABSENT);
  EXPECT_EQ(good->state_get(good->ctx, "none", 4, sink, &out), SLUICE_ERROR);  // ABI 1.0
  FailingStateStore failing;
  auto bad = bind(&failing)->table();
  EXPECT_EQ(bad->state_lookup(bad->ctx, "k", 1, sink, &out), SLUICE_ERROR);
  EXPECT_EQ(bad->state_put(bad->ctx, "k", 1, "v", 1), SLUICE_ERROR);
  EXPECT_GE(bad->struct_size, SLUICE_HOST_SIZE_1_1);
  EXPECT_EQ(bad->abi_minor, SLUICE_ABI_MINOR);
}

TEST_F(HostBindingTest, StateIsPerIncarnationAndADetachedBindingRefuses) {
  auto old_life = bind(store_.get(), 1);
  auto new_life = bind(store_.get(), 2);
  auto t1 = old_life->table();
  auto t2 = new_life->table();
  ASSERT_EQ(t1->state_put(t1->ctx, "offset", 6, "42", 2), SLUICE_OK);
  auto sink = [](void* c, const char* v, size_t n) { static_cast<std::string*>(c)->assign(v, n); };
  std::string out;
  EXPECT_EQ(t2->state_lookup(t2->ctx, "offset", 6, sink, &out), SLUICE_ABSENT);
  t1->counter_add(t1->ctx, "early", 5, 1);
  old_life->detach();
  EXPECT_EQ(t1->state_put(t1->ctx, "offset", 6, "43", 2), SLUICE_ERROR);
  EXPECT_EQ(t1->state_lookup(t1->ctx, "offset", 6, sink, &out), SLUICE_ERROR);
  EXPECT_EQ(t1->is_cancelled(t1->ctx), 1);
  EXPECT_EQ(t1->is_stop_requested(t1->ctx), 1);
  t1->counter_add(t1->ctx, "late", 4, 1);
  using Counters = std::vector<std::pair<std::string, int64_t>>;
  EXPECT_EQ(old_life->metrics().counters(), (Counters{{"early", 1}}));
}

TEST_F(HostBindingTest, LinePipeFailsWhenItsCheckpointCannotBeRead) {
  PluginRegistry registry;
  registry.loadDirectory(SLUICE_BUNDLED_PLUGIN_DIR);
  auto type = registry.find("line-pipe");
  ASSERT_NE(type, nullptr);
  std::ofstream(dir_ / "files" / "in.txt") << "a\nb\n";
  const std::string config = R"({"input":"in.txt","output":"out.txt"})";
  std::array<char, 512> buf{};
  sluice_error e{sizeof(sluice_error), buf.data(), buf.size()};

  FailingStateStore failing;
  auto bad = bind(&failing);
  std::string error;
  auto instance = makeInProcessInstance(type, bad->table(), config);
  ASSERT_EQ(instance->create(&e), SLUICE_OK) << buf.data();
  EXPECT_EQ(instance->start(&e), SLUICE_ERROR);
  EXPECT_NE(std::string(buf.data()).find("cannot read the checkpoint"), std::string::npos)
      << buf.data();
  instance->destroy(&e);

  auto good = bind(store_.get());
  instance = makeInProcessInstance(type, good->table(), config);
  ASSERT_EQ(instance->create(&e), SLUICE_OK);
  EXPECT_EQ(instance->start(&e), SLUICE_OK) << buf.data();
  instance->destroy(&e);
}

}  // namespace
}  // namespace sluice
