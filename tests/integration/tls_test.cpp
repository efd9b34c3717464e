// HTTPS against the real binary (issue #8), with curl: HTTPS only on the TLS port, tokens and the
// WWW-Authenticate challenge over TLS, and bad or incomplete certificate options refused.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "fakes/security_fixture.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// TLS

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // One directory per process: ctest runs each test of this suite in a process of its own,
    // in parallel.
    certs_ = fs::path(SLUICE_TEST_TMP) / ("ops-tls-certs-" + std::to_string(::getpid()));
    fs::remove_all(certs_);
    fs::create_directories(certs_);
    int rc = 0;
    shell("cd '" + certs_.string() +
              "' && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
              "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
              "2>openssl.err && openssl genrsa -out other-key.pem 2048 2>>openssl.err",
          &rc);
    ASSERT_EQ(rc, 0) << readFile(certs_ / "openssl.err");
    std::ofstream(certs_ / "garbage.pem") << "this is not a certificate\n";
  }
  static void TearDownTestSuite() { fs::remove_all(certs_); }
  static fs::path cert() { return certs_ / "cert.pem"; }
  static fs::path key() { return certs_ / "key.pem"; }
  std::vector<std::string> tlsArgs(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"--tls-cert", cert().string(), "--tls-key", key().string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return serverArgs(a);
  }
  /// curl over HTTPS; returns "<status>\n<body>" pieces.
  struct Curl {
    int status = 0;
    std::string body;
    std::string all;  // with -i: the head too
  };
  static Curl curl(uint16_t port, const std::string& path, const std::string& opts = "",
                   bool with_head = false) {
    int rc = 0;
    std::string out = shell("curl -sS --max-time 20 --cacert '" + cert().string() + "' " +
                                (with_head ? "-i " : "") + opts +
                                " -w '\\n%{http_code}' 'https://127.0.0.1:" + std::to_string(port) +
                                path + "' 2>&1",
                            &rc);
    Curl c;
    auto nl = out.rfind('\n');
    if (nl != std::string::npos) {
      try {
        c.status = std::stoi(out.substr(nl + 1));
      } catch (...) {
      }
      c.all = out.substr(0, nl);
    }
    auto head_end = c.all.find("\r\n\r\n");
    c.body = (with_head && head_end != std::string::npos) ? c.all.substr(head_end + 4) : c.all;
    return c;
  }
  static inline fs::path certs_;
};

TEST_F(TlsTest, ServesHttpsOnly) {
  const fs::path dir = testDir("ops");
  ServerProcess server(SLUICE_BINARY, dir / "data", tlsArgs(), (dir / "sluice.log").string());
  auto c = curl(server.port(), "/flows");
  EXPECT_EQ(c.status, 200) << c.all;
  EXPECT_EQ(c.body, "[]");
  // Plain HTTP to the TLS port never gets an answer of 200.
  int plain_status = 0;
  try {
    plain_status = request(server.port(), "GET", "/flows", "", false, 5000).status;
  } catch (const std::exception&) {
    plain_status = -1;  // closed or not HTTP: fine
  }
  EXPECT_NE(plain_status, 200);
  int rc = 0;
  std::string out =
      shell("curl -sS --max-time 10 -o /dev/null -w '%{http_code}' 'http://127.0.0.1:" +
                std::to_string(server.port()) + "/flows' 2>/dev/null",
            &rc);
  EXPECT_NE(out, "200");
  // The HTTPS side still works after the plain attempt.
  EXPECT_EQ(curl(server.port(), "/flows").status, 200);
}

