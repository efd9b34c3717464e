// One suite, both backends: what every Store promises about flows, plugin state, sequences and
// the schema's history (store_fixture.hpp runs each test on SQLite and on PostgreSQL).
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "core/model/run_record.hpp"
#include "core/store/migrations.hpp"
#include "fakes/store_fixture.hpp"

namespace sluice::test {
namespace {

TEST_P(StoreConformance, InsertsInOrderAndSurvivesReopen) {
  ASSERT_TRUE(store_
                  ->insertFlows({{"b", R"({"flow_id":"b"})", Desired::kStopped},
                                 {"a", R"({"flow_id":"a"})", Desired::kStopped}},
                                nullptr)
                  .ok());
  ASSERT_TRUE(store_->insertFlows({{"c", R"({"flow_id":"c"})", Desired::kStopped}}, nullptr).ok());
  ASSERT_TRUE(
      store_->setDesired({{"a", Desired::kRunning}, {"c", Desired::kPaused}}, nullptr).ok());
  reopen();
  auto all = store_->loadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 3u);
  EXPECT_EQ(all.value()[0].id, "b");
  EXPECT_EQ(all.value()[0].record_json, R"({"flow_id":"b"})");
  EXPECT_EQ(all.value()[1].id, "a");
  EXPECT_EQ(all.value()[1].desired, Desired::kRunning);
  EXPECT_EQ(all.value()[2].desired, Desired::kPaused);
  EXPECT_LT(all.value()[0].incarnation, all.value()[2].incarnation);
}

// One call sets many flows to different states (in SQLite one statement per state and per key,
// in PostgreSQL one array): every flow gets its own, whether named by incarnation or by id
// alone, and a flow not named keeps its own.
TEST_P(StoreConformance, SetsEachFlowItsOwnDesiredStateInOneCall) {
  std::vector<StoredFlow> flows;
  for (int i = 0; i < 301; ++i) {
    const std::string id = "f-" + std::to_string(i) + (i % 2 ? ".x" : "_y");
    flows.push_back({id, R"({"flow_id":")" + id + R"("})", Desired::kPaused});
  }
  auto incarnations = store_->insertFlows(flows, nullptr);
  ASSERT_TRUE(incarnations.ok());
  ASSERT_EQ(incarnations.value().size(), flows.size());
  const Desired cycle[] = {Desired::kRunning, Desired::kStopped, Desired::kPaused};
  std::vector<DesiredRow> states;
  for (size_t i = 0; i + 1 < flows.size(); ++i) {
    states.push_back({flows[i].id, cycle[i % 3], i % 2 ? incarnations.value()[i] : 0});
  }
  ASSERT_TRUE(store_->setDesired(states, nullptr).ok());
  reopen();
  auto all = store_->loadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), flows.size());
  for (size_t i = 0; i < flows.size(); ++i) {
    EXPECT_EQ(all.value()[i].id, flows[i].id);
    EXPECT_EQ(all.value()[i].desired, i + 1 < flows.size() ? cycle[i % 3] : Desired::kPaused)
        << flows[i].id;
  }
}

// The flow type version a flow started on: kept per incarnation, across a reopen and an export.
TEST_P(StoreConformance, KeepsTheTypeVersionOfTheIncarnation) {
  auto inc = store_->insertFlows({{"v", R"({"flow_id":"v"})", Desired::kRunning}}, nullptr);
  ASSERT_TRUE(inc.ok());
  EXPECT_EQ(store_->loadAll().value()[0].type_version, "");
  ASSERT_TRUE(store_->setTypeVersion("v", inc.value()[0], "1.2.0").ok());
  ASSERT_TRUE(store_->setTypeVersion("v", inc.value()[0] + 1000, "9.9.9").ok());  // another life
  reopen();
  auto all = store_->loadAll();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.value()[0].type_version, "1.2.0");
  auto snapshot = store_->exportAll();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot.value().flows[0].type_version, "1.2.0");
}

