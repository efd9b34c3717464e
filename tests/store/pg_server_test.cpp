// The real binary on PostgreSQL (issue 10): --store and SLUICE_STORE, flows and desired states
// that outlive the node, the token CLI on the shared store, and `sluice migrate` from a single
// node's SQLite file.
#include "fakes/pg_server.hpp"

#include <cstdlib>

#include "fakes/security_fixture.hpp"
#include "fakes/server_process.hpp"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string statusOf(uint16_t port, const std::string& id, const std::string& secret = "") {
  auto r = requestWith(port, "GET", "/flows/status/" + id, bearer(secret));
  if (r.status != 200) return "http " + std::to_string(r.status);
  auto doc = parseJson(r.body);
  return doc.IsObject() && doc.HasMember("status") ? doc["status"].GetString() : r.body;
}

TEST(PgServer, FlowsAndDesiredStatesOutliveTheNode) {
  const fs::path dir = testDir("pg");
  const std::string url = PgServer::shared().freshDatabase("outlive");
  {
    ServerProcess node(SLUICE_BINARY, dir / "node1", serverArgs({"--store", url}));
    auto created = request(node.port(), "POST", "/flows",
                           R"([{"flow_id":"t1","type":"ticker","config":{"interval_ms":50}},
                               {"flow_id":"idle","name":"kept verbatim"}])");
    ASSERT_EQ(created.status, 201) << created.body;
    auto started = request(node.port(), "PATCH", "/flows/commands",
                           R"({"command":"start","flow_ids":["t1"]})");
    ASSERT_EQ(started.status, 200) << started.body;
    EXPECT_EQ(statusOf(node.port(), "t1"), "running");
    EXPECT_EQ(request(node.port(), "GET", "/readyz").status, 200);
    node.kill(SIGTERM);
  }
  // Another node, another data directory, the same store: the same flows, running again.
  ServerProcess node(SLUICE_BINARY, dir / "node2", serverArgs({"--store", url}));
  EXPECT_TRUE(waitFor([&] { return statusOf(node.port(), "t1") == "running"; }, 10s));
  auto one = request(node.port(), "GET", "/flows/idle");
  ASSERT_EQ(one.status, 200);
  EXPECT_TRUE(jsonEqual(one.body, R"({"flow_id":"idle","name":"kept verbatim"})")) << one.body;
  auto list = parseJson(request(node.port(), "GET", "/flows").body);
  ASSERT_TRUE(list.IsArray());
  ASSERT_EQ(list.Size(), 2u);
  EXPECT_STREQ(list[0]["flow_id"].GetString(), "t1") << "creation order";
  EXPECT_EQ(request(node.port(), "DELETE", "/flows/idle").status, 200);
  EXPECT_EQ(request(node.port(), "GET", "/flows/idle").status, 404);
}

TEST(PgServer, TheTokenCliAndTheServerShareTheStore) {
  const fs::path dir = testDir("pg");
  const std::string url = PgServer::shared().freshDatabase("tokens");
  // SLUICE_STORE is what --store defaults to.
  ::setenv("SLUICE_STORE", url.c_str(), 1);
  auto created = runSluice({"token", "create", "--name", "ops", "--role", "admin"}, dir);
  ::unsetenv("SLUICE_STORE");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string secret = trim(created.out);
  ServerProcess node(SLUICE_BINARY, dir / "node", serverArgs({"--store", url}));
  EXPECT_EQ(request(node.port(), "GET", "/flows").status, 401) << "a token exists in the store";
  EXPECT_EQ(requestWith(node.port(), "GET", "/flows", bearer(secret)).status, 200);
  auto revoked = runSluice({"token", "revoke", "ops", "--store", url}, dir);
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  // Another process revoked it: the server hears of it through the store's notifications.
  EXPECT_TRUE(waitFor(
      [&] { return requestWith(node.port(), "GET", "/flows", bearer(secret)).status == 401; },
      10s));
}

TEST(PgServer, MigrateMovesASingleNodeIntoTheSharedStore) {
  const fs::path dir = testDir("pg");
  const fs::path single = dir / "single";
  std::string secret;
  {
    ServerProcess node(SLUICE_BINARY, single, serverArgs());
    ASSERT_EQ(request(node.port(), "POST", "/flows",
                      R"([{"flow_id":"b","type":"ticker","config":{"interval_ms":50}},
                          {"flow_id":"a","type":"noop"}])")
                  .status,
              201);
    ASSERT_EQ(
        request(node.port(), "PATCH", "/flows/commands", R"({"command":"start","flow_ids":["b"]})")
            .status,
        200);
    node.kill(SIGTERM);
  }
  secret = createToken(single, "ops", "admin", dir);
  const std::string url = PgServer::shared().freshDatabase("migrate");
  auto moved = runSluice({"migrate", "--from", "sqlite:" + single.string(), "--to", url}, dir);
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(moved.out.find("migrated 2 flows"), std::string::npos) << moved.out;
  EXPECT_NE(moved.out.find("1 tokens"), std::string::npos) << moved.out;

  ServerProcess node(SLUICE_BINARY, dir / "cluster-node", serverArgs({"--store", url}));
  EXPECT_EQ(request(node.port(), "GET", "/flows").status, 401) << "the token moved too";
  EXPECT_TRUE(waitFor([&] { return statusOf(node.port(), "b", secret) == "running"; }, 10s));
  EXPECT_EQ(statusOf(node.port(), "a", secret), "stopped");
  auto list = parseJson(requestWith(node.port(), "GET", "/flows", bearer(secret)).body);
  ASSERT_TRUE(list.IsArray());
  ASSERT_EQ(list.Size(), 2u);
  EXPECT_STREQ(list[0]["flow_id"].GetString(), "b");

  // Into a store that holds flows: refused, nothing written.
  auto twice = runSluice({"migrate", "--from", "sqlite:" + single.string(), "--to", url}, dir);
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("already holds"), std::string::npos) << twice.err;
  // A source that does not exist is named, and nothing is created.
  auto missing = runSluice({"migrate", "--from", "sqlite:" + (dir / "nope").string(), "--to",
                            PgServer::shared().freshDatabase("unused")},
                           dir);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("not an existing store"), std::string::npos) << missing.err;
  EXPECT_FALSE(fs::exists(dir / "nope"));
}

