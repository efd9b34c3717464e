// GET /events (issue #9): the change feed as Server-Sent Events, against the real binary, for
// what is delivered. Every transition, configuration change and plugin load is one event with an
// increasing id; 100 subscribers each see every transition of 1000 flows, in order; config
// events for each change, and a failure's error; filters by flow and type, and the requests that
// are refused. Resume, reset, heartbeats, slow consumers and shutdown: events_stream_test.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fakes/events_fixture.hpp"

namespace sluice::test::events {
namespace {

// ---------------------------------------------------------------------------------------------
// 100 subscribers while 1000 flows are created, started and stopped.

TEST_F(EventsTest, HundredSubscribersSeeEveryTransitionOfThousandFlowsInOrder) {
  constexpr size_t kSubscribers = 100;
  constexpr size_t kFlows = 1000;
  constexpr size_t kBatches = 4;  // concurrent writers, so that flows' events interleave
  start();
  const auto t0 = Clock::now();

  // What each subscriber saw, kept compact: 100 x 5000 events.
  struct Seen {
    uint64_t last_id = 0;
    std::string id_problem;                              // the first id not increasing
    std::unordered_map<std::string, std::string> flows;  // flow -> "config:created,state:..."
    std::vector<std::string> other;                      // events of no flow of the test
    uint64_t hash = 1469598103934665603ull;              // FNV-1a of the whole stream
    size_t count = 0;
    bool marker = false;
  };
  std::vector<Seen> seen(kSubscribers);
  std::vector<std::unique_ptr<SseClient>> subs;
  std::vector<SseClient*> raw;
  for (size_t i = 0; i < kSubscribers; ++i) {
    subs.push_back(std::make_unique<SseClient>(port(), "/events"));
    raw.push_back(subs.back().get());
    Seen* s = &seen[i];
    const bool full_check = i == 0;  // one subscriber checks every field of every event
    subs.back()->parser().on_event = [s, full_check](SseEvent&& e) {
      ++s->count;
      for (const std::string* part : {&e.id_text, &e.type, &e.data}) {
        for (char ch : *part)
          s->hash = (s->hash ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
        s->hash = (s->hash ^ 0xff) * 1099511628211ull;
      }
      if (!e.id || *e.id <= s->last_id) {
        if (s->id_problem.empty()) {
          s->id_problem = describe(e) + " after id " + std::to_string(s->last_id);
        }
      } else {
        s->last_id = *e.id;
      }
      const std::string_view flow = quickField(e.data, "flow_id");
      if (flow == "marker") {
        s->marker = true;
        return;
      }
      if (flow.substr(0, 2) != "f-") {
        s->other.push_back(describe(e));
        return;
      }
      std::string step = e.type + ":";
      step += e.type == "state" ? quickField(e.data, "status") : quickField(e.data, "op");
      if (full_check) {
        const Data d = decode(e);
        EXPECT_EQ(d.flow_id, std::string(flow)) << describe(e);
        if (e.type == "state") {
          const bool up = d.status == "starting" || d.status == "running";
          EXPECT_EQ(d.desired, up ? "running" : "stopped") << describe(e);
          EXPECT_TRUE(d.error_null) << describe(e);
        }
      }
      auto& seq = s->flows[std::string(flow)];
      if (!seq.empty()) seq += ',';
      seq += step;
    };
  }
  ASSERT_TRUE(pollAll(
      raw,
      [&] {
        for (auto* c : raw) {
          if (c->status() != 200 || !c->parser().retry()) return false;
        }
        return true;
      },
      60s))
      << "not every subscriber got its stream";
  const auto subscribed = Clock::now();

  // Writers: each creates, starts and stops its batch of flows.
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> expected;  // guarded by mu
  std::vector<std::string> problems;                         // guarded by mu
  std::atomic<size_t> writers_done{0};
  std::vector<std::thread> writers;
  for (size_t b = 0; b < kBatches; ++b) {
    writers.emplace_back([&, b] {
      std::vector<std::string> ids;
      for (size_t i = b; i < kFlows; i += kBatches) ids.push_back("f-" + std::to_string(i));
      std::map<std::string, std::vector<std::string>> mine;
      std::vector<std::string> bad;
      try {
        createStartStop(ids, &mine, &bad);
      } catch (const std::exception& e) {
        bad.push_back(std::string("writer: ") + e.what());
      }
      std::lock_guard lock(mu);
      expected.merge(mine);
      problems.insert(problems.end(), bad.begin(), bad.end());
      ++writers_done;
    });
  }
  // Read while the writers write; then a last change, after which nothing else is published.
  pollAll(
      raw, [&] { return writers_done == kBatches; }, 120s);
  for (auto& w : writers) w.join();
  const auto written = Clock::now();
  ASSERT_TRUE(problems.empty()) << problems.front();
  ASSERT_EQ(expected.size(), kFlows);
  ASSERT_EQ(post(R"([{"flow_id":"marker"}])").status, 201);
  const bool all_done = pollAll(
      raw,
      [&] {
        for (size_t i = 0; i < kSubscribers; ++i) {
          if (!seen[i].marker && !raw[i]->closed()) return false;
        }
        return true;
      },
      120s);
  const auto delivered = Clock::now();
  EXPECT_TRUE(all_done) << "not every subscriber saw the last event in time";

  size_t expected_events = 0;
  for (const auto& [id, seq] : expected) expected_events += seq.size();
  std::map<std::string, std::string> expected_seq;
  for (const auto& [id, seq] : expected) {
    std::string joined;
    for (const auto& step : seq) joined += (joined.empty() ? "" : ",") + step;
    EXPECT_EQ(joined, "config:created,state:starting,state:running,state:stopping,state:stopped")
        << id << " went through other transitions (from the commands' answers)";
    expected_seq[id] = joined;
  }
  for (size_t i = 0; i < kSubscribers; ++i) {
    const Seen& s = seen[i];
    SCOPED_TRACE("subscriber " + std::to_string(i));
    EXPECT_FALSE(raw[i]->closed()) << "the stream ended";
    EXPECT_TRUE(s.marker);
    EXPECT_EQ(s.id_problem, "") << "ids must increase";
    EXPECT_TRUE(raw[i]->parser().oddities().empty()) << raw[i]->parser().oddities().front();
    EXPECT_TRUE(s.other.empty()) << s.other.front();
    EXPECT_EQ(s.count, expected_events + 1);  // and the marker
    size_t wrong = 0;
    for (const auto& [id, seq] : expected_seq) {
      auto it = s.flows.find(id);
      const std::string got = it == s.flows.end() ? "" : it->second;
      if (got != seq && wrong++ < 3) ADD_FAILURE() << id << ": saw [" << got << "]";
    }
    EXPECT_EQ(wrong, 0u) << "flows whose transitions this subscriber saw wrong";
    EXPECT_EQ(s.hash, seen[0].hash) << "every subscriber gets the same stream";
    if (HasFailure()) break;  // one subscriber's report is enough
  }
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "[ timing   ] " << kSubscribers << " subscribers in " << ms(subscribed - t0)
            << " ms; " << kFlows << " flows created/started/stopped in " << ms(written - subscribed)
            << " ms; all " << expected_events + 1 << " events delivered to all after "
            << ms(delivered - subscribed) << " ms\n";
}

// ---------------------------------------------------------------------------------------------
// Filters, and the requests that are refused.

TEST_F(EventsTest, FiltersByFlowAndType) {
  start({"--plugin-dir", SLUICE_BROKEN_PLUGIN_DIR});  // plugin events, refused ones too
  auto all = subscribe();
  struct Filtered {
    std::string path;
    std::function<bool(const SseEvent&)> passes;
    std::unique_ptr<SseClient> client;
  };
  auto flowOf = [](const SseEvent& e) { return std::string(quickField(e.data, "flow_id")); };
  std::vector<Filtered> filtered;
  filtered.push_back({"/events?flow_id=fa,fb",
                      [&](const SseEvent& e) {
                        return e.type != "plugin" && (flowOf(e) == "fa" || flowOf(e) == "fb");
                      },
                      nullptr});
  filtered.push_back(
      {"/events?types=state", [](const SseEvent& e) { return e.type == "state"; }, nullptr});
  filtered.push_back(
      {"/events?types=config", [](const SseEvent& e) { return e.type == "config"; }, nullptr});
  filtered.push_back({"/events?types=state,config&flow_id=fb",
                      [&](const SseEvent& e) { return e.type != "plugin" && flowOf(e) == "fb"; },
                      nullptr});
  filtered.push_back({"/events?flow_id=fb&types=config",
                      [&](const SseEvent& e) { return e.type == "config" && flowOf(e) == "fb"; },
                      nullptr});
  for (auto& f : filtered) f.client = subscribe(f.path);

  ASSERT_EQ(post(R"([{"flow_id":"fa"},{"flow_id":"fb"},{"flow_id":"fc"}])").status, 201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["fa","fb","fc"]})").status, 200);
  ASSERT_EQ(put("fa", R"({"flow_id":"fa","name":"A"})").status, 200);
  ASSERT_EQ(del("fc").status, 200);
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["fb"]})").status, 200);
  ASSERT_EQ(del("fb").status, 200);  // the last event: passes every filter but types=state
  ASSERT_TRUE(waitConfig(*all, "fb", "deleted"));
  EXPECT_EQ(checkIncreasing(all->events()), "");
  for (auto& f : filtered) {
    SCOPED_TRACE(f.path);
    std::vector<SseEvent> expected;
    for (const auto& e : all->events()) {
      if (f.passes(e)) expected.push_back(e);
    }
    ASSERT_FALSE(expected.empty());
    ASSERT_TRUE(f.client->waitEvents(expected.size(), 20s)) << f.client->events().size();
    // Nothing more arrives: the last expected event was the last one published.
    f.client->readUntil([] { return false; }, 300ms);
    ASSERT_EQ(f.client->events().size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_TRUE(sameEvent(f.client->events()[i], expected[i]))
          << i << ": " << describe(f.client->events()[i]) << " instead of "
          << describe(expected[i]);
    }
    EXPECT_TRUE(f.client->parser().oddities().empty()) << f.client->parser().oddities().front();
  }

