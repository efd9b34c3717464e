// The HTTP edge against the real binary: oversized, malformed, slow and idle clients, the
// connection cap, keep-alive and pipelining. Every refusal is JSON, never 500, never a hang,
// and leaves no spinning thread behind.
#include <sys/resource.h>

#include <fstream>
#include <random>
#include <sstream>

#include "fakes/api_fixture.hpp"
#include "fakes/proc.hpp"
#include "fakes/raw_connection.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1024 * 1024;

// Resident memory of a process, in KiB.
int64_t rssKb(pid_t pid) { return statusField(pid, "VmRSS"); }

// User plus system CPU time of a process, in clock ticks.
int64_t cpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  int64_t utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stoll(f);
    if (i == 15) {
      stime = std::stoll(f);
      break;
    }
  }
  return utime + stime;
}

size_t openDescriptors(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

class EdgeTest : public ApiFixture {
 protected:
  static void SetUpTestSuite() {
    // Room for the many connections some tests hold.
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  uint16_t port() const { return server_->port(); }
  pid_t pid() const { return server_->pid(); }

  // Sends `head`, then body bytes as fast as the server takes them, without reading, until
  // the server closes the connection or `total` bytes went. Returns the response, and the time
  // from the end of the head to the close.
  HttpResponse blast(const std::string& head, uint64_t total,
                     std::chrono::milliseconds* closed_after) {
    RawConnection c(port());
    c.send(head);
    const auto start = std::chrono::steady_clock::now();
    const std::string chunk(256 * 1024, 'x');
    uint64_t sent = 0;
    std::string got;
    const auto deadline = start + 20s;
    while (!c.closed() && sent < total && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = c.trySend(chunk.data(), std::min<uint64_t>(chunk.size(), total - sent));
      if (n < 0) break;  // reset: the server closed
      sent += static_cast<uint64_t>(n);
      if (n == 0) got += c.readSome(5ms);
    }
    got += c.readSome(100ms);
    c.waitClosed(20s);
    *closed_after = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    EXPECT_TRUE(c.closed()) << "the connection stayed open";
    size_t used = 0;
    return RawConnection::parseResponse(got, &used);
  }

  // One second of the server's CPU time while nobody talks to it.
  int64_t idleTicks() {
    const int64_t before = cpuTicks(pid());
    const auto until = std::chrono::steady_clock::now() + 1s;
    // A measurement window, not a wait for something to happen.
    while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
    return cpuTicks(pid()) - before;
  }
};

TEST_F(EdgeTest, OversizedBodiesGetJson413AtOnceWithoutGrowthOrSpin) {
  const int64_t rss_before = rssKb(pid());
  for (uint64_t size : {17 * kMiB, 64 * kMiB, 1024 * kMiB}) {
    SCOPED_TRACE("body of " + std::to_string(size) + " bytes");
    for (bool expect : {false, true}) {
      std::string head = "POST /flows HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" +
                         std::string(expect ? "Expect: 100-continue\r\n" : "") +
                         "Content-Length: " + std::to_string(size) + "\r\n\r\n";
      std::chrono::milliseconds closed_after{};
      auto r = blast(head, size, &closed_after);
      expectJsonError(r, 413);
      EXPECT_NE(r.body.find("over the limit of 16777216 bytes"), std::string::npos) << r.body;
      // The issue's bound is 2 s; the edge closes after its 1 s linger. Generous here because
      // CI machines are shared; docs/benchmarks.md has the measured figure.
      EXPECT_LT(closed_after, 5s);
    }
  }
  EXPECT_LT(rssKb(pid()) - rss_before, static_cast<int64_t>(16 * kMiB / 1024));
  EXPECT_LT(idleTicks(), 30) << "a thread keeps spinning after the refusals";
  EXPECT_EQ(get("/flows").status, 200);
}

TEST_F(EdgeTest, TrickledRequestsAreFramedTheSame) {
  // An oversized body announced by a head that arrives a few bytes at a time.
  RawConnection big(port());
  const std::string head = "POST /flows HTTP/1.1\r\nContent-Length: 1073741824\r\n\r\n";
  for (size_t i = 0; i < head.size(); i += 5) {
    big.send(head.substr(i, 5));
    std::this_thread::sleep_for(2ms);  // pacing the client, not waiting for the server
  }
  for (int i = 0; i < 20 && !big.closed(); ++i) big.trySend("xxxxxxxx", 8);
  expectJsonError(big.readResponse(10s), 413);
  EXPECT_TRUE(big.waitClosed(10s));

  // A body within the limit, trickled in pieces, is served.
  RawConnection ok(port());
  const std::string body = R"([{"flow_id":"trickled","type":"noop"}])";
  ok.send("POST /flows HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  for (char c : body) {
    ok.send(std::string(1, c));
    std::this_thread::sleep_for(1ms);
  }
  auto r = ok.readResponse(10s);
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(get("/flows/trickled").status, 200);
}

TEST_F(EdgeTest, MalformedRequestsGetJson4xxAndTheConnectionCloses) {
  std::mt19937 rng(7);
  std::string junk(4096, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  const std::vector<std::pair<std::string, int>> cases = {
      {"GARBAGE\r\n\r\n", 400},
      {std::string(1000, '\0'), 400},
      {junk, 400},
      {"POST /flows HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400},
      {"POST /flows HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400},
      {"POST /flows HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"POST /flows HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]", 400},
      {"POST /flows HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n[]", 400},
      {"GET /flows HTTP/1.1\nHost: x\n\n", 400},
      {"GET /flows HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
      {"GET /flows HTTP/1.1\r\nno colon here\r\n\r\n", 400},
      {"GET /fl ows HTTP/1.1\r\n\r\n", 400},
      {"GET  /flows HTTP/1.1\r\n\r\n", 400},
      {"GET /flows HTTP/1.1 extra\r\n\r\n", 400},
      {"GET /flows FTP/1.0\r\n\r\n", 400},
      {"GET /flows HTTP/3.0\r\n\r\n", 505},
      {"BREW /flows HTTP/1.1\r\n\r\n", 400},
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"POST /flows HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411},
      {"POST /flows HTTP/1.1\r\nExpect: tea\r\nContent-Length: 2\r\n\r\n[]", 417},
  };
  for (const auto& [raw, status] : cases) {
    SCOPED_TRACE(raw.substr(0, 60));
    RawConnection c(port());
    c.send(raw);
    expectJsonError(c.readResponse(10s), status);
    EXPECT_TRUE(c.waitClosed(10s)) << "the connection was left open";
  }
  EXPECT_LT(idleTicks(), 30);
  EXPECT_EQ(get("/flows").status, 200);
}

TEST_F(EdgeTest, HeadsOver64KiBGet431) {
  for (const std::string& raw :
       {"GET /flows HTTP/1.1\r\nX-Big: " + std::string(70'000, 'a') + "\r\n\r\n", [] {
          std::string many = "GET /flows HTTP/1.1\r\n";
          for (int i = 0; i < 5000; ++i) many += "X-H" + std::to_string(i) + ": 0123456789\r\n";
          return many + "\r\n";
        }()}) {
    RawConnection c(port());
    c.send(raw);
    expectJsonError(c.readResponse(10s), 431);
    EXPECT_TRUE(c.waitClosed(10s));
  }
  // Just under the limit is served.
  RawConnection c(port());
  c.send("GET /flows HTTP/1.1\r\nX-Big: " + std::string(60'000, 'a') + "\r\n\r\n");
  EXPECT_EQ(c.readResponse(10s).status, 200);
}

TEST_F(EdgeTest, SlowAndIdleConnectionsAreClosed) {
  startServer({"--header-timeout", "1s", "--idle-timeout", "2s"});
  const size_t fds_before = openDescriptors(pid());

  RawConnection half(port());
  half.send("GET /flows HTTP/1.1\r\nHost: x\r\n");
  expectJsonError(half.readResponse(10s), 408);
  EXPECT_TRUE(half.waitClosed(10s));

  RawConnection truncated(port());
  truncated.send("POST /flows HTTP/1.1\r\nContent-Length: 100\r\n\r\n[{\"flow_id\":");
  expectJsonError(truncated.readResponse(10s), 408);
  EXPECT_TRUE(truncated.waitClosed(10s));

  RawConnection silent(port());
  EXPECT_TRUE(silent.waitClosed(10s));
  EXPECT_EQ(silent.readSome(10ms), "");

  RawConnection idle(port());
  idle.send("GET /flows HTTP/1.1\r\n\r\n");
  EXPECT_EQ(idle.readResponse(10s).status, 200);
  EXPECT_TRUE(idle.waitClosed(10s)) << "an idle keep-alive connection stayed open";

  // Many slowloris connections at once: all closed, every descriptor given back.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 1000; ++i) {
    slow.push_back(std::make_unique<RawConnection>(port()));
    slow.back()->send("GET /flows HTTP/1.1\r\nX-Slow: ");
  }
  for (auto& c : slow) EXPECT_TRUE(c->waitClosed(20s));
  EXPECT_TRUE(waitFor([&] { return openDescriptors(pid()) <= fds_before; }, 10s))
      << openDescriptors(pid()) << " descriptors open, " << fds_before << " before";
  EXPECT_LT(idleTicks(), 30);
}

TEST_F(EdgeTest, MaxConnectionsRefusesNewOnesAndServesTheOpenOnes) {
  startServer({"--max-connections", "5"});
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<RawConnection>(port()));
    held.back()->send("GET /flows HTTP/1.1\r\n\r\n");
    ASSERT_EQ(held.back()->readResponse(10s).status, 200);
  }
  for (int i = 0; i < 3; ++i) {
    RawConnection extra(port());
    auto r = extra.readResponse(10s);
    expectJsonError(r, 503);
    EXPECT_NE(r.body.find("--max-connections"), std::string::npos);
    EXPECT_TRUE(extra.waitClosed(10s));
  }
  for (auto& c : held) {
    c->send("GET /flows/status HTTP/1.1\r\n\r\n");
    EXPECT_EQ(c->readResponse(10s).status, 200);
  }
  held.pop_back();  // one closes: a new connection is served again
  EXPECT_TRUE(waitFor(
      [&] {
        RawConnection again(port());
        again.send("GET /flows HTTP/1.1\r\n\r\n");
        return again.readResponse(10s).status == 200;
      },
      10s));
}

TEST_F(EdgeTest, KeepAlivePipeliningAndConnectionClose) {
  RawConnection c(port());
  c.send("GET /flows HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r1 = c.readResponse(10s);
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(lower(r1.header("connection")), "keep-alive");
  // Three pipelined requests in one write, answered in order; the last asks to close.
  const std::string body = R"([{"flow_id":"p1","type":"noop"}]  )";
  c.send("POST /flows HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body + "GET /flows/p1 HTTP/1.1\r\n\r\n" +
         "GET /flows/status/p1 HTTP/1.1\r\nConnection: close\r\n\r\n");
  auto a = c.readResponse(10s);
  auto b = c.readResponse(10s);
  auto d = c.readResponse(10s);
  EXPECT_EQ(a.status, 201) << a.body;
  EXPECT_EQ(b.status, 200) << b.body;
  EXPECT_NE(b.body.find("\"p1\""), std::string::npos);
  EXPECT_EQ(d.status, 200) << d.body;
  EXPECT_NE(d.body.find("\"status\""), std::string::npos);
  EXPECT_EQ(lower(d.header("connection")), "close");
  EXPECT_TRUE(c.waitClosed(10s));

  RawConnection old(port());
  old.send("GET /flows HTTP/1.0\r\n\r\n");
  EXPECT_EQ(old.readResponse(10s).status, 200);
  EXPECT_TRUE(old.waitClosed(10s));
}

TEST_F(EdgeTest, PipelinedRequestsWaitForTheSlowOneBeforeThem) {
  ASSERT_EQ(post("/flows", R"([{"flow_id":"slow","type":"probe",)"
                           R"("config":{"block":"start","block_ms":300}}])")
                .status,
            201);
  // The start's answer comes from an engine thread 300 ms later; the GETs behind it are fast.
  const std::string cmd = R"({"command":"start","flow_ids":["slow"]})";
  for (int round = 0; round < 5; ++round) {
    RawConnection c(port());
    c.send("PATCH /flows/commands HTTP/1.1\r\nContent-Length: " + std::to_string(cmd.size()) +
           "\r\n\r\n" + cmd + "GET /flows/status/slow HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
    auto first = c.readResponse(10s);
    auto second = c.readResponse(10s);
    auto third = c.readResponse(10s);
    EXPECT_EQ(first.status, 200) << first.body;
    EXPECT_NE(first.body.find("Flows started"), std::string::npos) << first.body;
    EXPECT_EQ(second.status, 200) << second.body;
    EXPECT_NE(second.body.find("\"flow_id\":\"slow\""), std::string::npos) << second.body;
    EXPECT_EQ(third.status, 404) << third.body;
    ASSERT_EQ(patch(R"({"command":"stop","flow_ids":["slow"]})").status, 200);
  }
}

TEST_F(EdgeTest, ExpectContinueIsAnswered) {
  const std::string body = R"([{"flow_id":"e1","type":"noop"}])";
  RawConnection c(port());
  c.send("POST /flows HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n");
  std::string interim = c.readSome(10s);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send(body);
  EXPECT_EQ(c.readResponse(10s).status, 201);
}

}  // namespace
}  // namespace sluice::test
