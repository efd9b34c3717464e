// GET /events (issue #9): the change feed as Server-Sent Events, against the real binary, for
// the stream's life. A client resumes with Last-Event-ID (or is told to re-read the state);
// heartbeats; a slow consumer is dropped without holding anybody up; the stream ends cleanly on
// shutdown. What is delivered (order, 100 subscribers, config events, filters):
// events_delivery_test.cpp.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fakes/events_fixture.hpp"
#include "fakes/proc.hpp"

namespace sluice::test::events {
namespace {

// ---------------------------------------------------------------------------------------------
// Resuming with Last-Event-ID.

TEST_F(EventsTest, ResumeWithLastEventIdDeliversExactlyTheMissedEvents) {
  start();
  auto all = subscribe();  // connected throughout: what really happened
  auto a = subscribe();
  auto f = subscribe("/events?flow_id=r2&types=state");
  ASSERT_EQ(post(R"([{"flow_id":"r1"},{"flow_id":"r2"}])").status, 201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["r1","r2"]})").status, 200);
  ASSERT_TRUE(a->waitEvents(6, 20s)) << a->events().size();
  ASSERT_TRUE(f->waitEvents(2, 20s)) << f->events().size();
  ASSERT_TRUE(all->waitEvents(6, 20s));
  const uint64_t seen_a = *a->events().back().id;
  const uint64_t seen_f = *f->events().back().id;
  EXPECT_EQ(f->events().back().type, "state");
  EXPECT_EQ(quickField(f->events().back().data, "status"), "running");
  a->close();
  f->close();

  // Changes while both are away.
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["r1"]})").status, 200);
  ASSERT_EQ(put("r2", R"({"flow_id":"r2","name":"renamed"})").status, 200);
  ASSERT_EQ(del("r1").status, 200);
  ASSERT_EQ(post(R"([{"flow_id":"r3"}])").status, 201);
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["r3"]})").status, 200);
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["r2"]})").status, 200);
  ASSERT_EQ(post(R"([{"flow_id":"marker"}])").status, 201);
  ASSERT_TRUE(waitConfig(*all, "marker", "created"));
  const auto& ref = all->events();
  const size_t marker = indexOfConfig(ref, "marker", "created");
  const uint64_t marker_id = *ref[marker].id;
  EXPECT_EQ(checkIncreasing(ref), "");

  // The unfiltered client: exactly the events after the one it saw.
  std::vector<SseEvent> missed;
  for (size_t i = 0; i <= marker; ++i) {
    if (*ref[i].id > seen_a) missed.push_back(ref[i]);
  }
  ASSERT_GE(missed.size(), 10u);  // stop r1 (2), updated, deleted, created, start r3 (2), ...
  auto a2 = subscribe("/events", {"Last-Event-ID: " + std::to_string(seen_a)});
  ASSERT_TRUE(waitConfig(*a2, "marker", "created")) << a2->events().size();
  ASSERT_EQ(a2->events().size(), missed.size());
  for (size_t i = 0; i < missed.size(); ++i) {
    EXPECT_TRUE(sameEvent(a2->events()[i], missed[i]))
        << i << ": " << describe(a2->events()[i]) << " instead of " << describe(missed[i]);
  }

  // The filtered client: exactly the missed events that pass its filter.
  std::vector<SseEvent> missed_f;
  for (size_t i = 0; i <= marker; ++i) {
    if (*ref[i].id > seen_f && ref[i].type == "state" &&
        quickField(ref[i].data, "flow_id") == "r2") {
      missed_f.push_back(ref[i]);
    }
  }
  ASSERT_GE(missed_f.size(), 2u);  // r2 stopping, stopped (and a restart when the PUT did one)
  auto f2 =
      subscribe("/events?flow_id=r2&types=state", {"Last-Event-ID: " + std::to_string(seen_f)});
  // A client that is up to date: nothing, then what comes next (no reset).
  auto current = subscribe("/events", {"Last-Event-ID: " + std::to_string(marker_id)});
  ASSERT_TRUE(f2->waitEvents(missed_f.size(), 20s)) << f2->events().size();
  // One more change that passes every filter ends the comparison: nothing before it is missing
  // or repeated.
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["r2"]})").status, 200);
  ASSERT_TRUE(f2->waitEvents(missed_f.size() + 2, 20s)) << f2->events().size();
  for (size_t i = 0; i < missed_f.size(); ++i) {
    EXPECT_TRUE(sameEvent(f2->events()[i], missed_f[i]))
        << i << ": " << describe(f2->events()[i]) << " instead of " << describe(missed_f[i]);
  }
  EXPECT_EQ(what(f2->events()[missed_f.size()]), "state:starting");
  EXPECT_EQ(what(f2->events()[missed_f.size() + 1]), "state:running");
  EXPECT_EQ(checkIncreasing(f2->events(), seen_f), "");
  EXPECT_GT(*f2->events()[missed_f.size()].id, marker_id);

  ASSERT_TRUE(current->waitEvents(2, 20s));
  EXPECT_EQ(what(current->events()[0]), "state:starting") << describe(current->events()[0]);
  EXPECT_EQ(quickField(current->events()[0].data, "flow_id"), "r2");
  EXPECT_EQ(checkIncreasing(current->events(), marker_id), "");
  EXPECT_TRUE(a2->waitEvents(missed.size() + 2, 20s));
  EXPECT_EQ(checkIncreasing(a2->events(), seen_a), "");
  for (auto* c : {all.get(), a2.get(), f2.get(), current.get()}) {
    EXPECT_TRUE(c->parser().oddities().empty()) << c->parser().oddities().front();
    EXPECT_FALSE(c->closed());
  }
}