  // Plugin events (published at startup): with the whole history, and only when no flow_id.
  auto history = subscribe("/events", {"Last-Event-ID: 0"});
  auto plugins = subscribe("/events?types=plugin", {"Last-Event-ID: 0"});
  auto flow_only = subscribe("/events?flow_id=fa", {"Last-Event-ID: 0"});
  auto plugin_flow = subscribe("/events?types=plugin&flow_id=fa", {"Last-Event-ID: 0"});
  const uint64_t newest = *all->events().back().id;
  ASSERT_TRUE(history->readUntil(
      [&] { return !history->events().empty() && *history->events().back().id == newest; }, 20s));
  std::vector<SseEvent> plugin_events;
  for (const auto& e : history->events()) {
    if (e.type == "plugin") plugin_events.push_back(e);
  }
  ASSERT_FALSE(plugin_events.empty());
  EXPECT_EQ(plugin_events.front().id, std::optional<uint64_t>(1));
  bool noop_loaded = false;
  bool fault_loaded = false;
  bool refused = false;
  for (const auto& e : plugin_events) {
    auto doc = parseJson(e.data);
    EXPECT_EQ(memberNames(doc),
              (std::vector<std::string>{"error", "file", "loaded", "plugin", "types"}))
        << e.data;
    if (!doc.IsObject() || !doc["loaded"].IsBool() || !doc["types"].IsArray()) continue;
    EXPECT_NE(stringOr(doc, "file", ""), "") << e.data;
    if (doc["loaded"].GetBool()) {
      EXPECT_TRUE(doc["error"].IsNull()) << e.data;
      const std::string plugin = stringOr(doc, "plugin", "");
      std::vector<std::string> types;
      for (const auto& t : doc["types"].GetArray()) types.emplace_back(t.GetString());
      if (plugin == "noop") noop_loaded = types == std::vector<std::string>{"noop"};
      if (plugin == "fault") fault_loaded = types == std::vector<std::string>{"fault"};
    } else {
      refused = true;
      EXPECT_NE(stringOr(doc, "error", ""), "") << e.data;
      EXPECT_TRUE(doc["plugin"].IsNull()) << e.data;
      EXPECT_EQ(doc["types"].Size(), 0u) << e.data;
    }
  }
  EXPECT_TRUE(noop_loaded);
  EXPECT_TRUE(fault_loaded);
  EXPECT_TRUE(refused) << "the broken plugins are refused, each with a plugin event";
  ASSERT_TRUE(plugins->waitEvents(plugin_events.size(), 20s));
  ASSERT_TRUE(flow_only->readUntil(
      [&] {
        return !flow_only->events().empty() && what(flow_only->events().back()) == "config:updated";
      },
      20s));
  // A filter that passes nothing: silence (the flow events of fa come later than the plugins').
  auto fa_only = subscribe("/events?flow_id=fa");
  plugins->readUntil([] { return false; }, 300ms);
  EXPECT_EQ(plugins->events().size(), plugin_events.size());
  for (size_t i = 0; i < std::min(plugins->events().size(), plugin_events.size()); ++i) {
    EXPECT_TRUE(sameEvent(plugins->events()[i], plugin_events[i])) << i;
  }
  for (const auto& e : flow_only->events()) {
    EXPECT_NE(e.type, "plugin") << describe(e);
    EXPECT_EQ(quickField(e.data, "flow_id"), "fa") << describe(e);
  }
  plugin_flow->readUntil([] { return false; }, 300ms);
  EXPECT_TRUE(plugin_flow->events().empty()) << describe(plugin_flow->events().front());
  EXPECT_FALSE(plugin_flow->closed());