// A flow's runs and its type version are written apart (a run record, a first start's
// version): neither write clears the other.
TEST_P(StoreConformance, ARunRecordAndATypeVersionKeepEachOther) {
  auto inc = store_->insertFlows({{"k", R"({"flow_id":"k"})", Desired::kRunning}}, nullptr);
  ASSERT_TRUE(inc.ok());
  ASSERT_TRUE(store_->setRunRecord("k", inc.value()[0], 3, R"({"x":1})").ok());
  ASSERT_TRUE(store_->setTypeVersion("k", inc.value()[0], "1.0.0").ok());
  reopen();
  auto f = store_->loadAll().value()[0];
  EXPECT_EQ(f.runs, 3u);
  EXPECT_EQ(f.last_run, R"({"x":1})");
  EXPECT_EQ(f.type_version, "1.0.0");
  ASSERT_TRUE(store_->setRunRecord("k", inc.value()[0], 4, R"({"x":2})").ok());
  f = store_->loadAll().value()[0];
  EXPECT_EQ(f.runs, 4u);
  EXPECT_EQ(f.last_run, R"({"x":2})");
  EXPECT_EQ(f.type_version, "1.0.0");
}

// Many flows' runs in one call (one transaction): a later row of a flow wins, a row of an
// incarnation that is gone is skipped, and text that needs quoting survives.
TEST_P(StoreConformance, StoresTheRunsOfManyFlowsAtOnce) {
  std::vector<StoredFlow> flows;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "m" + std::to_string(i);
    flows.push_back({id, R"({"flow_id":")" + id + R"("})", Desired::kStopped});
  }
  auto inc = store_->insertFlows(flows, nullptr);
  ASSERT_TRUE(inc.ok());
  std::vector<RunRecordRow> rows;
  for (int i = 0; i < 300; ++i) {
    const std::string id = "m" + std::to_string(i);
    rows.push_back({id, inc.value()[i], 1, R"({"error":"first \"quoted\", {braces}"})"});
  }
  rows.push_back({"m7", inc.value()[7], 2, R"({"second":true})"});  // later: wins
  rows.push_back({"m8", inc.value()[8] + 1000, 9, "{}"});           // another life: skipped
  ASSERT_TRUE(store_->setRunRecords(rows).ok());
  reopen();
  auto all = store_->loadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 300u);
  for (const auto& f : all.value()) {
    if (f.id == "m7") {
      EXPECT_EQ(f.runs, 2u);
      EXPECT_EQ(f.last_run, R"({"second":true})");
    } else {
      EXPECT_EQ(f.runs, 1u) << f.id;
      EXPECT_EQ(f.last_run, R"({"error":"first \"quoted\", {braces}"})") << f.id;
    }
  }
  EXPECT_TRUE(store_->setRunRecords({}).ok());
}

// A flow's runs: kept per incarnation, across a reopen and an export.
TEST_P(StoreConformance, KeepsTheRunsOfTheIncarnation) {
  auto inc = store_->insertFlows({{"r", R"({"flow_id":"r"})", Desired::kStopped}}, nullptr);
  ASSERT_TRUE(inc.ok());
  EXPECT_EQ(store_->loadAll().value()[0].runs, 0u);
  EXPECT_EQ(store_->loadAll().value()[0].last_run, "");
  RunRecord run;
  run.started = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  run.ended = *run.started + std::chrono::seconds(2);
  run.result = RunResult::kFailed;
  run.error = "step hook failed: \"boom\"";
  const std::string stored = storedRunRecord(run);
  ASSERT_TRUE(store_->setRunRecord("r", inc.value()[0], 3, stored).ok());
  ASSERT_TRUE(store_->setRunRecord("r", inc.value()[0] + 1000, 9, "{}").ok());  // another life
  reopen();
  auto all = store_->loadAll();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.value()[0].runs, 3u);
  EXPECT_EQ(all.value()[0].last_run, stored);
  const RunRecord back = parseStoredRunRecord(all.value()[0].last_run);
  EXPECT_EQ(back.started, run.started);
  EXPECT_EQ(back.ended, run.ended);
  EXPECT_EQ(back.result, RunResult::kFailed);
  EXPECT_EQ(back.error, run.error);
  auto snapshot = store_->exportAll();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot.value().flows[0].runs, 3u);
  EXPECT_EQ(snapshot.value().flows[0].last_run, stored);
}

