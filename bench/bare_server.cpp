// A bare Pistache server answering every request with a fixed JSON body: the baseline the REST
// service is compared with in bench/run.sh (same Pistache version, options and thread count).
// usage: bare_server [port] [threads] [body-file]: with a file, its bytes are the body (what
// Pistache alone makes of the large documents nginx serves in the same run).
#include <pistache/endpoint.h>
#include <pistache/http.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

using namespace Pistache;

namespace {

std::string body =
    R"({"flow_id":"t0","status":"running","desired":"running","type":"ticker","since":"2026-11-28T04:01:06.931Z","metrics":{"ticks":5}})";

class Bare : public Http::Handler {
 public:
  HTTP_PROTOTYPE(Bare)
  void onRequest(const Http::Request&, Http::ResponseWriter writer) override {
    writer.headers().add<Http::Header::ContentType>(MIME(Application, Json));
    writer.send(Http::Code::Ok, body);
  }
};

}  // namespace

int main(int argc, char** argv) {
  int port = argc > 1 ? std::stoi(argv[1]) : 5099;
  int threads = argc > 2 ? std::stoi(argv[2]) : 2;
  if (argc > 3) {
    std::ifstream in(argv[3], std::ios::binary);
    body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Http::Endpoint endpoint(Address("127.0.0.1", Port(static_cast<uint16_t>(port))));
  endpoint.init(Http::Endpoint::options().threads(threads).flags(Tcp::Options::ReuseAddr));
  endpoint.setHandler(Http::make_handler<Bare>());
  endpoint.serveThreaded();
  std::cout << "listening on 127.0.0.1:" << endpoint.getPort() << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  endpoint.shutdown();
  return 0;
}