  // Refused: an unknown type, and a Last-Event-ID that is not a number.
  for (const char* path :
       {"/events?types=bogus", "/events?types=state,bogus", "/events?flow_id=fa&types=States"}) {
    expectJsonError(get(path), 400, path);
  }
  for (const char* id : {"abc", "12x", "-1", "1.5", "0x10"}) {
    expectJsonError(requestWith(port(), "GET", "/events", {std::string("Last-Event-ID: ") + id}),
                    400, std::string("Last-Event-ID: ") + id);
  }
  // ... also when the client does not close the connection first (as EventSource would).
  SseClient bad(port(), "/events?types=nope");
  ASSERT_TRUE(bad.waitResponse(20s));
  EXPECT_EQ(bad.status(), 400);
  EXPECT_EQ(bad.header("content-type"), "application/json");
  EXPECT_TRUE(parseJson(bad.body()).HasMember("error")) << bad.body();
  // The server is unharmed.
  EXPECT_EQ(get("/flows/status").status, 200);
  fa_only->readUntil([] { return false; }, 100ms);
  EXPECT_TRUE(fa_only->events().empty());
}

// ---------------------------------------------------------------------------------------------
// Config events for each change, and a failure's error.

TEST_F(EventsTest, ConfigEventsAndFailureError) {
  start();
  auto s = subscribe();
  ASSERT_EQ(post(R"([{"flow_id":"c1"}])").status, 201);
  ASSERT_EQ(put("c1", R"({"flow_id":"c1","name":"renamed"})").status, 200);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["c1"]})").status, 200);
  ASSERT_EQ(del("c1").status, 200);  // running: stops first
  ASSERT_EQ(post(R"([{"flow_id":"bad","type":"fault","config":{"in":"start","do":"error"}},
                     {"flow_id":"boom","type":"fault","config":{"in":"start","do":"throw"}}])")
                .status,
            201);
  auto r = patch(R"({"command":"start","flow_ids":["bad"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("failed"), std::string::npos) << r.body;
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["boom"]})").status, 200);
  ASSERT_EQ(post(R"([{"flow_id":"marker"}])").status, 201);
  ASSERT_TRUE(waitConfig(*s, "marker", "created"));

  std::vector<std::string> got;
  for (const auto& e : s->events()) got.push_back(what(e) + " " + decode(e).flow_id);
  EXPECT_EQ(got,
            (std::vector<std::string>{
                "config:created c1", "config:updated c1", "state:starting c1", "state:running c1",
                "state:stopping c1", "state:stopped c1", "config:deleted c1", "config:created bad",
                "config:created boom", "state:starting bad", "state:failed bad",
                "state:starting boom", "state:failed boom", "config:created marker"}));
  EXPECT_EQ(checkIncreasing(s->events()), "");
  EXPECT_TRUE(s->parser().oddities().empty()) << s->parser().oddities().front();
  for (const auto& e : s->events()) {
    if (e.type != "state") continue;
    const Data d = decode(e);
    if (d.status == "failed") {
      EXPECT_FALSE(d.error_null) << describe(e);
      EXPECT_NE(d.error.find(d.flow_id == "bad" ? "injected error in start"
                                                : "injected exception in start"),
                std::string::npos)
          << describe(e);
      EXPECT_EQ(d.desired, "running") << describe(e);
    } else {
      EXPECT_TRUE(d.error_null) << describe(e);
    }
  }
  // The failure is what the status says too.
  auto st = parseJson(get("/flows/status/bad").body);
  EXPECT_EQ(stringOr(st, "status", ""), "failed");
}

}  // namespace
}  // namespace sluice::test::events