// A deleted flow's runs go with it: the same id created again starts from none, and a late run
// record of the deleted incarnation (the recorder wrote it after the delete) is skipped.
TEST_P(StoreConformance, ARecreatedFlowDoesNotInheritTheRunsOfTheDeletedOne) {
  auto first = store_->insertFlows({{"r", R"({"flow_id":"r"})", Desired::kStopped}}, nullptr);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->setRunRecord("r", first.value()[0], 4, R"({"old":true})").ok());
  ASSERT_TRUE(store_->deleteFlow("r", nullptr).ok());
  ASSERT_TRUE(store_->setRunRecord("r", first.value()[0], 5, R"({"late":true})").ok());
  auto second = store_->insertFlows({{"r", R"({"flow_id":"r"})", Desired::kStopped}}, nullptr);
  ASSERT_TRUE(second.ok());
  ASSERT_NE(second.value()[0], first.value()[0]);
  ASSERT_TRUE(store_->setRunRecord("r", first.value()[0], 6, R"({"later":true})").ok());
  reopen();
  auto all = store_->loadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 1u);
  EXPECT_EQ(all.value()[0].runs, 0u);
  EXPECT_EQ(all.value()[0].last_run, "");
  ASSERT_TRUE(store_->setRunRecord("r", second.value()[0], 1, R"({"new":true})").ok());
  reopen();
  EXPECT_EQ(store_->loadAll().value()[0].runs, 1u);
  EXPECT_EQ(store_->loadAll().value()[0].last_run, R"({"new":true})");
}

TEST_P(StoreConformance, ABatchIsAllOrNothing) {
  ASSERT_TRUE(store_->insertFlows({{"a", "{}", Desired::kStopped}}, nullptr).ok());
  auto r = store_->insertFlows({{"b", "{}", Desired::kStopped}, {"a", "{}", Desired::kStopped}},
                               nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(store_->loadAll().value().size(), 1u);
  // The store still works after the failed transaction.
  ASSERT_TRUE(store_->insertFlows({{"b", "{}", Desired::kStopped}}, nullptr).ok());
  EXPECT_EQ(store_->loadAll().value().size(), 2u);
}

TEST_P(StoreConformance, UpdateKeepsPositionAndStateIsKeyedByIncarnation) {
  auto inc = store_->insertFlows({{"a", "{}", Desired::kStopped}, {"b", "{}", Desired::kStopped}},
                                 nullptr);
  ASSERT_TRUE(inc.ok());
  const Incarnation a = inc.value()[0];
  const Incarnation b = inc.value()[1];
  EXPECT_NE(a, b);
  ASSERT_TRUE(store_->updateFlow("a", a, R"({"flow_id":"a","v":2})", nullptr).ok());
  ASSERT_TRUE(store_->statePut(a, "offset", std::string("4\0 2", 4)).ok());
  EXPECT_EQ(*store_->stateGet(a, "offset").value(), std::string("4\0 2", 4));
  auto all = store_->loadAll().value();
  EXPECT_EQ(all[0].record_json, R"({"flow_id":"a","v":2})");
  EXPECT_EQ(all[0].incarnation, a);
  // Deleted and created again under the same id: a new incarnation, which neither sees the old
  // state nor can be updated through the old incarnation.
  ASSERT_TRUE(store_->deleteFlow("a", nullptr).ok());
  auto again = store_->insertFlows({{"a", R"({"flow_id":"a","v":3})", Desired::kStopped}}, nullptr);
  ASSERT_TRUE(again.ok());
  const Incarnation a2 = again.value()[0];
  EXPECT_NE(a2, a);
  EXPECT_FALSE(store_->stateGet(a2, "offset").value().has_value());
  auto stale = store_->updateFlow("a", a, R"({"flow_id":"a","v":9})", nullptr);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store_->loadAll().value()[1].record_json, R"({"flow_id":"a","v":3})");
  // The old incarnation's state goes when asked (after the flow stopped)...
  ASSERT_TRUE(store_->deleteState(a).ok());
  EXPECT_FALSE(store_->stateGet(a, "offset").value().has_value());
  // ...and what plugin code of the deleted flow writes late is gone by the next open at most.
  ASSERT_TRUE(store_->statePut(a, "late", "x").ok());
  reopen();
  EXPECT_FALSE(store_->stateGet(a, "late").value().has_value());
  ASSERT_TRUE(store_->stateDelete(b, "nothing").ok());
}

