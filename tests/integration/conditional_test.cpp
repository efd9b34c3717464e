// Issue 9 against the real binary: conditional reads (ETag, If-None-Match -> 304), optimistic
// concurrency on PUT and DELETE (If-Match -> 412, nothing changes; exactly one of two racing
// writers wins), and paged, filtered reads of /flows and /flows/status (Link rel="next").
#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fakes/observe_fixture.hpp"

namespace sluice::test::observe {
namespace {

using namespace std::chrono_literals;

class ConditionalTest : public ObserveFixture {
 protected:
  void SetUp() override {
    ObserveFixture::SetUp();
    startServer();
  }
  std::string etagOf(const std::string& path) {
    auto r = get(path);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return r.header("etag");
  }
};

bool strongTag(const std::string& tag) {
  return tag.size() >= 3 && tag.front() == '"' && tag.back() == '"';
}

// ---------------------------------------------------------------------------------------------
// ETag and If-None-Match

TEST_F(ConditionalTest, ReadsCarryAnETagAndAnswer304WhenItStillMatches) {
  createFlows(R"([{"flow_id":"a","type":"noop","config":{"v":1}},
                  {"flow_id":"b","type":"noop","config":{"v":1}}])");
  const std::vector<std::string> paths = {"/flows", "/flows/a", "/flows/status", "/flows/status/a"};
  std::map<std::string, HttpResponse> before;
  for (const auto& path : paths) {
    SCOPED_TRACE(path);
    auto r = get(path);
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string tag = r.header("etag");
    EXPECT_TRUE(strongTag(tag)) << "ETag: " << tag;
    EXPECT_EQ(get(path).header("etag"), tag) << "the tag is not stable";

    for (const std::string& condition :
         {tag, "W/" + tag, std::string("*"), "\"nope\", " + tag, "\"x\",W/" + tag}) {
      auto nm = get(path, {"If-None-Match: " + condition});
      EXPECT_EQ(nm.status, 304) << "If-None-Match: " << condition << ": " << nm.body;
      EXPECT_EQ(nm.body, "") << "If-None-Match: " << condition;
      EXPECT_EQ(nm.header("etag"), tag) << "If-None-Match: " << condition;
      if (auto cl = nm.header("content-length"); !cl.empty()) {
        EXPECT_EQ(cl, "0");
      }
    }
    for (const std::string& condition : {std::string("\"nope\""), std::string("W/\"nope\"")}) {
      auto other = get(path, {"If-None-Match: " + condition});
      EXPECT_EQ(other.status, 200) << "If-None-Match: " << condition;
      EXPECT_EQ(other.body, r.body) << "If-None-Match: " << condition;
      EXPECT_EQ(other.header("etag"), tag);
    }
    before[path] = r;
  }

  // A change to a: a new configuration, then a start (its status).
  ASSERT_EQ(call("PUT", "/flows/a", {}, R"({"type":"noop","config":{"v":2}})").status, 200);
  command("start", {"a"});
  for (const auto& path : paths) {
    SCOPED_TRACE(path);
    const std::string old_tag = before[path].header("etag");
    auto r = get(path, {"If-None-Match: " + old_tag});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body, before[path].body);
    const std::string tag = r.header("etag");
    EXPECT_TRUE(strongTag(tag)) << tag;
    EXPECT_NE(tag, old_tag);
    EXPECT_EQ(get(path, {"If-None-Match: " + tag}).status, 304);
    EXPECT_EQ(get(path, {"If-None-Match: W/" + old_tag}).status, 200);
  }
  // b did not change: its tags still match.
  const std::string b_tag = etagOf("/flows/b");
  ASSERT_FALSE(b_tag.empty());
  auto r = get("/flows/b", {"If-None-Match: " + b_tag});
  EXPECT_EQ(r.status, 304);
  const std::string b_status_tag = etagOf("/flows/status/b");
  EXPECT_EQ(get("/flows/status/b", {"If-None-Match: " + b_status_tag}).status, 304);
  // The 304s are counted like any other answer.
  MetricsPage page(get("/metrics").body);
  EXPECT_GE(page.value("sluice_http_requests_total",
                       {{"method", "GET"}, {"route", "/flows/{id}"}, {"code", "304"}})
                .value_or(0),
            6.0);
  // An unknown flow is a 404 whatever the condition.
  expectJsonError(get("/flows/zz", {"If-None-Match: *"}), 404, "GET /flows/zz If-None-Match *");
}

// ---------------------------------------------------------------------------------------------
// If-Match on PUT and DELETE