TEST(PgServer, ABadStoreStopsTheServerWithAReason) {
  const fs::path dir = testDir("pg");
  auto bad = runSluice({"--listen", "127.0.0.1:0", "--store", "mysql://x/y"}, dir);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("sqlite:DIR or postgresql://"), std::string::npos) << bad.err;
  auto down = runSluice({"--listen", "127.0.0.1:0", "--store",
                         "postgresql://postgres@127.0.0.1:1/x?connect_timeout=2"},
                        dir);
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.err.find("cannot connect to PostgreSQL"), std::string::npos) << down.err;
}

rapidjson::Document clusterOf(uint16_t port) {
  auto r = request(port, "GET", "/cluster");
  EXPECT_EQ(r.status, 200) << r.body;
  return parseJson(r.status == 200 ? r.body : "{}");
}

std::string leaderOf(uint16_t port) {
  auto doc = clusterOf(port);
  return doc.IsObject() && doc.HasMember("leader") && doc["leader"].IsString()
             ? doc["leader"].GetString()
             : "";
}

TEST(PgServer, ClusterListsTheNodesAndOneLeader) {
  const fs::path dir = testDir("pg");
  const std::string url = PgServer::shared().freshDatabase("cluster");
  auto a = std::make_unique<ServerProcess>(
      SLUICE_BINARY, dir / "a",
      serverArgs({"--store", url, "--node-id", "node-a", "--lease-ttl", "1s"}));
  ServerProcess b(SLUICE_BINARY, dir / "b",
                  serverArgs({"--store", url, "--node-id", "node-b", "--advertise-url",
                              "http://b.example:5000", "--lease-ttl", "1s"}));
  auto doc = clusterOf(a->port());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_STREQ(doc["node"].GetString(), "node-a");
  EXPECT_EQ(doc["lease_ttl_ms"].GetInt(), 1000);
  EXPECT_FALSE(doc["fenced"].GetBool());
  ASSERT_EQ(doc["nodes"].Size(), 2u);
  for (const auto& n : doc["nodes"].GetArray()) EXPECT_TRUE(n["alive"].GetBool());
  EXPECT_STREQ(doc["nodes"][1]["url"].GetString(), "http://b.example:5000");
  // Both nodes name the same leader.
  ASSERT_TRUE(waitFor([&] { return !leaderOf(a->port()).empty(); }, 10s));
  EXPECT_EQ(leaderOf(a->port()), leaderOf(b.port()));
  // The leader goes (a clean stop leaves the cluster); b leads, alone.
  if (leaderOf(b.port()) == "node-a") {
    a->kill(SIGTERM);
    a.reset();
    EXPECT_TRUE(waitFor([&] { return leaderOf(b.port()) == "node-b"; }, 10s));
    EXPECT_EQ(clusterOf(b.port())["nodes"].Size(), 1u);
  } else {
    // b leads: a SIGKILLed follower stays listed, no longer alive once its lease ran out.
    a->kill(SIGKILL);
    a.reset();
    EXPECT_TRUE(waitFor(
        [&] {
          auto d = clusterOf(b.port());
          return d["nodes"].Size() == 2 && !d["nodes"][0]["alive"].GetBool();
        },
        10s));
    EXPECT_EQ(leaderOf(b.port()), "node-b");
  }
}

TEST(PgServer, ASingleNodeOnSqliteIsItsOwnCluster) {
  const fs::path dir = testDir("pg");
  ServerProcess node(SLUICE_BINARY, dir / "single", serverArgs({"--node-id", "solo"}));
  auto doc = clusterOf(node.port());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_STREQ(doc["leader"].GetString(), "solo");
  ASSERT_EQ(doc["nodes"].Size(), 1u);
  EXPECT_EQ(std::string(doc["nodes"][0]["url"].GetString()),
            "http://127.0.0.1:" + std::to_string(node.port()));
  EXPECT_EQ(request(node.port(), "POST", "/cluster", "{}").status, 405);
  auto short_ttl = runSluice(
      {"--listen", "127.0.0.1:0", "--data-dir", (dir / "x").string(), "--lease-ttl", "50ms"}, dir);
  EXPECT_EQ(short_ttl.exit_code, 2);
  EXPECT_NE(short_ttl.err.find("--lease-ttl"), std::string::npos) << short_ttl.err;
}

}  // namespace
}  // namespace sluice::test