TEST_P(StoreConformance, StateValuesAreBytes) {
  auto inc = store_->insertFlows({{"a", "{}", Desired::kStopped}}, nullptr).value()[0];
  std::string every;
  for (int i = 0; i < 256; ++i) every.push_back(static_cast<char>(i));
  ASSERT_TRUE(store_->statePut(inc, "bytes", every).ok());
  ASSERT_TRUE(store_->statePut(inc, "empty", "").ok());
  ASSERT_TRUE(store_->statePut(inc, "k", "1").ok());
  ASSERT_TRUE(store_->statePut(inc, "k", "2").ok());  // replaces
  reopen();
  EXPECT_EQ(*store_->stateGet(inc, "bytes").value(), every);
  EXPECT_EQ(*store_->stateGet(inc, "empty").value(), "");
  EXPECT_EQ(*store_->stateGet(inc, "k").value(), "2");
  ASSERT_TRUE(store_->stateDelete(inc, "k").ok());
  EXPECT_FALSE(store_->stateGet(inc, "k").value().has_value());
}

TEST_P(StoreConformance, UnknownFlowsAreNotFoundAndWriteNothing) {
  auto r = store_->updateFlow("ghost", 12345, "{}", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(store_->deleteFlow("ghost", nullptr).ok());
  EXPECT_TRUE(store_->setDesired({{"ghost", Desired::kRunning}}, nullptr).ok());
  EXPECT_TRUE(store_->loadAll().value().empty());
}

TEST_P(StoreConformance, SequencesNeverHandOutANumberTwice) {
  auto first = store_->reserveSequence("events", 10);
  ASSERT_TRUE(first.ok());
  auto second = store_->reserveSequence("events", 5);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.value(), first.value() + 10);
  EXPECT_EQ(store_->reserveSequence("other", 1).value(), 1u);  // each name on its own
  reopen();
  EXPECT_EQ(store_->reserveSequence("events", 1).value(), second.value() + 5);
  // Two processes reserving at once: no number twice.
  auto other = open();
  ASSERT_NE(other, nullptr);
  std::set<uint64_t> seen;
  std::mutex mu;
  std::atomic<bool> failed{false};
  auto reserve = [&](Store* s) {
    for (int i = 0; i < 50; ++i) {
      auto r = s->reserveSequence("events", 3);
      if (!r.ok()) {
        failed = true;
        return;
      }
      std::lock_guard lock(mu);
      for (uint64_t n = r.value(); n < r.value() + 3; ++n) {
        if (!seen.insert(n).second) failed = true;
      }
    }
  };
  std::thread t1(reserve, store_.get()), t2(reserve, other.get());
  t1.join();
  t2.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(seen.size(), 300u);
}

TEST_P(StoreConformance, BothBackendsHaveTheSameSchemaHistory) {
  auto history = store_->schemaHistory();
  ASSERT_TRUE(history.ok()) << history.error().message;
  ASSERT_EQ(history.value().size(), schemaMigrations().size());
  for (size_t i = 0; i < schemaMigrations().size(); ++i) {
    EXPECT_EQ(history.value()[i].version, schemaMigrations()[i].version);
    EXPECT_EQ(history.value()[i].name, schemaMigrations()[i].name);
  }
  reopen();  // opening again applies nothing twice
  EXPECT_EQ(store_->schemaHistory().value().size(), schemaMigrations().size());
  EXPECT_TRUE(store_->checkWritable().ok());
}

TEST_P(StoreConformance, ConcurrentWritersAllCommit) {
  constexpr int kThreads = 6;
  constexpr int kFlows = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kFlows; ++i) {
        const std::string id = "f" + std::to_string(t) + "-" + std::to_string(i);
        auto inc = store_->insertFlows({{id, "{}", Desired::kStopped}}, nullptr);
        if (!inc.ok() || !store_->setDesired({{id, Desired::kRunning}}, nullptr).ok() ||
            !store_->statePut(inc.value()[0], "n", std::to_string(i)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = store_->loadAll().value();
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kFlows));
  for (const auto& f : all) EXPECT_EQ(f.desired, Desired::kRunning) << f.id;
  EXPECT_GT(store_->commitDurations().snapshot().count, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance, ::testing::Values("sqlite", "postgresql"),
                         backendName);

}  // namespace
}  // namespace sluice::test