TEST_F(ConditionalTest, IfMatchMismatchAnswers412AndChangesNothing) {
  createFlows(R"([{"flow_id":"a","type":"noop","config":{"v":1}}])");
  auto original = get("/flows/a");
  ASSERT_EQ(original.status, 200);
  const std::string tag = original.header("etag");
  ASSERT_TRUE(strongTag(tag)) << tag;
  auto unchanged = [&](const std::string& what) {
    auto now = get("/flows/a");
    EXPECT_EQ(now.status, 200) << what << ": the flow is gone";
    EXPECT_EQ(now.body, original.body) << what;
    EXPECT_EQ(now.header("etag"), tag) << what;
  };

  const std::string v2 = R"({"type":"noop","config":{"v":2}})";
  for (const std::string& wrong :
       {std::string("\"0123456789abcdef\""), "W/" + tag, std::string("\"\""), "\"x\", W/" + tag}) {
    expectJsonError(call("PUT", "/flows/a", {"If-Match: " + wrong}, v2), 412,
                    "PUT If-Match: " + wrong);
    unchanged("after PUT If-Match: " + wrong);
    expectJsonError(call("DELETE", "/flows/a", {"If-Match: " + wrong}), 412,
                    "DELETE If-Match: " + wrong);
    unchanged("after DELETE If-Match: " + wrong);
  }

  // The right tag (alone or in a list): the change is made, and the answer carries the new tag.
  auto put = call("PUT", "/flows/a", {"If-Match: \"other\", " + tag}, v2);
  ASSERT_EQ(put.status, 200) << put.body;
  auto after = get("/flows/a");
  ASSERT_EQ(after.status, 200);
  EXPECT_TRUE(jsonEqual(after.body, R"({"flow_id":"a","type":"noop","config":{"v":2}})"))
      << after.body;
  const std::string tag2 = after.header("etag");
  EXPECT_NE(tag2, tag);
  EXPECT_EQ(put.header("etag"), tag2) << "PUT's ETag is not the one GET answers";
  EXPECT_TRUE(jsonEqual(put.body, after.body)) << put.body;

  // The old tag no longer matches.
  expectJsonError(call("PUT", "/flows/a", {"If-Match: " + tag}, v2), 412, "PUT with the old tag");
  expectJsonError(call("DELETE", "/flows/a", {"If-Match: " + tag}), 412, "DELETE with the old tag");
  EXPECT_EQ(get("/flows/a").header("etag"), tag2);

  // If-Match: * matches the existing flow.
  auto star = call("PUT", "/flows/a", {"If-Match: *"}, R"({"type":"noop","config":{"v":3}})");
  ASSERT_EQ(star.status, 200) << star.body;
  const std::string tag3 = get("/flows/a").header("etag");
  EXPECT_EQ(star.header("etag"), tag3);

  auto del = call("DELETE", "/flows/a", {"If-Match: " + tag3});
  EXPECT_EQ(del.status, 200) << del.body;
  expectJsonError(get("/flows/a"), 404, "GET /flows/a after DELETE");
}

// An editor read the flow (and its tag); someone deleted it since. The tag no longer matches
// any current representation, so RFC 9110 (13.1.1) and the issue ("on a mismatch they answer
// 412") ask for 412, not the 400 "does not exist" of an unconditional PUT of an unknown id.
TEST_F(ConditionalTest, IfMatchOnAFlowDeletedSinceAnswers412) {
  createFlows(R"([{"flow_id":"a","type":"noop","config":{"v":1}}])");
  const std::string tag = etagOf("/flows/a");
  ASSERT_TRUE(strongTag(tag));
  ASSERT_EQ(call("DELETE", "/flows/a").status, 200);
  expectJsonError(call("PUT", "/flows/a", {"If-Match: " + tag}, R"({"type":"noop"})"), 412,
                  "PUT If-Match <tag of the deleted flow>");
  expectJsonError(call("DELETE", "/flows/a", {"If-Match: " + tag}), 412,
                  "DELETE If-Match <tag of the deleted flow>");
  expectJsonError(get("/flows/a"), 404, "GET /flows/a: nothing was created");
}

