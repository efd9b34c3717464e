// `sluice ctl watch [ID...]`: follows GET /events and prints each flow's transitions as they
// happen. It reads the flows' status once subscribed (to name the state each transition comes
// from), reconnects by itself with Last-Event-ID when the stream breaks, and re-reads the
// status when the server answers `reset` (the events it missed are gone).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "api/cli/ctl/ctl_commands.hpp"
#include "api/cli/ctl/ctl_sse.hpp"
#include "core/model/duration.hpp"

namespace sluice::cli::ctl {
namespace {

std::atomic<bool> g_interrupted{false};

void onStopSignal(int) { g_interrupted.store(true); }

struct FlowState {
  std::string status;
  std::string error;
  std::string since;  // of the status (the API's RFC 3339 time, fixed width); may be empty
};

// Whether the time `a` is before `b` (both as the API writes them: same width, so the text
// orders as the time does). Unknown times order nothing.
bool before(const std::string& a, const std::string& b) {
  return !a.empty() && a.size() == b.size() && a < b;
}

class Watcher {
 public:
  Watcher(const Globals& g, const WatchArgs& a)
      : client_(makeClient(g)),
        stream_client_(makeClient(g)),
        ids_(a.ids.begin(), a.ids.end()),
        count_(a.count) {
    if (!a.timeout.empty()) {
      deadline_ = std::chrono::steady_clock::now() + *parseDuration(a.timeout);
    }
    parser_.on_event = [this](SseEvent&& e) { onEvent(std::move(e)); };
    // The server's reconnection delay, kept within reason.
    parser_.on_retry = [this](std::chrono::milliseconds ms) {
      retry_ = std::clamp(ms, std::chrono::milliseconds(250), std::chrono::milliseconds(60'000));
    };
  }

  int run() {
    std::string query;
    for (const auto& id : ids_) query += (query.empty() ? "?flow_id=" : ",") + Client::escape(id);
    StreamHandlers handlers;
    handlers.on_data = [this](std::string_view bytes) { return onData(bytes); };
    handlers.keep_going = [this] { return !done(); };
    while (!done()) {
      std::vector<std::string> headers;
      if (!last_id_.empty()) headers.push_back("Last-Event-ID: " + last_id_);
      parser_.reset();
      Outcome out =
          stream_client_->stream("/events" + query, headers, handlers, std::chrono::seconds(60));
      if (fatal_) return kExitFailed;
      if (out.aborted || done()) break;
      std::chrono::milliseconds wait = retry_;
      if (out.response && out.response->status != 200) {
        const std::optional<std::chrono::milliseconds> again = retryAfterRefusal(*out.response);
        if (!again) return kExitFailed;
        wait = *again;
      } else if (!out.response) {
        if (!connected_once_) {
          std::cerr << "error: " << out.error << "\n";
          return kExitFailed;
        }
        wait = backoff();
        std::cerr << "watch: " << out.error << "; retrying in " << wait.count() << " ms\n";
      } else {
        failures_ = 0;
        std::cerr << "watch: the stream ended ("
                  << (out.error.empty() ? "closed by the server" : out.error)
                  << "); reconnecting in " << wait.count() << " ms\n";
      }
      reconnecting_ = true;
      const auto until = std::chrono::steady_clock::now() + wait;
      while (!done() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    if (count_ > 0 && printed_ < count_ && !g_interrupted.load()) {
      std::cerr << "error: timed out after " << printed_ << " of " << count_ << " events\n";
      return kExitFailed;
    }
    return kExitOk;
  }

 private:
  // The server's delay, doubled for each failure in a row (a server that is restarting or
  // overloaded), up to a minute.
  std::chrono::milliseconds backoff() {
    const auto wait =
        std::min(std::chrono::milliseconds(retry_.count() << std::min<uint64_t>(failures_, 5)),
                 std::chrono::milliseconds(60'000));
    ++failures_;
    return wait;
  }

  // A non-200 answer to GET /events: how long to wait before trying again, or nothing when
  // watch must end (the error is printed). 5xx and 429 (a server draining or overloaded, a
  // proxy without its upstream) are retried, after Retry-After when given (capped); a 400
  // about Last-Event-ID (an id the server cannot use) is retried without it, and the status
  // read again. Anything else (401, 403, another 400) ends watch.
  std::optional<std::chrono::milliseconds> retryAfterRefusal(const Response& r) {
    const long s = r.status;
    if (s == 400 && !last_id_.empty() && r.body.find("Last-Event-ID") != std::string::npos) {
      std::cerr << "watch: the server refused Last-Event-ID " << printable(last_id_)
                << "; reconnecting without it and re-reading the status\n";
      last_id_.clear();
      resync_ = true;
      return std::chrono::milliseconds(0);  // without the id this cannot happen again
    }
    // Before the first connection every refusal ends watch, as an unreachable server does.
    if ((s < 500 && s != 429) || !connected_once_) {
      printApiError(r);
      return std::nullopt;
    }
    // Retry-After, when longer than the backoff (never 0: a server answering 503 with
    // Retry-After: 0 is not hammered), at most a minute.
    std::chrono::milliseconds wait = backoff();
    const std::string after = r.header("retry-after");
    if (!after.empty() && after.size() <= 6 &&
        after.find_first_not_of("0123456789") == std::string::npos) {
      wait = std::max(wait, std::min(std::chrono::milliseconds(std::stoll(after) * 1000),
                                     std::chrono::milliseconds(60'000)));
    }
    rapidjson::Document doc;
    json::ParseError err;
    const std::string why = json::parse(r.body, doc, &err) && doc.IsObject()
                                ? text(static_cast<const rapidjson::Value&>(doc), "error", "")
                                : "";
    std::cerr << "watch: " << s << (why.empty() ? "" : ": " + printable(why)) << "; retrying in "
              << wait.count() << " ms\n";
    return wait;
  }

  bool done() const {
    return g_interrupted.load() || fatal_ || (count_ > 0 && printed_ >= count_) ||
           (deadline_ && std::chrono::steady_clock::now() >= *deadline_);
  }

  bool onData(std::string_view bytes) {
    // Subscribed (the stream's first bytes came): now the status read misses nothing, and an
    // event it already reflects is recognised and skipped.
    if (!synced_) {
      synced_ = true;
      if (!sync(false)) {
        fatal_ = true;
        return false;
      }
      std::cerr << "watch: following " << stream_client_->server() << " (" << states_.size()
                << " flow" << (states_.size() == 1 ? "" : "s") << " now); Ctrl-C stops\n";
    } else if (reconnecting_) {
      reconnecting_ = false;
      std::cerr << "watch: reconnected\n";
      // Subscribed without Last-Event-ID after the server refused it: what was missed is
      // read from the status.
      if (resync_ && !resync()) {
        fatal_ = true;
        return false;
      }
      resync_ = false;
    }
    connected_once_ = true;
    failures_ = 0;
    parser_.feed(bytes);
    return !done();
  }

  void print(const std::string& time, const std::string& what, const std::string& text) {
    if (done()) return;
    std::cout << printable(time) << "  " << printable(what) << "  " << printable(text) << std::endl;
    ++printed_;
  }

  // Reads the status again after events were lost, prints the differences, and says on
  // stderr that the read is done (what is printed from then on comes after it).
  bool resync() {
    if (!sync(true)) return false;
    std::cerr << "watch: status re-read (" << states_.size() << " flow"
              << (states_.size() == 1 ? "" : "s") << " now)\n";
    return true;
  }

  // Reads the status of the watched flows; with `report`, prints what changed since the
  // states known.
  bool sync(bool report) {
    auto r = call(*client_, "GET", "/flows/status", {200});
    rapidjson::Document doc;
    if (!r || !parseBody(*r, doc) || !doc.IsObject()) return false;
    std::set<std::string> seen;
    const rapidjson::Value& all = doc;
    for (const auto& m : all.GetObject()) {
      const std::string id(m.name.GetString(), m.name.GetStringLength());
      if (!ids_.empty() && ids_.count(id) == 0) continue;
      seen.insert(id);
      FlowState now{text(m.value, "status", ""), text(m.value, "error", ""),
                    text(m.value, "since", "")};
      auto known = states_.find(id);
      if (report && (known == states_.end() || known->second.status != now.status ||
                     known->second.error != now.error)) {
        transition(wholeSeconds(text(m.value, "since", nowIso())), id,
                   known == states_.end() ? "-" : known->second.status, now,
                   text(m.value, "desired"));
      }
      states_[id] = now;
    }
    for (auto it = states_.begin(); it != states_.end();) {
      if (seen.count(it->first) != 0) {
        ++it;
        continue;
      }
      if (report) print(nowIso(), "flow/" + it->first, "deleted");
      it = states_.erase(it);
    }
    return true;
  }

  void transition(const std::string& time, const std::string& id, const std::string& from,
                  const FlowState& to, const std::string& desired) {
    print(time, "flow/" + id,
          from + " -> " + to.status + " (desired " + desired + ")" +
              (to.error.empty() ? "" : ": " + to.error));
  }

  void onEvent(SseEvent&& e) {
    if (!e.id.empty()) last_id_ = e.id;
    if (done()) return;
    rapidjson::Document data;
    json::ParseError err;
    if (!json::parse(e.data, data, &err) || !data.IsObject()) return;
    if (e.type == "state") {
      const std::string id = text(data, "flow_id", "");
      FlowState now{text(data, "status", ""), text(data, "error", ""), text(data, "since", "")};
      auto known = states_.find(id);
      if (known != states_.end() && known->second.status == now.status &&
          known->second.error == now.error) {
        return;  // the status read already showed it
      }
      if (known != states_.end() && before(now.since, known->second.since)) {
        // Older than the state known: an event queued before the status read (which
        // reflects it already). Printed, it would run backwards (running -> starting).
        return;
      }
      transition(wholeSeconds(text(data, "since", nowIso())), id,
                 known == states_.end() ? "-" : known->second.status, now, text(data, "desired"));
      states_[id] = now;
    } else if (e.type == "config") {
      const std::string id = text(data, "flow_id", "");
      const std::string op = text(data, "op", "");
      if (op == "created") states_[id] = FlowState{"stopped", "", ""};
      if (op == "deleted") states_.erase(id);
      print(nowIso(), "flow/" + id, op);
    } else if (e.type == "plugin") {
      std::string name = text(data, "plugin", "");
      if (name.empty()) name = text(data, "file", "?");
      const std::string error = text(data, "error", "");
      print(nowIso(), "plugin/" + name, error.empty() ? "loaded" : "refused: " + error);
    } else if (e.type == "reset") {
      std::cerr << "watch: " << printable(text(data, "reason", "events were lost"))
                << "; re-reading the status\n";
      if (!resync()) fatal_ = true;
    }
  }

  std::unique_ptr<Client> client_;         // status reads
  std::unique_ptr<Client> stream_client_;  // the event stream
  std::set<std::string> ids_;              // empty: every flow
  uint64_t count_ = 0;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  SseParser parser_;
  std::map<std::string, FlowState> states_;
  std::string last_id_;
  std::chrono::milliseconds retry_{2000};
  uint64_t printed_ = 0;
  bool synced_ = false;          // the status was read once subscribed
  bool connected_once_ = false;  // a stream was open once: failures are retried from then
  bool resync_ = false;          // read the status again once reconnected
  uint64_t failures_ = 0;        // connection failures in a row (for the backoff)
  bool reconnecting_ = false;    // the stream broke; not yet connected again
  bool fatal_ = false;
};

}  // namespace

int runWatch(const Globals& g, const WatchArgs& a) {
  struct sigaction act {};
  act.sa_handler = onStopSignal;
  sigemptyset(&act.sa_mask);
  sigaction(SIGINT, &act, nullptr);
  sigaction(SIGTERM, &act, nullptr);
  Watcher w(g, a);
  return w.run();
}

}  // namespace sluice::cli::ctl