// ---------------------------------------------------------------------------------------------
// Reset: an id from a previous run of the server, or newer than any.

TEST_F(EventsTest, ResetForAnIdOfAPreviousRunOrFromTheFuture) {
  start();
  uint64_t max_run1 = 0;
  {
    auto s = subscribe();
    ASSERT_EQ(post(R"([{"flow_id":"x1"},{"flow_id":"x2"}])").status, 201);
    ASSERT_EQ(patch(R"({"command":"start","flow_ids":["x1"]})").status, 200);
    ASSERT_TRUE(s->waitEvents(4, 20s));
    EXPECT_EQ(checkIncreasing(s->events()), "");
    max_run1 = *s->events().back().id;
    // Everything the server published, from the first event (plugins at startup).
    auto history = subscribe("/events", {"Last-Event-ID: 0"});
    ASSERT_TRUE(history->readUntil(
        [&] { return !history->events().empty() && history->events().back().id == max_run1; },
        20s));
    EXPECT_EQ(history->events().front().type, "plugin");
    for (const auto& e : history->events()) max_run1 = std::max(max_run1, *e.id);
  }
  const int status = stop();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  start();  // the same data directory
  // The restore (x1 was running) is done: its transitions are behind us.
  ASSERT_TRUE(waitFor(
      [&] {
        return get("/readyz").status == 200 &&
               get("/flows/status/x1").body.find("\"running\"") != std::string::npos;
      },
      30s));
  auto expectReset = [&](SseClient& c, uint64_t asked) -> uint64_t {
    EXPECT_TRUE(c.waitEvents(1, 20s));
    if (c.events().empty()) return 0;
    const SseEvent& r = c.events().front();
    EXPECT_EQ(r.type, "reset") << describe(r);
    auto doc = parseJson(r.data);
    EXPECT_EQ(memberNames(doc), (std::vector<std::string>{"last_event_id", "reason"})) << r.data;
    if (!doc.IsObject() || !doc.HasMember("last_event_id") || !doc["last_event_id"].IsUint64()) {
      ADD_FAILURE() << "no last_event_id: " << r.data;
      return 0;
    }
    EXPECT_NE(stringOr(doc, "reason", ""), "") << r.data;
    const uint64_t last = doc["last_event_id"].GetUint64();
    EXPECT_EQ(r.id, std::optional<uint64_t>(last)) << "the reset carries the newest id";
    EXPECT_NE(last, asked);
    return last;
  };

  // An id of the previous run: a reset, and ids that keep increasing across the restart.
  auto old = subscribe("/events", {"Last-Event-ID: " + std::to_string(max_run1)});
  auto old1 = subscribe("/events", {"Last-Event-ID: 1"});
  const uint64_t newest = expectReset(*old, max_run1);
  EXPECT_GT(newest, max_run1) << "ids after a restart must be greater than every id before it";
  expectReset(*old1, 1);
  // An id newer than the newest: a reset too.
  const uint64_t future = newest + 1'000'000'000'000ull;
  auto ahead = subscribe("/events", {"Last-Event-ID: " + std::to_string(future)});
  EXPECT_EQ(expectReset(*ahead, future), newest);
  // Then the stream goes on from the newest id.
  ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["x1"]})").status, 200);  // restored running
  ASSERT_EQ(del("x2").status, 200);
  for (auto* c : {old.get(), old1.get(), ahead.get()}) {
    ASSERT_TRUE(waitConfig(*c, "x2", "deleted")) << c->events().size();
    std::vector<std::string> got;
    for (size_t i = 1; i < c->events().size(); ++i) {
      got.push_back(what(c->events()[i]) + " " +
                    std::string(quickField(c->events()[i].data, "flow_id")));
    }
    EXPECT_EQ(got, (std::vector<std::string>{"state:stopping x1", "state:stopped x1",
                                             "config:deleted x2"}));
    EXPECT_EQ(checkIncreasing(c->events()), "");
    EXPECT_GT(*c->events()[1].id, newest);
    EXPECT_TRUE(c->parser().oddities().empty()) << c->parser().oddities().front();
  }
}

