// GET /events (issue #9): the change feed as Server-Sent Events, against the real binary. Every
// transition, configuration change and plugin load is one event with an increasing id; a client
// resumes with Last-Event-ID (or is told to re-read the state); filters; heartbeats; a slow
// consumer is dropped without holding anybody up; the stream ends cleanly on shutdown; and 100
// subscribers each see every transition of 1000 flows, in order.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fakes/api_fixture.hpp"
#include "fakes/proc.hpp"
#include "fakes/server_process.hpp"
#include "fakes/sse_client.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A server of its own per test (options differ between tests), restartable on the same data.
class EventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(SLUICE_TEST_TMP) /
           ("events-" + std::string(info->test_suite_name()) + "-" + info->name());
    std::filesystem::remove_all(dir_);
  }

  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--plugin-dir", SLUICE_TEST_PLUGIN_DIR};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(SLUICE_BINARY, dir_ / "data", args, logPath());
  }
  /// SIGTERM and wait; returns the wait status.
  int stop(std::chrono::milliseconds bound = 60s) {
    int status = server_->kill(SIGTERM, bound);
    server_.reset();
    return status;
  }

  std::string logPath() const { return (dir_ / "sluice.log").string(); }
  std::string logText() const {
    std::ifstream in(logPath());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  uint16_t port() const { return server_->port(); }
  HttpResponse get(const std::string& path) { return request(port(), "GET", path); }
  HttpResponse post(const std::string& body) {
    return request(port(), "POST", "/flows", body, true, 60'000);
  }
  HttpResponse put(const std::string& id, const std::string& body) {
    return request(port(), "PUT", "/flows/" + id, body, true);
  }
  HttpResponse patch(const std::string& body) {
    return request(port(), "PATCH", "/flows/commands", body, true, 60'000);
  }
  HttpResponse del(const std::string& id) { return request(port(), "DELETE", "/flows/" + id); }

  /// A subscriber whose stream is open: every event published from now on reaches it.
  std::unique_ptr<SseClient> subscribe(const std::string& path = "/events",
                                       std::vector<std::string> headers = {}) {
    auto c = std::make_unique<SseClient>(port(), path, std::move(headers));
    EXPECT_TRUE(c->waitSubscribed(20s)) << path << ": status " << c->status() << " " << c->body();
    EXPECT_EQ(c->header("content-type"), "text/event-stream") << path;
    EXPECT_EQ(c->parser().retry(), std::optional<uint64_t>(2000)) << path;
    return c;
  }

  using Expected = std::map<std::string, std::vector<std::string>>;
  /// Creates the flows `ids`, then starts and stops them: adds each flow's expected events to
  /// `expected` and what went wrong to `problems`.
  void createStartStop(const std::vector<std::string>& ids, Expected* expected,
                       std::vector<std::string>* problems);
  /// Runs `write` on a thread of its own, then creates the flow "marker" there; meanwhile reads
  /// `reader` until the marker's config event arrived (or `wait` passed). What goes wrong on the
  /// thread is added to `problems`.
  void writeThenMarker(SseClient& reader, const std::function<void()>& write,
                       std::vector<std::string>* problems, std::chrono::milliseconds wait);
  /// Checks that `reader` (port `reader_port` on its side) was not dropped and saw, in order,
  /// the events of `expected` (5 for each of `flows` flows), then the marker. Returns how many
  /// flow events it saw.
  size_t expectSawEverything(SseClient& reader, uint16_t reader_port, const Expected& expected,
                             size_t flows);

  std::filesystem::path dir_;
  std::unique_ptr<ServerProcess> server_;
};

/// The fields of an event's data that the tests look at.
struct Data {
  std::string flow_id;
  std::string status;   // state
  std::string desired;  // state
  std::string op;       // config
  bool error_null = false;
  std::string error;  // state: the error when it is a string
};

std::string stringOr(const rapidjson::Value& doc, const char* key, const char* otherwise) {
  if (!doc.IsObject()) return otherwise;
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsString()) return otherwise;
  return it->value.GetString();
}

std::vector<std::string> memberNames(const rapidjson::Value& doc) {
  std::vector<std::string> names;
  if (doc.IsObject()) {
    for (const auto& m : doc.GetObject()) names.emplace_back(m.name.GetString());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Decodes a state or config event and checks the shape of its data.
Data decode(const SseEvent& e) {
  Data d;
  auto doc = parseJson(e.data);
  if (!doc.IsObject()) {
    ADD_FAILURE() << "data is not an object: " << e.data;
    return d;
  }
  d.flow_id = stringOr(doc, "flow_id", "<missing>");
  if (e.type == "state") {
    EXPECT_EQ(memberNames(doc),
              (std::vector<std::string>{"desired", "error", "flow_id", "since", "status"}))
        << e.data;
    d.status = stringOr(doc, "status", "<missing>");
    d.desired = stringOr(doc, "desired", "<missing>");
    EXPECT_NE(stringOr(doc, "since", ""), "") << e.data;
    if (doc.HasMember("error")) {
      d.error_null = doc["error"].IsNull();
      EXPECT_TRUE(doc["error"].IsNull() || doc["error"].IsString()) << e.data;
      if (doc["error"].IsString()) d.error = doc["error"].GetString();
    }
  } else if (e.type == "config") {
    EXPECT_EQ(memberNames(doc), (std::vector<std::string>{"flow_id", "op"})) << e.data;
    d.op = stringOr(doc, "op", "<missing>");
  }
  return d;
}

std::string describe(const SseEvent& e) {
  return "[id " + e.id_text + " " + e.type + " " + e.data + "]";
}

bool sameEvent(const SseEvent& a, const SseEvent& b) {
  return a.id_text == b.id_text && a.type == b.type && a.data == b.data;
}

/// "config:created", "state:running", ...: what an event says about its flow.
std::string what(const SseEvent& e) {
  const Data d = decode(e);
  return e.type + ":" + (e.type == "state" ? d.status : d.op);
}

/// Ids strictly increasing, each event with a numeric id; a message when not.
std::string checkIncreasing(const std::vector<SseEvent>& events, uint64_t after = 0) {
  uint64_t last = after;
  for (const auto& e : events) {
    if (!e.id) return "event without a numeric id: " + describe(e);
    if (*e.id <= last) return "id " + std::to_string(*e.id) + " after " + std::to_string(last);
    last = *e.id;
  }
  return "";
}

/// The value of "key":"..." in compact JSON (no escapes in the values the tests use).
std::string_view quickField(std::string_view json, std::string_view key) {
  std::string pattern = "\"" + std::string(key) + "\":\"";
  const size_t at = json.find(pattern);
  if (at == std::string_view::npos) return {};
  const size_t begin = at + pattern.size();
  const size_t end = json.find('"', begin);
  return end == std::string_view::npos ? std::string_view{} : json.substr(begin, end - begin);
}

/// Waits until `done` holds, reading every client that has something; false at the deadline.
bool pollAll(const std::vector<SseClient*>& clients, const std::function<bool()>& done,
             std::chrono::milliseconds wait) {
  const auto until = Clock::now() + wait;
  std::vector<pollfd> fds(clients.size());
  for (;;) {
    if (done()) return true;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return done();
    size_t n = 0;
    std::vector<SseClient*> open;
    for (auto* c : clients) {
      if (c->closed()) continue;
      fds[n++] = pollfd{c->fd(), POLLIN, 0};
      open.push_back(c);
    }
    if (n == 0) return done();
    if (::poll(fds.data(), n, static_cast<int>(std::min<int64_t>(left, 100))) <= 0) continue;
    for (size_t i = 0; i < n; ++i) {
      if (fds[i].revents != 0) open[i]->readAvailable();
    }
  }
}

/// The JSON array of `{"flow_id":...,"type":...}` objects for `ids`.
std::string flowsBody(const std::vector<std::string>& ids, const std::string& type = "noop") {
  std::string body = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) body += ',';
    body += R"({"flow_id":")" + ids[i] + R"(","type":")" + type + R"("})";
  }
  return body + "]";
}

std::string commandBody(const std::string& command, const std::vector<std::string>& ids) {
  std::string body = R"({"command":")" + command + R"(","flow_ids":[)";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) body += ',';
    body += "\"" + ids[i] + "\"";
  }
  return body + "]}";
}

