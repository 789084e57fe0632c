#pragma once
// HttpServer: the data plane's HTTP/1.1 server, built for a few microseconds per request.
//
// N event loops (threads), each with its own io_context and its own listening socket bound to
// the same port with SO_REUSEPORT, so the kernel spreads connections across loops and a request
// never changes thread. A connection is read, parsed (Beast's parser, header and body limits),
// handled and answered on its loop; responses are written by hand into one reused buffer per
// connection, one write for all the pipelined requests parsed from one read. HTTP/1.1
// keep-alive, pipelining (answered in order), `Connection: close`, and HTTP/1.0 (keep-alive only
// when asked for) are supported; chunked request bodies are accepted.
//
// Thread-safety: Start, Shutdown and the destructor are called from one owning thread;
// port() and in_flight() from any thread. The Handler is called concurrently from every loop
// and must be thread-safe; it must not throw and should not block (a blocked handler stalls
// every connection of its loop).
//
// Failures never leave the loop: malformed HTTP gets 400, an oversized body 413 and oversized
// headers 431, each with a JSON error body and the connection closed after the answer.
//
// Example:
//   class Echo : public ferry::serve::Handler {
//     void Handle(const Request& req, Response& resp) noexcept override { resp.body = req.body; }
//   } echo;
//   ferry::serve::HttpServer server({.port = 8080}, echo);
//   FERRY_RETURN_IF_ERROR(server.Start());
//   ...
//   server.Shutdown(absl::Seconds(10));

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ferry::serve {

struct Header {
  std::string_view name;
  std::string_view value;
};

// One parsed request. Every view points into the connection's buffers and is valid only
// during Handler::Handle.
struct Request {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // as sent: "/invocations?x=1"
  std::string_view path;    // target without the query string
  std::string_view body;
  std::span<const Header> headers;
  // The first header called `name` (case-insensitive); "" if absent.
  std::string_view HeaderValue(std::string_view name) const;
};

// What the handler fills in. The server reuses one Response per connection (reset to these
// defaults before each request) so that the body's capacity is kept between requests.
struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Sets `response` to the server's JSON error shape:
//   {"error": {"code": "<code>", "message": "<message>"}}
void SetJsonError(Response& response, int status, std::string_view code, std::string_view message);

class Handler {  // called on event-loop threads, concurrently; must not throw
 public:
  virtual ~Handler() = default;
  virtual void Handle(const Request& request, Response& response) noexcept = 0;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                                     // 0: a free port; port() says which
  int threads = 0;                                  // event loops; 0: one per core
  size_t max_body_bytes = 6 << 20;                  // larger: 413 JSON error, connection closed
  size_t max_header_bytes = 16 << 10;               // larger: 431 JSON error
  absl::Duration read_timeout = absl::Seconds(30);  // a started request must arrive whole
  absl::Duration idle_timeout = absl::Seconds(60);  // keep-alive with no request: closed
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler& handler);  // handler borrowed
  ~HttpServer();                                            // Shutdown(0) if running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds + starts loops; Unavailable naming host:port on failure. Call once.
  absl::Status Start();
  int port() const;
  // Stops accepting; requests already being read or handled are answered; idle keep-alive
  // connections are closed; waits up to `grace` for in-flight ones, then stops the loops.
  void Shutdown(absl::Duration grace);
  int64_t in_flight() const;  // requests being handled now

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::serve