// ---------------------------------------------------------------------------------------------
// Heartbeats on an idle stream.

TEST_F(EventsTest, IdleStreamGetsHeartbeats) {
  start({"--events-heartbeat", "200ms"});
  auto s = subscribe();
  ASSERT_TRUE(s->readUntil([&] { return s->parser().commentCount("heartbeat") >= 2; }, 10s))
      << s->parser().comments().size() << " comments";
  EXPECT_TRUE(s->events().empty()) << describe(s->events().front());
  for (const auto& c : s->parser().comments()) EXPECT_EQ(c, "heartbeat");
  EXPECT_TRUE(s->parser().oddities().empty()) << s->parser().oddities().front();
  EXPECT_FALSE(s->parser().midEvent());
  // A stream with events gets them, and the heartbeats go on once idle again.
  ASSERT_EQ(post(R"([{"flow_id":"h"}])").status, 201);
  ASSERT_TRUE(waitConfig(*s, "h", "created"));
  const size_t before = s->parser().commentCount("heartbeat");
  EXPECT_TRUE(s->readUntil([&] { return s->parser().commentCount("heartbeat") > before; }, 10s));
  EXPECT_EQ(s->events().size(), 1u);
}

TEST_F(EventsTest, HeartbeatsComeAtTheConfiguredInterval) {
  start({"--events-heartbeat", "200ms"});
  auto s = subscribe();
  const auto t0 = Clock::now();
  ASSERT_TRUE(s->readUntil([&] { return s->parser().commentCount("heartbeat") >= 3; }, 10s))
      << s->parser().comments().size() << " comments";
  const auto took = Clock::now() - t0;
  // Three heartbeats 200 ms apart take about 600 ms; allow plenty for a loaded machine (and
  // ASan), but not a heartbeat only once a second.
  EXPECT_LT(took, 2500ms) << "3 heartbeats took "
                          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                          << " ms with --events-heartbeat 200ms";
}

