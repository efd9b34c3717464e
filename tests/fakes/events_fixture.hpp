// The fixture and helpers of the GET /events tests (issue #9; events_delivery_test.cpp and
// events_stream_test.cpp): a server of its own per test, subscribers, an event's data decoded
// and checked, flows created, started and stopped in bulk with the events each should publish.
#pragma once

#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fakes/api_fixture.hpp"
#include "fakes/server_process.hpp"
#include "fakes/sse_client.hpp"

namespace sluice::test::events {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

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

inline std::string stringOr(const rapidjson::Value& doc, const char* key, const char* otherwise) {
  if (!doc.IsObject()) return otherwise;
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsString()) return otherwise;
  return it->value.GetString();
}

inline std::vector<std::string> memberNames(const rapidjson::Value& doc) {
  std::vector<std::string> names;
  if (doc.IsObject()) {
    for (const auto& m : doc.GetObject()) names.emplace_back(m.name.GetString());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Decodes a state or config event and checks the shape of its data.
inline Data decode(const SseEvent& e) {
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

inline std::string describe(const SseEvent& e) {
  return "[id " + e.id_text + " " + e.type + " " + e.data + "]";
}

inline bool sameEvent(const SseEvent& a, const SseEvent& b) {
  return a.id_text == b.id_text && a.type == b.type && a.data == b.data;
}

/// "config:created", "state:running", ...: what an event says about its flow.
inline std::string what(const SseEvent& e) {
  const Data d = decode(e);
  return e.type + ":" + (e.type == "state" ? d.status : d.op);
}

/// Ids strictly increasing, each event with a numeric id; a message when not.
inline std::string checkIncreasing(const std::vector<SseEvent>& events, uint64_t after = 0) {
  uint64_t last = after;
  for (const auto& e : events) {
    if (!e.id) return "event without a numeric id: " + describe(e);
    if (*e.id <= last) return "id " + std::to_string(*e.id) + " after " + std::to_string(last);
    last = *e.id;
  }
  return "";
}

/// The value of "key":"..." in compact JSON (no escapes in the values the tests use).
inline std::string_view quickField(std::string_view json, std::string_view key) {
  std::string pattern = "\"" + std::string(key) + "\":\"";
  const size_t at = json.find(pattern);
  if (at == std::string_view::npos) return {};
  const size_t begin = at + pattern.size();
  const size_t end = json.find('"', begin);
  return end == std::string_view::npos ? std::string_view{} : json.substr(begin, end - begin);
}

/// Waits until `done` holds, reading every client that has something; false at the deadline.
inline bool pollAll(const std::vector<SseClient*>& clients, const std::function<bool()>& done,
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
inline std::string flowsBody(const std::vector<std::string>& ids,
                             const std::string& type = "noop") {
  std::string body = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) body += ',';
    body += R"({"flow_id":")" + ids[i] + R"(","type":")" + type + R"("})";
  }
  return body + "]";
}

inline std::string commandBody(const std::string& command, const std::vector<std::string>& ids) {
  std::string body = R"({"command":")" + command + R"(","flow_ids":[)";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) body += ',';
    body += "\"" + ids[i] + "\"";
  }
  return body + "]}";
}

/// From a command's answer, each flow's expected state events: "starting" then the status it
/// reached for a start, "stopping" then the status for a stop.
inline std::string commandTransitions(const HttpResponse& r, const std::string& command,
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
inline size_t indexOfConfig(const std::vector<SseEvent>& events, const std::string& flow_id,
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
inline bool hasConfig(SseClient& c, const std::string& flow_id, const std::string& op) {
  return indexOfConfig(c.events(), flow_id, op) < c.events().size();
}

/// Waits until the stream holds a config event for `flow_id` with `op`.
inline bool waitConfig(SseClient& c, const std::string& flow_id, const std::string& op,
                       std::chrono::milliseconds wait = 30s) {
  return c.readUntil([&] { return hasConfig(c, flow_id, op); }, wait);
}

// ---------------------------------------------------------------------------------------------
// Slow consumers and bulk writes: the log's names of clients, what a reader saw per flow

/// How the server names a client in its log: "127.0.0.1:PORT".
inline std::string clientName(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }
/// The same with the port's bytes swapped (network order printed as a number): see
/// LogNamesTheClientByItsAddress. The drop tests accept it so that they test the drop itself.
inline std::string swappedClientName(uint16_t port) {
  return "127.0.0.1:" + std::to_string(static_cast<uint16_t>((port >> 8) | (port << 8)));
}
inline bool droppedInLog(const std::string& log, uint16_t port) {
  return log.find("dropping " + clientName(port) + ":") != std::string::npos ||
         log.find("dropping " + swappedClientName(port) + ":") != std::string::npos;
}

/// Each flow's events as "config:created", "state:starting", ... (the marker flow left out).
inline std::map<std::string, std::vector<std::string>> perFlow(const std::vector<SseEvent>& events,
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

inline void EventsTest::createStartStop(const std::vector<std::string>& ids, Expected* expected,
                                        std::vector<std::string>* problems) {
  auto r = post(flowsBody(ids));
  if (r.status != 201) problems->push_back("POST answered " + std::to_string(r.status) + r.body);
  for (const auto& id : ids) (*expected)[id].push_back("config:created");
  for (const char* command : {"start", "stop"}) {
    auto why = commandTransitions(patch(commandBody(command, ids)), command, expected);
    if (!why.empty()) problems->push_back(why);
  }
}

inline void EventsTest::writeThenMarker(SseClient& reader, const std::function<void()>& write,
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

inline size_t EventsTest::expectSawEverything(SseClient& reader, uint16_t reader_port,
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

}  // namespace sluice::test::events
