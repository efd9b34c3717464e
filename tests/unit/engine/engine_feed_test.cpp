// The engine's side of observability: the events it publishes, readiness during the startup
// restore, If-Match preconditions, and paged, filtered reads.
#include <future>
#include <map>

#include "core/model/content_tag.hpp"
#include "fakes/engine_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

class EngineFeedTest : public EngineFixture {
 protected:
  // Every event of `kind` published after `after`, as (flow_id, data).
  std::vector<std::pair<std::string, std::string>> events(EventKind kind, uint64_t after) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : engine_->feed().since(after, 100'000).events) {
      if (e->kind == kind) out.emplace_back(e->flow_id, e->json());
    }
    return out;
  }
  std::vector<std::string> statuses(const std::string& id, uint64_t after) {
    std::vector<std::string> out;
    for (const auto& [flow, data] : events(EventKind::kState, after)) {
      if (flow != id) continue;
      rapidjson::Document d;
      EXPECT_TRUE(json::parse(data, d, nullptr)) << data;
      out.emplace_back(d["status"].GetString());
    }
    return out;
  }
};

TEST_F(EngineFeedTest, TransitionsAndChangesArePublishedInOrder) {
  const uint64_t start = engine_->feed().last();
  EXPECT_FALSE(events(EventKind::kPlugin, 0).empty()) << "the startup scan publishes plugins";
  create(R"({"flow_id":"a","type":"noop"})");
  ASSERT_TRUE(command(Command::kStart, {"a"}).ok());
  ASSERT_TRUE(command(Command::kPause, {"a"}).ok());
  ASSERT_TRUE(command(Command::kResume, {"a"}).ok());
  ASSERT_TRUE(update(R"({"flow_id":"a","type":"noop","name":"n"})").ok());
  ASSERT_TRUE(command(Command::kStop, {"a"}).ok());
  ASSERT_TRUE(remove("a").ok());
  EXPECT_EQ(
      statuses("a", start),
      (std::vector<std::string>{"starting", "running", "pausing", "paused", "resuming", "running",
                                "stopping", "starting", "running", "stopping", "stopped"}));
  auto configs = events(EventKind::kConfig, start);
  ASSERT_EQ(configs.size(), 3u);
  EXPECT_EQ(configs[0].second, R"({"flow_id":"a","op":"created"})");
  EXPECT_EQ(configs[1].second, R"({"flow_id":"a","op":"updated"})");
  EXPECT_EQ(configs[2].second, R"({"flow_id":"a","op":"deleted"})");
  EXPECT_EQ(engine_->feed().transitionsTo(State::kPaused), 1u);
}

TEST_F(EngineFeedTest, AFailureIsPublishedWithItsError) {
  const uint64_t start = engine_->feed().last();
  create(R"({"flow_id":"f","type":"fault","config":{"in":"start","do":"error"}})");
  ASSERT_TRUE(command(Command::kStart, {"f"}).ok());
  auto states = events(EventKind::kState, start);
  ASSERT_FALSE(states.empty());
  rapidjson::Document d;
  ASSERT_TRUE(json::parse(states.back().second, d, nullptr));
  EXPECT_STREQ(d["status"].GetString(), "failed");
  ASSERT_TRUE(d["error"].IsString());
  EXPECT_EQ(engine_->feed().transitionsTo(State::kFailed), 1u);
}

TEST_F(EngineFeedTest, EventIdsKeepGrowingAcrossARestart) {
  create(R"({"flow_id":"a","type":"noop"})");
  const uint64_t before = engine_->feed().last();
  reopen();
  EXPECT_GT(engine_->feed().last(), before) << "the new run's plugin events";
  EXPECT_TRUE(engine_->feed().since(before, 10).lost) << "an id of the previous run";
}

TEST_F(EngineFeedTest, NotReadyUntilTheRestoreIsDone) {
  create(R"({"flow_id":"slow","type":"fault","config":{"in":"start","do":"hang","hang_ms":1500}})");
  create(R"({"flow_id":"quick","type":"noop"})");
  ASSERT_TRUE(command(Command::kStart, {"slow", "quick"}).ok());
  EXPECT_TRUE(engine_->readiness().ready);
  reopen();
  auto r = engine_->readiness();
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.reason.find("restoring"), std::string::npos) << r.reason;
  EXPECT_TRUE(waitFor([&] { return engine_->readiness().ready; }, 30s));
  EXPECT_EQ(engine_->restoring(), 0u);
  engine_->shutdown();
  EXPECT_NE(engine_->readiness().reason.find("shutting down"), std::string::npos);
}

TEST_F(EngineFeedTest, IfMatchGuardsUpdateAndRemove) {
  create(R"({"flow_id":"a","type":"noop"})");
  const std::string tag = contentTag(*engine_->getJson("a"));
  auto put = [&](std::optional<std::vector<std::string>> if_match) {
    std::promise<Result<std::string>> p;
    engine_->update(
        spec(R"({"flow_id":"a","type":"noop","name":"x"})"),
        [&p](Result<std::string> r) { p.set_value(std::move(r)); }, nullptr, if_match);
    return p.get_future().get();
  };
  auto stale = put(std::vector<std::string>{"\"0000000000000000\""});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().kind, ErrorKind::kPrecondition);
  EXPECT_EQ(contentTag(*engine_->getJson("a")), tag) << "nothing changed";
  ASSERT_TRUE(put(std::vector<std::string>{tag}).ok());
  const std::string now = contentTag(*engine_->getJson("a"));
  EXPECT_NE(now, tag);

  std::promise<Result<Outcome>> p;
  engine_->remove(
      "a", [&p](Result<Outcome> r) { p.set_value(std::move(r)); }, nullptr,
      std::vector<std::string>{tag});
  auto removed = p.get_future().get();
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().kind, ErrorKind::kPrecondition);
  EXPECT_TRUE(engine_->getJson("a").has_value());
}

TEST_F(EngineFeedTest, PagesFollowCreationOrderWithFilters) {
  for (int i = 0; i < 7; ++i) {
    create(R"({"flow_id":"f)" + std::to_string(i) + R"(","type":")" +
           (i % 2 == 0 ? "noop" : "ticker") + R"("})");
  }
  ASSERT_TRUE(command(Command::kStart, {"f0", "f2"}).ok());
  Engine::PageQuery q;
  q.limit = 3;
  std::vector<std::string> seen;
  for (;;) {
    auto page = engine_->recordsPage(q);
    ASSERT_TRUE(page.ok());
    for (const auto& [id, record] : page.value().items) seen.push_back(id);
    if (!page.value().more) break;
    q.after = seen.back();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"f0", "f1", "f2", "f3", "f4", "f5", "f6"}));

  Engine::PageQuery running;
  running.status = State::kRunning;
  auto r = engine_->statusPage(running);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().items.size(), 2u);
  EXPECT_EQ(r.value().items[1].id, "f2");

  Engine::PageQuery tickers;
  tickers.type = "ticker";
  tickers.limit = 2;
  auto t = engine_->statusPage(tickers);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t.value().items.size(), 2u);
  EXPECT_TRUE(t.value().more);

  Engine::PageQuery gone;
  gone.after = "nope";
  auto g = engine_->recordsPage(gone);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().kind, ErrorKind::kInvalid);
}

}  // namespace
}  // namespace sluice::test