// ---------------------------------------------------------------------------------------------
// A subscriber that does not read is dropped; the others and the API go on.

TEST_F(EventsTest, SlowConsumerIsDroppedWithoutHoldingUpOthers) {
  // Requests of 10 flows, so that no request publishes more than 20 events at once (fewer than
  // the buffer: see PromptReaderIsNotDroppedByABurstLargerThanTheBuffer). Long flow ids make
  // the events big: the kernel buffers (a send buffer of up to tcp_wmem's 4 MiB) take a couple
  // of MB before a write to the subscriber that does not read is stuck. Flows are added until
  // the server drops it, at most kMaxFlows.
  constexpr size_t kBatch = 10;
  constexpr size_t kMaxFlows = 6000;
  start({"--events-buffer", "50", "--log-level", "warn"});
  SseClient::Options slow_options;
  slow_options.rcvbuf = 4096;
  SseClient slow(port(), slow_options);
  ASSERT_TRUE(slow.waitSubscribed(20s)) << slow.status();
  // From here on `slow` reads nothing until the end.
  auto normal = subscribe();
  const uint16_t slow_port = slow.localPort();
  const uint16_t normal_port = normal->localPort();

  Expected expected;
  std::vector<std::string> problems;
  std::vector<int> api_codes;
  size_t flows = 0;
  writeThenMarker(
      *normal,
      [&] {
        bool dropped = false;
        while (flows < kMaxFlows && !dropped) {
          std::vector<std::string> part;
          for (size_t i = 0; i < kBatch; ++i, ++flows) {
            std::string id = "s-" + std::to_string(flows) + "-";
            part.push_back(id + std::string(100 - id.size(), 'x'));
          }
          createStartStop(part, &expected, &problems);
          if (!problems.empty()) break;
          if (flows % 200 == 0) {
            // The API answers while the events flow.
            api_codes.push_back(request(port(), "GET", "/flows/status", "", false, 10'000).status);
            dropped = droppedInLog(logText(), slow_port);
          }
        }
      },
      &problems, 120s);
  ASSERT_TRUE(problems.empty()) << problems.front();
  std::cout << "[ info     ] " << flows << " flows, " << normal->events().size() << " events, "
            << normal->bytesReceived() << " bytes\n";
  for (int code : api_codes) EXPECT_EQ(code, 200);
  EXPECT_EQ(request(port(), "GET", "/flows/status", "", false, 10'000).status, 200);

  // The slow one was dropped, with the reason in the log ...
  EXPECT_TRUE(waitFor([&] { return droppedInLog(logText(), slow_port); }, 20s))
      << "the subscriber that does not read (" << clientName(slow_port) << ") was not dropped; see "
      << logPath();
  EXPECT_NE(logText().find("reads too slowly"), std::string::npos);
  // ... and its stream ends once it reads what was on its way.
  EXPECT_TRUE(slow.waitClosed(30s)) << slow.bytesReceived() << " bytes";
  EXPECT_EQ(checkIncreasing(slow.events()), "");

  // The prompt reader saw everything, in order, and was not dropped.
  const size_t total = expectSawEverything(*normal, normal_port, expected, flows);
  EXPECT_LT(slow.parser().eventCount(), total) << "a dropped subscriber gets less";
  for (size_t i = 0; i < std::min(slow.events().size(), normal->events().size()); ++i) {
    if (!sameEvent(slow.events()[i], normal->events()[i])) {
      ADD_FAILURE() << "the dropped stream is not a prefix of the whole: " << i << " "
                    << describe(slow.events()[i]);
      break;
    }
  }
  EXPECT_EQ(get("/healthz").status, 200);
}

// Requests of 150 flows: each publishes 150 or 300 events at once, more than --events-buffer.
// A subscriber that reads as fast as the server writes is not a slow consumer: it must not be
// dropped because a burst came while its last write was still on its way.
TEST_F(EventsTest, PromptReaderIsNotDroppedByABurstLargerThanTheBuffer) {
  constexpr size_t kFlows = 600;
  constexpr size_t kBatch = 150;
  start({"--events-buffer", "50", "--log-level", "warn"});
  auto normal = subscribe();
  const uint16_t normal_port = normal->localPort();
  Expected expected;
  std::vector<std::string> problems;
  writeThenMarker(
      *normal,
      [&] {
        for (size_t b = 0; b < kFlows; b += kBatch) {
          std::vector<std::string> part;
          for (size_t i = b; i < b + kBatch; ++i) part.push_back("p-" + std::to_string(i));
          createStartStop(part, &expected, &problems);
        }
      },
      &problems, 60s);
  ASSERT_TRUE(problems.empty()) << problems.front();
  expectSawEverything(*normal, normal_port, expected, kFlows);
}

// The log names an /events client by its address and port, as the client sees them.
TEST_F(EventsTest, LogNamesTheClientByItsAddress) {
  start({"--log-level", "debug"});
  auto s = subscribe();
  const uint16_t port_seen = s->localPort();
  s->close();
  // The hub notices the client is gone when it next has something to send.
  ASSERT_EQ(post(R"([{"flow_id":"wake"}])").status, 201);
  ASSERT_TRUE(
      waitFor([&] { return logText().find("/events: 127.0.0.1:") != std::string::npos; }, 20s))
      << "no /events line in " << logPath();
  ASSERT_TRUE(waitFor(
      [&] {
        const std::string log = logText();
        return log.find("/events: " + clientName(port_seen) + " ") != std::string::npos ||
               log.find("/events: " + swappedClientName(port_seen) + " ") != std::string::npos;
      },
      20s));
  const std::string log = logText();
  EXPECT_NE(log.find("/events: " + clientName(port_seen) + " "), std::string::npos)
      << "the client was " << clientName(port_seen) << "; the log says "
      << log.substr(log.find("/events: 127.0.0.1:"), 60);
}

// ---------------------------------------------------------------------------------------------
// Shutdown ends the stream cleanly.

TEST_F(EventsTest, StreamEndsCleanlyOnShutdown) {
  start();
  // A flow whose stop takes 1.5 s: the server is still up (stopping flows) when the stream
  // ends, so the end is the server's doing, not the process exiting.
  ASSERT_EQ(
      post(
          R"([{"flow_id":"slowstop","type":"fault","config":{"in":"stop","do":"hang","hang_ms":1500}},
                    {"flow_id":"n"}])")
          .status,
      201);
  auto s = subscribe();
  ASSERT_EQ(patch(R"({"command":"start","flow_ids":["slowstop","n"]})").status, 200);
  ASSERT_TRUE(s->waitEvents(4, 20s));
  const pid_t pid = server_->pid();

  std::atomic<bool> alive_at_eof{false};
  Clock::time_point eof_at;
  std::thread reader([&] {
    s->waitClosed(60s);
    eof_at = Clock::now();
    const char st = processState(pid);
    alive_at_eof = st != 0 && st != 'Z';
  });
  const auto t0 = Clock::now();
  const int status = server_->kill(SIGTERM, 60s);
  const auto exited = Clock::now();
  reader.join();
  server_.reset();

  EXPECT_TRUE(s->cleanEof()) << (s->closed() ? "reset" : "not closed");
  EXPECT_FALSE(s->parser().midEvent()) << "the stream ended inside an event";
  EXPECT_TRUE(s->parser().oddities().empty()) << s->parser().oddities().front();
  EXPECT_TRUE(alive_at_eof) << "the stream only ended when the process exited";
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(exited - t0, 30s + 10s) << "past the drain bound";
  EXPECT_LT(eof_at - t0, 30s);
  EXPECT_EQ(checkIncreasing(s->events()), "");
}

}  // namespace
}  // namespace sluice::test::events