/// From a command's answer, each flow's expected state events: "starting" then the status it
/// reached for a start, "stopping" then the status for a stop.
std::string commandTransitions(const HttpResponse& r, const std::string& command,
                               std::map<std::string, std::vector<std::string>>* expected) {
  if (r.status != 200) return command + " answered " + std::to_string(r.status) + ": " + r.body;
  rapidjson::Document doc;
  json::ParseError err;
  if (!json::parse(r.body, doc, &err) || !doc.IsObject() || !doc.HasMember("details") ||
      !doc["details"].IsArray()) {
    return command + ": unexpected answer " + r.body;
  }
  const std::string first = command == "start" ? "starting" : "stopping";
  for (const auto& d : doc["details"].GetArray()) {
    auto& seq = (*expected)[stringOr(d, "flow_id", "?")];
    seq.push_back("state:" + first);
    seq.push_back("state:" + stringOr(d, "status", "?"));
  }
  return "";
}

/// The index of the first config event for `flow_id` with `op`; events.size() when none.
size_t indexOfConfig(const std::vector<SseEvent>& events, const std::string& flow_id,
                     const std::string& op) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].type == "config" && quickField(events[i].data, "flow_id") == flow_id &&
        quickField(events[i].data, "op") == op) {
      return i;
    }
  }
  return events.size();
}