TEST_F(TlsTest, TokensOverHttpsAndWwwAuthenticateOn401) {
  const fs::path dir = testDir("ops");
  const fs::path data = dir / "data";
  const std::string admin = createToken(data, "adm", "admin", dir);
  const std::string viewer = createToken(data, "view", "viewer", dir);
  ServerProcess server(SLUICE_BINARY, data, tlsArgs(), (dir / "sluice.log").string());

  auto c = curl(server.port(), "/flows", "", true);
  EXPECT_EQ(c.status, 401) << c.all;
  EXPECT_NE(lower(c.all).find("www-authenticate: bearer"), std::string::npos) << c.all;

  c = curl(server.port(), "/flows", "-H 'Authorization: Bearer " + admin + "'");
  EXPECT_EQ(c.status, 200) << c.all;
  EXPECT_EQ(c.body, "[]");

  c = curl(server.port(), "/flows",
           "-X POST -H 'Content-Type: application/json' -H 'Authorization: Bearer " + admin +
               "' --data '[{\"flow_id\":\"tls1\",\"type\":\"ticker\",\"config\":{\"interval_ms\":"
               "50}}]'");
  EXPECT_EQ(c.status, 201) << c.all;

  c = curl(server.port(), "/flows/status/tls1", "-H 'Authorization: Bearer " + viewer + "'");
  EXPECT_EQ(c.status, 200) << c.all;
  auto doc = parseJson(c.body);
  ASSERT_TRUE(doc.IsObject()) << c.body;
  ASSERT_TRUE(doc.HasMember("status")) << c.body;
  EXPECT_STREQ(doc["status"].GetString(), "stopped");

  // The viewer may not change anything, over TLS too.
  c = curl(server.port(), "/flows/tls1", "-X DELETE -H 'Authorization: Bearer " + viewer + "'");
  EXPECT_EQ(c.status, 403) << c.all;
  // A wrong token is a 401 with the challenge.
  c = curl(server.port(), "/flows/status/tls1",
           "-H 'Authorization: Bearer sluice_" + std::string(64, 'f') + "'", true);
  EXPECT_EQ(c.status, 401) << c.all;
  EXPECT_NE(lower(c.all).find("www-authenticate: bearer"), std::string::npos) << c.all;
}

TEST_F(TlsTest, BadCertificateRefusesToStart) {
  const fs::path dir = testDir("ops");
  auto start = [&](const fs::path& c, const fs::path& k) {
    return runSluice(
        {"--listen", "127.0.0.1:0", "--data-dir", (dir / "data").string(), "--plugin-dir",
         SLUICE_TEST_PLUGIN_DIR, "--tls-cert", c.string(), "--tls-key", k.string()},
        dir);
  };
  auto garbage = start(certs_ / "garbage.pem", key());
  EXPECT_NE(garbage.exit_code, 0);
  EXPECT_NE(garbage.exit_code, -1);
  EXPECT_NE(garbage.err.find("cannot use the TLS certificate"), std::string::npos) << garbage.err;
  EXPECT_EQ(garbage.out.find("listening on"), std::string::npos);

  auto garbage_key = start(cert(), certs_ / "garbage.pem");
  EXPECT_NE(garbage_key.exit_code, 0);
  EXPECT_NE(garbage_key.exit_code, -1);
  EXPECT_NE(garbage_key.err.find("cannot use the TLS certificate"), std::string::npos)
      << garbage_key.err;

  auto mismatch = start(cert(), certs_ / "other-key.pem");
  EXPECT_NE(mismatch.exit_code, 0);
  EXPECT_NE(mismatch.exit_code, -1);
  EXPECT_NE(mismatch.err.find("cannot use the TLS certificate"), std::string::npos) << mismatch.err;
  EXPECT_EQ(mismatch.out.find("listening on"), std::string::npos);
}

TEST_F(TlsTest, IncompleteOrMissingFilesAreUsageErrors) {
  const fs::path dir = testDir("ops");
  const std::string data = (dir / "data").string();
  auto only_cert = runSluice(
      {"--listen", "127.0.0.1:0", "--data-dir", data, "--tls-cert", cert().string()}, dir);
  EXPECT_EQ(only_cert.exit_code, 2) << only_cert.err;
  EXPECT_NE(only_cert.err.find("--tls-key"), std::string::npos) << only_cert.err;
  auto only_key =
      runSluice({"--listen", "127.0.0.1:0", "--data-dir", data, "--tls-key", key().string()}, dir);
  EXPECT_EQ(only_key.exit_code, 2) << only_key.err;
  auto missing = runSluice({"--listen", "127.0.0.1:0", "--data-dir", data, "--tls-cert",
                            (dir / "nope.pem").string(), "--tls-key", key().string()},
                           dir);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.exit_code, -1);
  EXPECT_NE(missing.err.find("nope.pem"), std::string::npos) << missing.err;
  EXPECT_EQ(missing.out.find("listening on"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
