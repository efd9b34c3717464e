// The role matrix of the REST API against the real binary (issue #8): every endpoint x every role
// and every way of failing authentication, and what a refusal leaves behind (nothing changed, one
// audit entry naming who was refused).
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

const std::vector<std::string> kRoles = {"viewer", "operator", "editor", "admin"};

int roleRank(const std::string& role) {
  for (size_t i = 0; i < kRoles.size(); ++i) {
    if (kRoles[i] == role) return static_cast<int>(i);
  }
  return -1;
}

/// One request of the matrix, prepared for one case.
struct Call {
  std::string method, path, body;
  // What its audit entry must name; nullopt: not checked.
  std::optional<std::vector<std::string>> flow_ids;
};

class MatrixTest : public SecureServer {};

struct Endpoint {
  std::string label;
  std::string needs;  // the role it needs
  int ok_status;      // its answer when admitted
  std::function<Call(MatrixTest&, const std::string& tag)> prepare;
};

struct Caller {
  std::string label;
  std::string secret;       // empty: no Authorization header
  std::string role;         // the role of a valid token; empty for the 401 callers
  std::string audit_token;  // what its audit entries name
  std::string audit_role;
};

TEST_F(MatrixTest, EveryEndpointTimesEveryRoleAndEveryAuthFailure) {
  // Tokens exist before the server starts: authentication is required from the start.
  std::map<std::string, std::string> secret;
  for (const auto& role : kRoles) secret[role] = cliToken("t-" + role, role);
  admin_ = secret["admin"];
  const std::string revoked = cliToken("t-revoked", "admin");
  ASSERT_EQ(
      runSluice({"token", "revoke", "t-revoked", "--data-dir", data().string()}, dir_).exit_code,
      0);
  const std::string expired = cliToken("t-expired", "admin", "1s");
  // Refusals come by the dozen here: the lockout has its own test.
  startServer({"--auth-max-failures", "0"});

  // Flows the cases work on: f1 takes commands, p1 takes PUTs.
  ASSERT_EQ(asAdmin("POST", "/flows", R"([{"flow_id":"f1"},{"flow_id":"p1","name":"p"}])").status,
            201);

  // The expiring token is refused once its second has passed (GET /tokens says so first).
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = asAdmin("GET", "/tokens");
        return r.body.find(R"("name":"t-expired")") != std::string::npos &&
               r.body.find(R"("expired":true)") != std::string::npos;
      },
      10s))
      << asAdmin("GET", "/tokens").body;
  ASSERT_TRUE(waitFor([&] { return call(expired, "GET", "/flows").status == 401; }, 10s));

  auto stopF1 = [](MatrixTest& t) {
    auto r = t.asAdmin("PATCH", "/flows/commands", R"({"command":"stop","flow_ids":["f1"]})");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(t.flowStatus("f1"), "stopped");
  };

  const std::vector<Endpoint> endpoints = {
      {"GET /flows", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows", "", std::vector<std::string>{}};
       }},
      {"GET /flows/ID", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows/f1", "", std::nullopt};
       }},
      {"GET /flows/status", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows/status", "", std::vector<std::string>{}};
       }},
      {"GET /flows/status/ID", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/flows/status/f1", "", std::nullopt};
       }},
      {"GET /plugins", "viewer", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/plugins", "", std::vector<std::string>{}};
       }},
      {"PATCH /flows/commands", "operator", 200,
       [stopF1](MatrixTest& t, const std::string&) {
         stopF1(t);
         return Call{"PATCH", "/flows/commands", R"({"command":"start","flow_ids":["f1"]})",
                     std::vector<std::string>{"f1"}};
       }},
      {"POST /flows", "editor", 201,
       [](MatrixTest&, const std::string& tag) {
         return Call{"POST", "/flows",
                     R"([{"flow_id":"new-)" + tag + R"(a"},{"flow_id":"new-)" + tag + R"(b"}])",
                     std::vector<std::string>{"new-" + tag + "a", "new-" + tag + "b"}};
       }},
      {"PUT /flows/ID", "editor", 200,
       [](MatrixTest&, const std::string& tag) {
         return Call{"PUT", "/flows/p1", R"({"flow_id":"p1","name":"put-)" + tag + R"("})",
                     std::vector<std::string>{"p1"}};
       }},
      {"DELETE /flows/ID", "editor", 200,
       [](MatrixTest& t, const std::string& tag) {
         auto r = t.asAdmin("POST", "/flows", R"([{"flow_id":"del-)" + tag + R"("}])");
         EXPECT_EQ(r.status, 201) << r.body;
         return Call{"DELETE", "/flows/del-" + tag, "", std::vector<std::string>{"del-" + tag}};
       }},
      {"POST /flows/validate", "editor", 200,
       [](MatrixTest&, const std::string& tag) {
         // flow_ids of a validation are not specified: not checked.
         return Call{"POST", "/flows/validate", R"([{"flow_id":"val-)" + tag + R"("}])",
                     std::nullopt};
       }},
      {"GET /tokens", "admin", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/tokens", "", std::vector<std::string>{}};
       }},
      {"POST /tokens", "admin", 201,
       [](MatrixTest&, const std::string& tag) {
         return Call{"POST", "/tokens", R"({"name":"mk-)" + tag + R"(","role":"viewer"})",
                     std::vector<std::string>{}};
       }},
      {"DELETE /tokens/NAME", "admin", 200,
       [](MatrixTest& t, const std::string& tag) {
         auto r = t.asAdmin("POST", "/tokens", R"({"name":"vic-)" + tag + R"(","role":"viewer"})");
         EXPECT_EQ(r.status, 201) << r.body;
         return Call{"DELETE", "/tokens/vic-" + tag, "", std::vector<std::string>{}};
       }},
      {"GET /audit", "admin", 200,
       [](MatrixTest&, const std::string&) {
         return Call{"GET", "/audit", "", std::vector<std::string>{}};
       }},
  };

  std::vector<Caller> callers;
  for (const auto& role : kRoles) callers.push_back({role, secret[role], role, "t-" + role, role});
  callers.push_back({"no token", "", "", "anonymous", "anonymous"});
  callers.push_back(
      {"unknown token", "sluice_" + std::string(64, '0'), "", "anonymous", "anonymous"});
  callers.push_back({"expired token", expired, "", "t-expired", "admin"});
  callers.push_back({"revoked token", revoked, "", "t-revoked", "admin"});

  int n = 0;
  for (const auto& ep : endpoints) {
    for (const auto& who : callers) {
      const std::string tag = std::to_string(++n);
      const std::string what = ep.label + " as " + who.label;
      SCOPED_TRACE(what);
      Call c = ep.prepare(*this, tag);
      skipAudit();
      const std::string flows_before = asAdmin("GET", "/flows").body;
      const auto status_before = statuses();
      const std::string tokens_before = asAdmin("GET", "/tokens").body;

      auto r = call(who.secret, c.method, c.path, c.body);

      const bool authenticated = !who.role.empty();
      const bool allowed = authenticated && roleRank(who.role) >= roleRank(ep.needs);
      auto entries = newAudit();
      if (allowed) {
        EXPECT_EQ(r.status, ep.ok_status) << r.body;
        if (c.method == "GET") {
          EXPECT_TRUE(entries.empty()) << "a successful GET is not audited: " << entries[0];
        } else if (entries.size() != 1) {
          ADD_FAILURE() << entries.size() << " audit entries for one admitted change";
        } else {
          const auto& a = entries[0];
          EXPECT_EQ(a.status, ep.ok_status) << a;
          EXPECT_EQ(a.token, who.audit_token) << a;
          EXPECT_EQ(a.role, who.audit_role) << a;
          EXPECT_EQ(a.method, c.method) << a;
          EXPECT_EQ(a.path, c.path) << a;
          EXPECT_TRUE(a.error_null) << a;
          if (c.flow_ids) {
            EXPECT_EQ(a.flow_ids, *c.flow_ids) << a;
          }
        }
        continue;
      }
      // A refusal: the right answer, nothing changed, and exactly one audit entry.
      if (authenticated) {
        expect403(r, ep.needs, what);
      } else {
        expect401(r, what);
      }
      EXPECT_EQ(asAdmin("GET", "/flows").body, flows_before);
      EXPECT_EQ(statuses(), status_before);
      EXPECT_EQ(asAdmin("GET", "/tokens").body, tokens_before);
      if (entries.size() != 1) {
        ADD_FAILURE() << entries.size() << " audit entries for one refusal";
        for (const auto& a : entries) ADD_FAILURE() << a;
        continue;
      }
      const auto& a = entries[0];
      EXPECT_EQ(a.status, r.status) << a;
      EXPECT_EQ(a.method, c.method) << a;
      EXPECT_EQ(a.path, c.path) << a;
      EXPECT_EQ(a.token, who.audit_token) << a;
      EXPECT_EQ(a.role, who.audit_role) << a;
      EXPECT_EQ(a.remote, "127.0.0.1") << a;
      EXPECT_FALSE(a.error_null) << a;
      EXPECT_FALSE(a.error.empty()) << a;
      EXPECT_EQ(a.error, strOf(parseJson(r.body), "error")) << a;
      // The ids of a body are read for a known token only (403): the server never parses the
      // body of a client without one.
      const bool ids_in_body = (c.method == "POST" && c.path == "/flows") || c.method == "PATCH";
      if (c.flow_ids && ids_in_body && !authenticated) {
        EXPECT_TRUE(a.flow_ids.empty()) << a;
      } else if (c.flow_ids) {
        EXPECT_EQ(a.flow_ids, *c.flow_ids) << a;
      }
    }
  }
  // The server took all of it and still answers.
  EXPECT_EQ(asAdmin("GET", "/flows/status").status, 200);
}

}  // namespace
}  // namespace sluice::test