/// True when the stream holds a config event for `flow_id` with `op`.
bool hasConfig(SseClient& c, const std::string& flow_id, const std::string& op) {
  return indexOfConfig(c.events(), flow_id, op) < c.events().size();
}

/// Waits until the stream holds a config event for `flow_id` with `op`.
bool waitConfig(SseClient& c, const std::string& flow_id, const std::string& op,
                std::chrono::milliseconds wait = 30s) {
  return c.readUntil([&] { return hasConfig(c, flow_id, op); }, wait);
}

void expectJsonError(const HttpResponse& r, int status, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json") << what;
  auto doc = parseJson(r.body);
  ASSERT_TRUE(doc.IsObject()) << what << ": " << r.body;
  ASSERT_TRUE(doc.HasMember("error") && doc["error"].IsString()) << what << ": " << r.body;
  EXPECT_GT(doc["error"].GetStringLength(), 0u) << what;
}

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

/// How the server names a client in its log: "127.0.0.1:PORT".
std::string clientName(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }
/// The same with the port's bytes swapped (network order printed as a number): see
/// LogNamesTheClientByItsAddress. The drop tests accept it so that they test the drop itself.
std::string swappedClientName(uint16_t port) {
  return "127.0.0.1:" + std::to_string(static_cast<uint16_t>((port >> 8) | (port << 8)));
}
bool droppedInLog(const std::string& log, uint16_t port) {
  return log.find("dropping " + clientName(port) + ":") != std::string::npos ||
         log.find("dropping " + swappedClientName(port) + ":") != std::string::npos;
}

/// Each flow's events as "config:created", "state:starting", ... (the marker flow left out).
std::map<std::string, std::vector<std::string>> perFlow(const std::vector<SseEvent>& events,
                                                        size_t* total, bool* marker) {
  std::map<std::string, std::vector<std::string>> seen;
  *total = 0;
  *marker = false;
  for (const auto& e : events) {
    std::string flow(quickField(e.data, "flow_id"));
    if (flow == "marker") {
      *marker = true;
      continue;
    }
    seen[flow].push_back(e.type + ":" +
                         std::string(quickField(e.data, e.type == "state" ? "status" : "op")));
    ++*total;
  }
  return seen;
}

void EventsTest::createStartStop(const std::vector<std::string>& ids, Expected* expected,
                                 std::vector<std::string>* problems) {
  auto r = post(flowsBody(ids));
  if (r.status != 201) problems->push_back("POST answered " + std::to_string(r.status) + r.body);
  for (const auto& id : ids) (*expected)[id].push_back("config:created");
  for (const char* command : {"start", "stop"}) {
    auto why = commandTransitions(patch(commandBody(command, ids)), command, expected);
    if (!why.empty()) problems->push_back(why);
  }
}

void EventsTest::writeThenMarker(SseClient& reader, const std::function<void()>& write,
                                 std::vector<std::string>* problems,
                                 std::chrono::milliseconds wait) {
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    try {
      write();
      auto r = post(R"([{"flow_id":"marker"}])");
      if (r.status != 201) problems->push_back("POST marker: " + std::to_string(r.status));
    } catch (const std::exception& e) {
      problems->push_back(std::string("writer: ") + e.what());
    }
    writing = false;
  });
  pollAll(
      {&reader}, [&] { return !writing && hasConfig(reader, "marker", "created"); }, wait);
  writer.join();
}

size_t EventsTest::expectSawEverything(SseClient& reader, uint16_t reader_port,
                                       const Expected& expected, size_t flows) {
  EXPECT_FALSE(droppedInLog(logText(), reader_port))
      << "a subscriber that reads promptly (" << clientName(reader_port) << ") was dropped: see "
      << logPath();
  EXPECT_FALSE(reader.closed()) << "after " << reader.events().size() << " events";
  EXPECT_EQ(checkIncreasing(reader.events()), "");
  size_t total = 0;
  bool marker = false;
  auto seen = perFlow(reader.events(), &total, &marker);
  EXPECT_TRUE(marker) << "the last event did not arrive";
  EXPECT_EQ(total, flows * 5);
  EXPECT_TRUE(seen == expected) << seen.size() << " flows seen of " << expected.size();
  return total;
}

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
}  // namespace sluice::test
