// Dependencies between flows (issue #12, runtime.after) against the real binary: the edges are
// checked at POST and PUT (upstreams exist, no cycle), a flow starts once every upstream's run
// ended as its edge requires, deleting an upstream needs ?force=true, and status shows what a
// flow waits for. Jobs are probe flows that finish (done_after) or fail (fail_after).
#include <string>

#include "fakes/api_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

class Dag : public ApiFixture {
 protected:
  /// A probe job that succeeds after `steps` steps of 20 ms, after `after` (JSON array text).
  static std::string job(const std::string& id, const std::string& after = "",
                         const std::string& ends = R"("done_after":1)") {
    std::string s =
        R"({"flow_id":")" + id + R"(","type":"probe","config":{"interval_ms":20,)" + ends + "}";
    if (!after.empty()) s += R"(,"runtime":{"after":)" + after + "}";
    return s + "}";
  }
  static std::string edge(const std::string& id, const std::string& on = "succeeded") {
    return R"({"flow_id":")" + id + R"(","on":")" + on + R"("})";
  }
  void create(const std::string& array) {
    auto r = post("/flows", array);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  void start(const std::string& id) {
    auto r = patch(R"({"command":"start","flow_ids":[")" + id + R"("]})");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  uint64_t runs(const std::string& id) { return statusDoc(id)["runs"].GetUint64(); }
  bool waitState(const std::string& id, const std::string& state) {
    return waitFor([&] { return statusOf(id) == state; }, 30s);
  }
  /// The flow ids in waiting_for of `id`, joined with commas.
  std::string waitingFor(const std::string& id) {
    auto s = statusDoc(id);
    if (!s.HasMember("waiting_for")) return "<absent>";
    std::string out;
    for (const auto& w : s["waiting_for"].GetArray()) {
      if (!out.empty()) out += ",";
      out += w["flow_id"].GetString();
    }
    return out;
  }
  std::string lastRunText(const std::string& id, const char* member) {
    auto s = statusDoc(id);
    if (!s["last_run"].IsObject()) return "<never>";
    return memberText(s["last_run"], member);
  }
};

TEST_F(Dag, EdgesAreCheckedAtPostAndPut) {
  expectRefused(post("/flows", "[" + job("a", "[" + edge("nope") + "]") + "]"),
                "/runtime/after/0/flow_id", "flow 'nope' does not exist");
  expectRefused(post("/flows", "[" + job("a", "[" + edge("a") + "]") + "]"), "/runtime/after",
                "runtime.after makes a cycle: a -> a");
  expectRefused(post("/flows", "[" + job("a", R"([{"flow_id":"b","on":"maybe"}])") + "]"),
                "/runtime/after/0/on", R"(\"succeeded\", \"failed\" or \"completed\")");
  expectRefused(post("/flows", "[" + job("a", R"([{"on":"failed"}])") + "]"),
                "/runtime/after/0/flow_id", "runtime.after[0].flow_id is required");
  expectRefused(post("/flows", "[" + job("a", R"({"flow_id":"b"})") + "]"), "/runtime/after",
                "runtime.after must be an array");
  expectRefused(
      post("/flows", "[" + job("a", "[" + edge("b") + R"(,{"flow_id":"b","on":"x"}])") + "]"),
      "/runtime/after/1", "runtime.after[1].on");
  // A cycle within one request: nothing is stored.
  expectRefused(post("/flows", "[" + job("x", "[" + edge("y") + "]") + "," +
                                   job("y", "[" + edge("x") + "]") + "]"),
                "/runtime/after", "runtime.after makes a cycle: x -> y -> x");
  EXPECT_EQ(get("/flows/x").status, 404);
  EXPECT_EQ(get("/flows/y").status, 404);
  // Upstreams in the same request are fine, in any order.
  create("[" + job("b", "[" + edge("a") + "]") + "," + job("a") + "]");
  create("[" + job("c", "[" + edge("b", "completed") + "]") + "]");
  // PUT that would close a cycle a -> c -> b -> a: refused, the stored configuration stays.
  expectRefused(put("/flows/a", job("a", "[" + edge("c") + "]")), "/runtime/after",
                "runtime.after makes a cycle: a -> c -> b -> a");
  EXPECT_EQ(get("/flows/a").body.find("runtime"), std::string::npos) << get("/flows/a").body;
  expectRefused(put("/flows/b", job("b", "[" + edge("gone") + "]")), "/runtime/after/0/flow_id",
                "flow 'gone' does not exist");
  // The validate endpoint finds the same.
  auto v = post("/flows/validate", "[" + job("z", "[" + edge("nope") + "]") + "]");
  EXPECT_EQ(v.status, 200) << v.body;
  EXPECT_NE(v.body.find(R"("valid":false)"), std::string::npos) << v.body;
  EXPECT_NE(v.body.find("runtime.after[0]: flow 'nope' does not exist"), std::string::npos)
      << v.body;
}

// A -> (B, C) -> D: D starts exactly once, after both B and C ended, and only then.
TEST_F(Dag, DiamondStartsTheJoinOnceAfterBothBranches) {
  create("[" + job("a") + "," + job("b", "[" + edge("a") + "]") + "," +
         job("c", "[" + edge("a") + "]", R"("done_after":100)") + "," +
         job("d", "[" + edge("b") + "," + edge("c") + "]") + "]");
  EXPECT_EQ(waitingFor("d"), "b,c");
  EXPECT_EQ(waitingFor("a"), "<absent>") << "a flow without runtime.after shows none";
  start("a");
  ASSERT_TRUE(waitState("b", "completed"));
  // c takes 100 steps of 20 ms: d waits for it alone now.
  EXPECT_EQ(waitingFor("d"), "c");
  EXPECT_EQ(runs("d"), 0u);
  auto s = statusDoc("d");
  EXPECT_EQ(memberText(s, "status"), "stopped");
  ASSERT_TRUE(waitState("c", "completed"));
  ASSERT_TRUE(waitState("d", "completed"));
  EXPECT_EQ(runs("a"), 1u);
  EXPECT_EQ(runs("b"), 1u);
  EXPECT_EQ(runs("c"), 1u);
  EXPECT_EQ(runs("d"), 1u);
  // It started after both ended (RFC 3339 UTC times of one format compare as text; they have
  // millisecond precision, so "after" may read as the same millisecond).
  EXPECT_GE(lastRunText("d", "started"), lastRunText("b", "ended"));
  EXPECT_GE(lastRunText("d", "started"), lastRunText("c", "ended"));
  // Its run consumed both: it waits for new runs of both again.
  EXPECT_EQ(waitingFor("d"), "b,c");
  // A second run of the whole graph starts d once more, not twice.
  start("a");
  ASSERT_TRUE(waitFor([&] { return runs("c") == 2; }, 30s));
  ASSERT_TRUE(waitFor([&] { return runs("d") == 2 && statusOf("d") == "completed"; }, 30s));
  EXPECT_EQ(runs("d"), 2u);
}

// A failure of B holds D (after B succeeded) back until a run of B succeeds; a flow after B
// "failed" starts on it; one after B "completed" starts on any end.
TEST_F(Dag, AFailedUpstreamHoldsBackUntilItSucceeds) {
  create("[" + job("a") + "," + job("b", "", R"("fail_after":1)") + "," +
         job("d", "[" + edge("a") + "," + edge("b") + "]") + "," +
         job("on-failure", "[" + edge("b", "failed") + "]") + "," +
         job("either", "[" + edge("b", "completed") + "]") + "]");
  start("a");
  ASSERT_TRUE(waitState("a", "completed"));
  start("b");
  ASSERT_TRUE(waitState("b", "failed"));
  ASSERT_TRUE(waitState("on-failure", "completed"));
  ASSERT_TRUE(waitState("either", "completed"));
  EXPECT_EQ(runs("d"), 0u);
  auto s = statusDoc("d");
  ASSERT_TRUE(s["waiting_for"].IsArray()) << memberText(s, "waiting_for");
  ASSERT_EQ(s["waiting_for"].Size(), 1u);
  EXPECT_EQ(memberText(s["waiting_for"][0], "flow_id"), "b");
  EXPECT_EQ(memberText(s["waiting_for"][0], "on"), "succeeded");
  EXPECT_EQ(memberText(s["waiting_for"][0], "last_result"), "failed");
  // b is fixed and runs again: now d starts (a's success still counts: d has not run since).
  ASSERT_EQ(put("/flows/b", job("b")).status, 200);
  start("b");
  ASSERT_TRUE(waitState("d", "completed"));
  EXPECT_EQ(runs("d"), 1u);
  EXPECT_EQ(runs("on-failure"), 1u) << "b's success does not start the flow after its failure";
  ASSERT_TRUE(waitFor([&] { return runs("either") == 2; }, 30s));
}

// While no flow lists another in runtime.after, a run's end looks for no dependents (a stop of
// 100,000 flows posted as many look-ups); an edge made later, by POST or PUT, counts at once.
TEST_F(Dag, AnEdgeMadeAfterRunsThatHadNoDependentsCounts) {
  create("[" + job("a") + "," + job("c") + "]");
  for (uint64_t n = 1; n <= 2; ++n) {  // the first end finds no dependents, the second skips
    start("a");
    ASSERT_TRUE(waitFor([&] { return runs("a") == n && statusOf("a") == "completed"; }, 30s));
  }
  create("[" + job("b", "[" + edge("a") + "]") + "]");
  ASSERT_EQ(put("/flows/c", job("c", "[" + edge("a") + "]")).status, 200);
  start("a");
  ASSERT_TRUE(waitFor([&] { return runs("b") == 1 && statusOf("b") == "completed"; }, 30s))
      << statusOf("b");
  ASSERT_TRUE(waitFor([&] { return runs("c") == 1 && statusOf("c") == "completed"; }, 30s))
      << statusOf("c");
  EXPECT_EQ(runs("a"), 3u);
}

TEST_F(Dag, AnUpstreamIsDeletedOnlyWithForce) {
  create("[" + job("a") + "," + job("b", "[" + edge("a") + "]") + "," +
         job("c", "[" + edge("a", "failed") + "]") + "]");
  auto r = del("/flows/a");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("flow 'a' is upstream of 'b', 'c'"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("?force=true"), std::string::npos) << r.body;
  EXPECT_EQ(get("/flows/a").status, 200) << "nothing was deleted";
  EXPECT_EQ(del("/flows/a?force=maybe").status, 400);
  EXPECT_EQ(get("/flows/a").status, 200);
  // A downstream flow itself is deleted without ceremony.
  EXPECT_EQ(del("/flows/c").status, 200);
  EXPECT_EQ(del("/flows/a?force=false").status, 400);
  r = del("/flows/a?force=true");
  EXPECT_EQ(r.status, 200) << r.body;
  auto s = statusDoc("b");
  ASSERT_TRUE(s["waiting_for"].IsArray());
  ASSERT_EQ(s["waiting_for"].Size(), 1u);
  EXPECT_EQ(memberText(s["waiting_for"][0], "flow_id"), "a");
  ASSERT_TRUE(s["waiting_for"][0].HasMember("missing"));
  EXPECT_TRUE(s["waiting_for"][0]["missing"].IsBool() && s["waiting_for"][0]["missing"].GetBool());
}

// The upstream runs that count are stored with the flows: an engine restart between the two
// branches still starts the join once the second one ends. (SIGTERM: a kill -9 in the moment
// between a run showing completed and its record being stored would lose that run.)
TEST_F(Dag, AJoinSurvivesARestartBetweenItsBranches) {
  create("[" + job("b") + "," + job("c") + "," + job("d", "[" + edge("b") + "," + edge("c") + "]") +
         "]");
  start("b");
  ASSERT_TRUE(waitState("b", "completed"));
  EXPECT_EQ(waitingFor("d"), "c");
  server_->kill(SIGTERM);
  startServer();
  EXPECT_EQ(waitingFor("d"), "c");
  start("c");
  ASSERT_TRUE(waitState("d", "completed"));
  EXPECT_EQ(runs("d"), 1u);
}

}  // namespace
}  // namespace sluice::test
