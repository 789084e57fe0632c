// A fixed-answer HTTP server for measuring the server's own cost per request with wrk:
//   serve_http_bench [port] [threads]
//   wrk -t1 -c64 -d5s -s post.lua http://127.0.0.1:<port>/invocations
// Runs until stdin closes or reads a line.

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "ferry/serve/http_server.h"

namespace {

class FixedHandler : public ferry::serve::Handler {
 public:
  void Handle(const ferry::serve::Request& request,
              ferry::serve::Response& response) noexcept override {
    if (request.path != "/invocations") {
      ferry::serve::SetJsonError(response, 404, "not_found", "try POST /invocations");
      return;
    }
    response.body = R"({"predictions":[0.8172],"model":{"name":"churn","version":7}})";
  }
};

}  // namespace

int main(int argc, char** argv) {
  FixedHandler handler;
  ferry::serve::HttpServer server(
      {.port = argc > 1 ? std::atoi(argv[1]) : 0, .threads = argc > 2 ? std::atoi(argv[2]) : 0},
      handler);
  if (absl::Status status = server.Start(); !status.ok()) {
    std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%d\n", server.port());
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);
  server.Shutdown(absl::Seconds(5));
  return 0;
}