TEST_F(ConditionalTest, TwoWritersWithTheSameIfMatchOneWins) {
  createFlows(R"([{"flow_id":"a","type":"noop","config":{"round":-1}}])");
  const auto until = std::chrono::steady_clock::now() + 4s;
  int rounds = 0;
  for (; rounds < 40 && (rounds < 5 || std::chrono::steady_clock::now() < until); ++rounds) {
    SCOPED_TRACE("round " + std::to_string(rounds));
    const std::string tag = etagOf("/flows/a");
    ASSERT_TRUE(strongTag(tag));
    std::atomic<int> ready{0};
    HttpResponse results[2];
    std::string bodies[2];
    std::thread writers[2];
    for (int w = 0; w < 2; ++w) {
      bodies[w] = R"({"type":"noop","config":{"round":)" + std::to_string(rounds) +
                  R"(,"writer":)" + std::to_string(w) + "}}";
      writers[w] = std::thread([&, w] {
        ++ready;
        while (ready.load() < 2) std::this_thread::yield();
        try {
          results[w] =
              requestWith(port(), "PUT", "/flows/a", {"If-Match: " + tag}, bodies[w], true, 20000);
        } catch (const std::exception& e) {
          results[w].body = e.what();
        }
      });
    }
    for (auto& t : writers) t.join();
    std::vector<int> codes = {results[0].status, results[1].status};
    std::sort(codes.begin(), codes.end());
    ASSERT_EQ(codes, (std::vector<int>{200, 412}))
        << results[0].status << " " << results[0].body << " / " << results[1].status << " "
        << results[1].body;
    const int winner = results[0].status == 200 ? 0 : 1;
    expectJsonError(results[1 - winner], 412, "the loser");
    auto now = get("/flows/a");
    EXPECT_TRUE(jsonEqual(now.body, "{\"flow_id\":\"a\"," + bodies[winner].substr(1)))
        << "stored: " << now.body << ", winner sent " << bodies[winner];
    EXPECT_EQ(now.header("etag"), results[winner].header("etag"));
  }
  EXPECT_GE(rounds, 5);
}

// ---------------------------------------------------------------------------------------------
// Paging and filters

struct Walk {
  std::vector<std::string> ids;  // in the order answered
  int pages = 0;
  std::string merged;  // the pages' items as one document ([...] or {...})
};

class PagingTest : public ConditionalTest {
 protected:
  // 25 flows in 3 POSTs, in an order that is not the ids' sort order. Every third is a ticker;
  // every fourth is started.
  void SetUp() override {
    ConditionalTest::SetUp();
    for (int i = 0; i < 25; ++i) {
      const int n = (i * 7) % 25;
      ids_.push_back(std::string("f") + static_cast<char>('a' + n / 5) +
                     static_cast<char>('0' + n % 5));
      if (i % 3 == 0) tickers_.push_back(ids_.back());
      if (i % 4 == 0) running_.push_back(ids_.back());
    }
    size_t next = 0;
    for (size_t batch : {10u, 10u, 5u}) {
      std::string body = "[";
      for (size_t k = 0; k < batch; ++k, ++next) {
        if (k > 0) body += ',';
        const bool ticker = next % 3 == 0;
        body += R"({"flow_id":")" + ids_[next] + R"(","type":")" +
                (ticker ? R"(ticker","config":{"interval_ms":3600000}})" : R"(noop"})");
      }
      createFlows(body + "]");
    }
    command("start", running_);
  }

  /// Follows rel="next" from `first`; fails the test on anything but 200.
  Walk walk(const std::string& first, bool status) {
    Walk w;
    std::string url = first;
    std::string merged = status ? "{" : "[";
    bool any = false;
    while (!url.empty() && w.pages < 100) {
      auto r = get(url);
      ++w.pages;
      EXPECT_EQ(r.status, 200) << url << ": " << r.body;
      if (r.status != 200) break;
      EXPECT_EQ(r.header("content-type"), "application/json") << url;
      EXPECT_TRUE(strongTag(r.header("etag"))) << url;
      auto doc = parseJson(r.body);
      if (status) {
        EXPECT_TRUE(doc.IsObject()) << url << ": " << r.body;
        if (!doc.IsObject()) break;
        for (const auto& m : doc.GetObject()) {
          w.ids.emplace_back(m.name.GetString());
          EXPECT_EQ(strOf(m.value, "flow_id"), w.ids.back());
        }
      } else {
        EXPECT_TRUE(doc.IsArray()) << url << ": " << r.body;
        if (!doc.IsArray()) break;
        for (const auto& e : doc.GetArray()) w.ids.push_back(strOf(e, "flow_id"));
      }
      const std::string inner = r.body.substr(1, r.body.size() - 2);
      if (!inner.empty()) {
        if (any) merged += ',';
        merged += inner;
        any = true;
      }
      const std::string link = r.header("link");
      url.clear();
      if (!link.empty()) {
        const size_t open = link.find('<');
        const size_t close = link.find('>');
        EXPECT_TRUE(open == 0 && close != std::string::npos) << "Link: " << link;
        EXPECT_NE(link.find("rel=\"next\""), std::string::npos) << "Link: " << link;
        if (open != 0 || close == std::string::npos) break;
        url = link.substr(open + 1, close - open - 1);
      }
    }
    w.merged = merged + (status ? "}" : "]");
    return w;
  }

  std::vector<std::string> only(const std::vector<std::string>& subset) const {
    std::vector<std::string> out;
    for (const auto& id : ids_) {
      if (std::find(subset.begin(), subset.end(), id) != subset.end()) out.push_back(id);
    }
    return out;
  }

  std::vector<std::string> ids_;  // in creation order
  std::vector<std::string> tickers_;
  std::vector<std::string> running_;
};

