#include "ferry/serve/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <latch>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {
namespace {

// A blocking HTTP/1.1 client on a raw socket; every read is bounded by a 10 s receive timeout.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }

  void Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  struct Reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
  };
  // Reads one response (Content-Length bodies; none for a HEAD); status 0 on EOF, error or
  // timeout.
  Reply Read(bool head_request = false) {
    Reply reply;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return reply;
    }
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    reply.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = line.substr(colon + 2);
      pos = next + 2;
    }
    size_t length = head_request ? 0 : std::stoul(reply.headers["content-length"]);
    while (buf_.size() < length) {
      if (!Fill()) return Reply{};
    }
    reply.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return reply;
  }

  // True when the server closed the connection: a read returns 0 (EOF) or a reset, with
  // nothing left unread. False on a timeout or on data.
  bool ReadsEof() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  bool Fill() {
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Post(std::string_view target, std::string_view body, std::string_view extra = "") {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}

// Echoes what it saw as JSON: method, target, path, body, and the X-Test header.
class EchoHandler : public Handler {
 public:
  void Handle(const Request& request, Response& response) noexcept override {
    nlohmann::json j = {{"method", request.method},
                        {"target", request.target},
                        {"path", request.path},
                        {"body", request.body},
                        {"x_test", request.HeaderValue("x-TEST")}};
    response.body = j.dump();
    response.headers.emplace_back("X-Seen", std::to_string(request.headers.size()));
    if (request.path == "/missing") SetJsonError(response, 404, "not_found", "no such route");
  }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    options.threads = options.threads == 0 ? 2 : options.threads;
    server_ = std::make_unique<HttpServer>(options, handler_);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }
  EchoHandler handler_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.connected());
  for (int i = 0; i < 5; ++i) {
    std::string body = "row-" + std::to_string(i);
    client.Send(Post("/invocations?x=" + std::to_string(i), body, "X-Test: hello\r\n"));
    Client::Reply reply = client.Read();
    ASSERT_EQ(reply.status, 200) << i;
    EXPECT_EQ(reply.headers["content-type"], "application/json");
    EXPECT_EQ(reply.headers.count("connection"), 0u);
    EXPECT_EQ(reply.headers["x-seen"], "3");  // Host, Content-Length, X-Test
    auto j = nlohmann::json::parse(reply.body);
    EXPECT_EQ(j["method"], "POST");
    EXPECT_EQ(j["target"], "/invocations?x=" + std::to_string(i));
    EXPECT_EQ(j["path"], "/invocations");
    EXPECT_EQ(j["body"], body);
    EXPECT_EQ(j["x_test"], "hello");
  }
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  Client client(server_->port());
  std::string all;
  for (int i = 0; i < 20; ++i) all += Post("/p", std::to_string(i));
  // A chunked request in the same stream, then a GET.
  all +=
      "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  all += "GET /last HTTP/1.1\r\nHost: x\r\n\r\n";
  client.Send(all);
  for (int i = 0; i < 20; ++i) {
    Client::Reply reply = client.Read();
    ASSERT_EQ(reply.status, 200) << i;
    EXPECT_EQ(nlohmann::json::parse(reply.body)["body"], std::to_string(i));
  }
  Client::Reply chunked = client.Read();
  ASSERT_EQ(chunked.status, 200);
  EXPECT_EQ(nlohmann::json::parse(chunked.body)["body"], "abcde");
  Client::Reply last = client.Read();
  ASSERT_EQ(last.status, 200);
  EXPECT_EQ(nlohmann::json::parse(last.body)["path"], "/last");
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10) {
  StartServer();
  {
    Client client(server_->port());
    client.Send(Post("/a", "x", "Connection: close\r\n"));
    Client::Reply reply = client.Read();
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.headers["connection"], "close");
    EXPECT_TRUE(client.ReadsEof());
  }
  {
    Client client(server_->port());
    client.Send("GET /old HTTP/1.0\r\n\r\n");
    Client::Reply reply = client.Read();
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.headers["connection"], "close");
    EXPECT_TRUE(client.ReadsEof());
  }
  {
    Client client(server_->port());
    client.Send("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    Client::Reply reply = client.Read();
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.headers["connection"], "keep-alive");
    client.Send("HEAD /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    Client::Reply head = client.Read(/*head=*/true);  // Content-Length but no body
    EXPECT_EQ(head.status, 200);
    EXPECT_NE(head.headers["content-length"], "0");
    client.Send("GET /third HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(nlohmann::json::parse(client.Read().body)["path"], "/third");  // no stray body
  }
}

TEST_F(HttpServerTest, HandlerErrorsKeepTheConnection) {
  StartServer();
  Client client(server_->port());
  client.Send("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
  Client::Reply reply = client.Read();
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(reply.body, R"({"error":{"code":"not_found","message":"no such route"}})");
  client.Send("GET /found HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(client.Read().status, 200);
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  StartServer({.max_body_bytes = 1000});
  Client client(server_->port());
  // The declared length alone is over the limit: answered before the body is sent.
  client.Send("POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  Client::Reply reply = client.Read();
  ASSERT_EQ(reply.status, 413);
  EXPECT_EQ(reply.headers["connection"], "close");
  auto j = nlohmann::json::parse(reply.body);
  EXPECT_EQ(j["error"]["code"], "payload_too_large");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("1000 bytes"), std::string::npos);
  EXPECT_TRUE(client.ReadsEof());

  // A chunked body crossing the limit as it arrives.
  Client chunked(server_->port());
  chunked.Send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  chunked.Send("400\r\n" + std::string(1024, 'a') + "\r\n");
  EXPECT_EQ(chunked.Read().status, 413);

  // At the limit is fine.
  Client ok(server_->port());
  ok.Send(Post("/ok", std::string(1000, 'b')));
  EXPECT_EQ(ok.Read().status, 200);
}

TEST_F(HttpServerTest, OversizedHeaderGets431) {
  StartServer({.max_header_bytes = 1024});
  Client client(server_->port());
  client.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'v') + "\r\n\r\n");
  Client::Reply reply = client.Read();
  ASSERT_EQ(reply.status, 431);
  EXPECT_EQ(reply.headers["connection"], "close");
  EXPECT_EQ(nlohmann::json::parse(reply.body)["error"]["code"], "request_header_fields_too_large");
  EXPECT_TRUE(client.ReadsEof());
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  StartServer();
  for (std::string bad :
       {"THIS IS NOT HTTP\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
    Client client(server_->port());
    client.Send(bad);
    Client::Reply reply = client.Read();
    ASSERT_EQ(reply.status, 400) << bad;
    auto j = nlohmann::json::parse(reply.body);
    EXPECT_EQ(j["error"]["code"], "bad_request");
    EXPECT_NE(j["error"]["message"].get<std::string>().find("malformed HTTP request"),
              std::string::npos);
    EXPECT_TRUE(client.ReadsEof()) << bad;
  }
}

TEST_F(HttpServerTest, IdleConnectionIsClosed) {
  StartServer({.idle_timeout = absl::Milliseconds(100)});
  Client client(server_->port());
  client.Send(Post("/a", "1"));
  ASSERT_EQ(client.Read().status, 200);
  // The blocking read returns when the server closes the idle connection (bounded by the
  // client's 10 s receive timeout, which would make the assertion fail).
  EXPECT_TRUE(client.ReadsEof());
}

TEST_F(HttpServerTest, SlowRequestIsClosed) {
  StartServer({.read_timeout = absl::Milliseconds(100)});
  Client client(server_->port());
  client.Send("POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345");  // never finished
  EXPECT_TRUE(client.ReadsEof());
}

// Blocks the first request until released, to shut down with a request in flight.
class BlockingHandler : public Handler {
 public:
  void Handle(const Request&, Response& response) noexcept override {
    entered_.count_down();
    release_.wait();
    response.body = R"({"done":true})";
  }
  std::latch entered_{1};
  std::latch release_{1};
};

TEST(HttpServerShutdownTest, InFlightRequestIsAnsweredAndNewConnectsFail) {
  BlockingHandler handler;
  HttpServer server({.threads = 1}, handler);
  ASSERT_TRUE(server.Start().ok());
  const int port = server.port();

  Client idle(port);  // an idle keep-alive connection: closed by Shutdown
  ASSERT_TRUE(idle.connected());
  Client busy(port);
  busy.Send(Post("/invocations", "{}"));
  handler.entered_.wait();
  EXPECT_EQ(server.in_flight(), 1);

  std::thread stopper([&] { server.Shutdown(absl::Seconds(10)); });
  handler.release_.count_down();
  Client::Reply reply = busy.Read();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"done":true})");
  stopper.join();

  EXPECT_TRUE(idle.ReadsEof());
  EXPECT_TRUE(busy.ReadsEof());
  EXPECT_EQ(server.in_flight(), 0);
  Client late(port);
  EXPECT_FALSE(late.connected());
}

TEST_F(HttpServerTest, ConcurrentClientsGetTheirOwnAnswers) {
  StartServer();
  constexpr int kClients = 16, kRequests = 200;
  std::atomic<int> right{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      Client client(server_->port());
      for (int i = 0; i < kRequests; ++i) {
        std::string body = std::to_string(c) + ":" + std::to_string(i);
        client.Send(Post("/c/" + std::to_string(c), body));
        Client::Reply reply = client.Read();
        if (reply.status != 200) return;
        auto j = nlohmann::json::parse(reply.body, nullptr, false);
        if (!j.is_discarded() && j["body"] == body && j["path"] == "/c/" + std::to_string(c)) {
          ++right;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right.load(), kClients * kRequests);
}

TEST(HttpServerStartTest, PortInUseIsUnavailable) {
  EchoHandler handler;
  // A plain listener without SO_REUSEPORT holds the port.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  HttpServer server({.port = port, .threads = 1}, handler);
  absl::Status status = server.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(status.message()).find("127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << status;
  ::close(fd);
}

}  // namespace
}  // namespace ferry::serve