TEST_F(PagingTest, LimitAndLinkWalkEveryFlowOnceInCreationOrder) {
  for (bool status : {false, true}) {
    const std::string base = status ? "/flows/status" : "/flows";
    SCOPED_TRACE(base);
    auto whole = get(base);
    ASSERT_EQ(whole.status, 200);
    EXPECT_EQ(whole.header("link"), "") << "an unpaged answer has no next page";

    Walk w = walk(base + "?limit=10", status);
    EXPECT_EQ(w.ids, ids_);
    EXPECT_EQ(w.pages, 3);
    EXPECT_TRUE(jsonEqual(w.merged, whole.body)) << w.merged << "\n" << whole.body;

    w = walk(base + "?limit=1", status);
    EXPECT_EQ(w.ids, ids_);
    EXPECT_EQ(w.pages, 25);
    w = walk(base + "?limit=25", status);
    EXPECT_EQ(w.ids, ids_);
    EXPECT_EQ(w.pages, 1);
    w = walk(base + "?limit=10000", status);
    EXPECT_EQ(w.ids, ids_);
    EXPECT_EQ(w.pages, 1);
    EXPECT_TRUE(jsonEqual(w.merged, whole.body));

    // Without parameters: the unpaged answer, every flow in creation order.
    Walk plain = walk(base, status);
    EXPECT_EQ(plain.ids, ids_);
    EXPECT_EQ(plain.pages, 1);

    // After a given flow: the ones created after it.
    w = walk(base + "?limit=7&after=" + ids_[12], status);
    EXPECT_EQ(w.ids, std::vector<std::string>(ids_.begin() + 13, ids_.end()));
    w = walk(base + "?after=" + ids_.back(), status);
    EXPECT_TRUE(w.ids.empty());
    EXPECT_EQ(w.pages, 1);
  }
  // The unpaged list is the configurations as created (the seed's contract).
  auto doc = parseJson(get("/flows").body);
  ASSERT_TRUE(doc.IsArray());
  ASSERT_EQ(doc.GetArray().Size(), 25u);
  EXPECT_EQ(strOf(doc[0], "type"), "ticker");
  EXPECT_EQ(strOf(doc[1], "type"), "noop");
}

TEST_F(PagingTest, FiltersByStatusAndType) {
  const std::vector<std::string> stopped_tickers = [&] {
    std::vector<std::string> out;
    for (const auto& id : tickers_) {
      if (std::find(running_.begin(), running_.end(), id) == running_.end()) out.push_back(id);
    }
    return out;
  }();
  ASSERT_FALSE(stopped_tickers.empty());
  for (bool status : {false, true}) {
    const std::string base = status ? "/flows/status" : "/flows";
    SCOPED_TRACE(base);
    Walk w = walk(base + "?status=running", status);
    EXPECT_EQ(w.ids, only(running_));
    EXPECT_EQ(w.pages, 1);
    w = walk(base + "?status=running&limit=2", status);
    EXPECT_EQ(w.ids, only(running_));
    EXPECT_EQ(w.pages, 4);  // 7 running flows
    w = walk(base + "?type=ticker", status);
    EXPECT_EQ(w.ids, only(tickers_));
    w = walk(base + "?limit=3&type=ticker", status);
    EXPECT_EQ(w.ids, only(tickers_));
    EXPECT_EQ(w.pages, 3);  // 9 tickers
    w = walk(base + "?type=ticker&status=stopped&limit=2", status);
    EXPECT_EQ(w.ids, only(stopped_tickers));
    w = walk(base + "?status=failed", status);
    EXPECT_TRUE(w.ids.empty());
    w = walk(base + "?type=no-such-type", status);
    EXPECT_TRUE(w.ids.empty());
    if (status) {
      auto doc = parseJson(get(base + "?status=running").body);
      ASSERT_TRUE(doc.IsObject());
      for (const auto& m : doc.GetObject()) {
        EXPECT_EQ(strOf(m.value, "status"), "running") << m.name.GetString();
      }
    }
  }
}

TEST_F(PagingTest, BadParametersAnswer400) {
  for (const std::string base : {"/flows", "/flows/status"}) {
    for (const std::string query : {"?limit=0", "?limit=10001", "?limit=abc", "?limit=-1",
                                    "?limit=", "?limit=1.5", "?status=bogus", "?after=no-such-flow",
                                    "?limit=10&after=no-such-flow", "?status=running&limit=0"}) {
      expectJsonError(get(base + query), 400, "GET " + base + query);
    }
  }
  // Nothing changed: every flow is still listed.
  auto doc = parseJson(get("/flows").body);
  ASSERT_TRUE(doc.IsArray());
  EXPECT_EQ(doc.GetArray().Size(), 25u);
}

}  // namespace
}  // namespace sluice::test::observe
