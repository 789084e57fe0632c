#include "ferry/serve/http_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "boost/asio.hpp"
#include "boost/beast/http/basic_parser.hpp"
#include "boost/beast/http/error.hpp"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status < 400 ? "OK" : (status < 500 ? "Client Error" : "Server Error");
  }
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

std::chrono::nanoseconds ToChrono(absl::Duration d) {
  return std::chrono::nanoseconds(absl::ToInt64Nanoseconds(d));
}

// The request being parsed, in storage reused across the requests of a connection: Beast's
// callbacks hand out views into the read buffer, which moves on, so strings are copied into
// one arena and addressed by offset until the request is complete.
struct ParsedRequest {
  struct Span {
    uint32_t offset = 0, size = 0;
  };
  std::string arena;
  Span method, target;
  std::vector<std::pair<Span, Span>> fields;
  std::string body;
  std::vector<Header> headers;
  int version = 11;

  Span Add(std::string_view s) {
    Span span{static_cast<uint32_t>(arena.size()), static_cast<uint32_t>(s.size())};
    arena.append(s.data(), s.size());
    return span;
  }
  std::string_view View(Span s) const { return std::string_view(arena).substr(s.offset, s.size); }
  void Clear() {
    arena.clear();
    fields.clear();
    body.clear();
    headers.clear();
  }
};

class RequestParser final : public http::basic_parser<true> {
 public:
  explicit RequestParser(ParsedRequest& out, size_t max_body) : out_(out), max_body_(max_body) {}

 private:
  void on_request_impl(http::verb, boost::beast::string_view method,
                       boost::beast::string_view target, int version, error_code&) override {
    out_.method = out_.Add(std::string_view(method.data(), method.size()));
    out_.target = out_.Add(std::string_view(target.data(), target.size()));
    out_.version = version;
  }
  void on_response_impl(int, boost::beast::string_view, int, error_code&) override {}
  void on_field_impl(http::field, boost::beast::string_view name, boost::beast::string_view value,
                     error_code&) override {
    auto n = out_.Add(std::string_view(name.data(), name.size()));
    auto v = out_.Add(std::string_view(value.data(), value.size()));
    out_.fields.emplace_back(n, v);
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length) out_.body.reserve(std::min<uint64_t>(*length, max_body_));
  }
  size_t on_body_impl(boost::beast::string_view body, error_code&) override {
    out_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, error_code&) override {
    out_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  ParsedRequest& out_;
  size_t max_body_;
};

}  // namespace

std::string_view Request::HeaderValue(std::string_view name) const {
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

void SetJsonError(Response& response, int status, std::string_view code, std::string_view message) {
  response.status = status;
  response.content_type = "application/json";
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  // Replace, not throw, on invalid UTF-8 echoed from a request.
  response.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class Connection;

// One event loop: a thread, its io_context and its own acceptor on the shared port. Everything
// here except the atomics is touched only by the loop's thread.
struct Loop {
  HttpServer::Impl* server = nullptr;
  std::unordered_set<Connection*> connections;
  bool draining = false;
  std::atomic<int64_t>* in_flight = nullptr;  // owned by the server, outlives the loop
  // Declared after `connections`: destroying the io_context destroys pending handlers, whose
  // connections unregister themselves from the set.
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer sweep_timer{io};
  asio::steady_timer accept_retry_timer{io};
  std::thread thread;
};

class HttpServer::Impl {
 public:
  Impl(HttpServerOptions options, Handler& handler)
      : options_(std::move(options)), handler_(handler) {}

  absl::Status Start();
  void Shutdown(absl::Duration grace);
  int port() const { return port_; }
  int64_t in_flight() const {
    int64_t n = 0;
    for (int i = 0; i < counter_count_.load(std::memory_order_acquire); ++i) {
      n += counters_[i].value.load(std::memory_order_relaxed);
    }
    return n;
  }

  const HttpServerOptions& options() const { return options_; }
  Handler& handler() { return handler_; }
  std::chrono::nanoseconds read_timeout() const { return read_timeout_; }
  std::chrono::nanoseconds idle_timeout() const { return idle_timeout_; }

  void ConnectionOpened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() {
    if (open_connections_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        shutting_down_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }

 private:
  void DoAccept(Loop& loop);
  void Sweep(Loop& loop);
  static void Run(Loop& loop);

  HttpServerOptions options_;
  Handler& handler_;
  std::chrono::nanoseconds read_timeout_{}, idle_timeout_{}, sweep_interval_{};
  std::vector<std::unique_ptr<Loop>> loops_;
  // One in-flight counter per loop, each written by its loop only, on its own cache line.
  struct alignas(64) Counter {
    std::atomic<int64_t> value{0};
  };
  static constexpr int kMaxLoops = 256;
  std::unique_ptr<Counter[]> counters_ = std::make_unique<Counter[]>(kMaxLoops);
  std::atomic<int> counter_count_{0};
  int port_ = 0;
  bool running_ = false;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> open_connections_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

namespace {

constexpr size_t kInitialReadBuffer = 8 << 10;
constexpr size_t kMinReadSpace = 2 << 10;
// Answers to pipelined requests are batched into one write up to this size.
constexpr size_t kMaxBatchedWrite = 64 << 10;

}  // namespace

// One client connection. Owned by the shared_ptrs its pending operations hold; registered in
// its loop so that the sweeper and Shutdown can find it. Loop thread only.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Loop& loop, tcp::socket socket)
      : loop_(loop), server_(*loop.server), socket_(std::move(socket)) {
    rbuf_.resize(kInitialReadBuffer);
    loop_.connections.insert(this);
    server_.ConnectionOpened();
  }
  ~Connection() {
    loop_.connections.erase(this);
    server_.ConnectionClosed();
  }

  void Start() { Process(); }

  // Closes the connection if its deadline has passed (idle, slow request, stuck write).
  void Sweep(SteadyClock::time_point now) {
    if (!closed_ && now > deadline_) Close();
  }

  // Shutdown: an idle connection closes now; one with a request being read or answered closes
  // after that answer (which says `Connection: close`).
  void BeginShutdown() {
    if (!parser_ && !writing_ && rpos_ == rend_) Close();
  }

 private:
  void Process() {
    while (!closed_ && !close_after_write_ && rpos_ < rend_ && wbuf_.size() < kMaxBatchedWrite) {
      if (!parser_) {
        request_.Clear();
        parser_.emplace(request_, server_.options().max_body_bytes);
        parser_->header_limit(static_cast<uint32_t>(server_.options().max_header_bytes));
        parser_->body_limit(server_.options().max_body_bytes);
        parser_->eager(true);
        deadline_ = SteadyClock::now() + server_.read_timeout();
      }
      error_code ec;
      size_t used = parser_->put(asio::buffer(rbuf_.data() + rpos_, rend_ - rpos_), ec);
      rpos_ += used;
      if (ec == http::error::need_more) {
        if (used == 0) break;
        continue;
      }
      if (ec) {
        RejectRequest(ec);
        break;
      }
      if (parser_->is_done()) Dispatch();
    }
    if (closed_) return;
    if (!wbuf_.empty()) {
      DoWrite();
    } else if (close_after_write_ || (loop_.draining && !parser_ && rpos_ == rend_)) {
      Close();
    } else {
      DoRead();
    }
  }

  void DoRead() {
    if (rpos_ == rend_) rpos_ = rend_ = 0;
    if (rbuf_.size() - rend_ < kMinReadSpace) {
      if (rpos_ > 0) {
        std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rend_ - rpos_);
        rend_ -= rpos_;
        rpos_ = 0;
      }
      if (rbuf_.size() - rend_ < kMinReadSpace) {
        // Only an unfinished header fills the buffer (bodies are consumed as they arrive); the
        // parser rejects one above the limit, so this stays bounded by the header limit.
        rbuf_.resize(std::max(rbuf_.size() * 2, rend_ + kMinReadSpace));
      }
    }
    if (!parser_) deadline_ = SteadyClock::now() + server_.idle_timeout();
    socket_.async_read_some(
        asio::buffer(rbuf_.data() + rend_, rbuf_.size() - rend_),
        [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const error_code& ec, size_t n) {
    if (closed_) return;
    if (ec) {
      // EOF, reset or an error: nothing to answer (a half-sent request is dropped).
      Close();
      return;
    }
    if (lingering_) {  // discarding what the client still sends after our final answer
      LingerRead();
      return;
    }
    rend_ += n;
    Process();
  }

  void Dispatch() {
    ParsedRequest& r = request_;
    r.headers.clear();
    r.headers.reserve(r.fields.size());
    for (const auto& [name, value] : r.fields) {
      r.headers.push_back(Header{r.View(name), r.View(value)});
    }
    Request request;
    request.method = r.View(r.method);
    request.target = r.View(r.target);
    request.path = request.target.substr(0, request.target.find('?'));
    request.body = r.body;
    request.headers = r.headers;
    const bool keep_alive = parser_->keep_alive() && !loop_.draining;
    const int version = r.version;
    parser_.reset();

    response_.status = 200;
    response_.content_type.assign("application/json");
    response_.body.clear();
    response_.headers.clear();
    std::atomic<int64_t>& in_flight = *loop_.in_flight;
    in_flight.store(in_flight.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    server_.handler().Handle(request, response_);
    in_flight.store(in_flight.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);

    AppendResponse(response_, request.method == "HEAD", keep_alive, version);
    if (!keep_alive) close_after_write_ = true;
    // The next request's idle deadline starts now (DoRead sets it if none is buffered).
  }

  void RejectRequest(const error_code& ec) {
    Response error;
    if (ec == http::error::header_limit) {
      SetJsonError(error, 431, "request_header_fields_too_large",
                   fmt::format("the request's header is larger than the server's limit of {} "
                               "bytes; send fewer or shorter headers",
                               server_.options().max_header_bytes));
    } else if (ec == http::error::body_limit) {
      SetJsonError(error, 413, "payload_too_large",
                   fmt::format("the request body is larger than the server's limit of {} bytes; "
                               "split the batch into smaller requests",
                               server_.options().max_body_bytes));
    } else {
      SetJsonError(error, 400, "bad_request",
                   fmt::format("malformed HTTP request: {}", ec.message()));
    }
    parser_.reset();
    AppendResponse(error, false, false, 11);
    close_after_write_ = true;
  }

  void AppendResponse(const Response& r, bool head, bool keep_alive, int version) {
    std::string& w = wbuf_;
    w.append("HTTP/1.1 ");
    AppendInt(w, r.status);
    w.push_back(' ');
    w.append(ReasonPhrase(r.status));
    w.append("\r\nContent-Type: ");
    w.append(r.content_type);
    w.append("\r\nContent-Length: ");
    AppendInt(w, static_cast<int64_t>(r.body.size()));
    w.append("\r\n");
    for (const auto& [name, value] : r.headers) {
      w.append(name);
      w.append(": ");
      w.append(value);
      w.append("\r\n");
    }
    if (!keep_alive) {
      w.append("Connection: close\r\n");
    } else if (version < 11) {
      w.append("Connection: keep-alive\r\n");
    }
    w.append("\r\n");
    if (!head) w.append(r.body);
  }

  void DoWrite() {
    writing_ = true;
    deadline_ = SteadyClock::now() + server_.read_timeout();
    asio::async_write(
        socket_, asio::buffer(wbuf_),
        [self = shared_from_this()](const error_code& ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(const error_code& ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      Close();
      return;
    }
    wbuf_.clear();
    if (close_after_write_) {
      Linger();
      return;
    }
    Process();
  }

  // After a final answer: send FIN, then read and discard until the client closes (bounded by
  // the read timeout), so that unread request bytes do not make the kernel reset the
  // connection before the client has read the answer.
  void Linger() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    lingering_ = true;
    parser_.reset();
    rpos_ = rend_ = 0;
    deadline_ = SteadyClock::now() +
                std::min<std::chrono::nanoseconds>(server_.read_timeout(), std::chrono::seconds(2));
    LingerRead();
  }

  void LingerRead() {
    socket_.async_read_some(
        asio::buffer(rbuf_.data(), rbuf_.size()),
        [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    socket_.close(ignored);
  }

  Loop& loop_;
  HttpServer::Impl& server_;
  tcp::socket socket_;
  std::vector<char> rbuf_;
  size_t rpos_ = 0, rend_ = 0;           // unparsed bytes are rbuf_[rpos_, rend_)
  std::optional<RequestParser> parser_;  // engaged while a request is being read
  ParsedRequest request_;
  Response response_;
  std::string wbuf_;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  bool writing_ = false;
  bool close_after_write_ = false;
  bool lingering_ = false;
  bool closed_ = false;
};

absl::Status HttpServer::Impl::Start() {
  if (running_) return absl::FailedPreconditionError("HttpServer::Start called twice");
  read_timeout_ = ToChrono(options_.read_timeout);
  idle_timeout_ = ToChrono(options_.idle_timeout);
  sweep_interval_ =
      std::clamp<std::chrono::nanoseconds>(std::min(read_timeout_, idle_timeout_) / 4,
                                           std::chrono::milliseconds(5), std::chrono::seconds(1));
  int threads = options_.threads > 0 ? options_.threads
                                     : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, kMaxLoops);

  auto unavailable = [&](int port, const std::string& why) {
    return absl::UnavailableError(fmt::format(
        "cannot listen on {}:{}: {}; choose another port or stop the process that uses it",
        options_.host, port, why));
  };
  error_code ec;
  asio::ip::address address = asio::ip::make_address(options_.host, ec);
  if (ec) {
    asio::io_context io;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(options_.host, "", ec);
    if (ec || results.empty()) {
      return unavailable(options_.port, fmt::format("cannot resolve host: {}", ec.message()));
    }
    address = results.begin()->endpoint().address();
  }

  port_ = options_.port;
  std::vector<std::unique_ptr<Loop>> loops;
  for (int i = 0; i < threads; ++i) {
    auto loop = std::make_unique<Loop>();
    loop->server = this;
    loop->in_flight = &counters_[i].value;
    tcp::acceptor& acceptor = loop->acceptor;
    tcp::endpoint endpoint(address, static_cast<unsigned short>(port_));
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return unavailable(port_, ec.message());
    if (port_ == 0) port_ = acceptor.local_endpoint().port();
    loops.push_back(std::move(loop));
  }
  loops_ = std::move(loops);
  counter_count_.store(threads, std::memory_order_release);
  shutting_down_ = false;
  running_ = true;
  for (auto& loop : loops_) {
    DoAccept(*loop);
    Sweep(*loop);
    loop->thread = std::thread([l = loop.get()] { Run(*l); });
  }
  return absl::OkStatus();
}

void HttpServer::Impl::Run(Loop& loop) {
  // Handlers report errors through error codes; this catches what still escapes (allocation
  // failure) so that one bad request never takes the loop down.
  for (;;) {
    try {
      loop.io.run();
      return;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ferry serve: event loop caught an exception: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "ferry serve: event loop caught an unknown exception\n");
    }
  }
}

void HttpServer::Impl::DoAccept(Loop& loop) {
  loop.acceptor.async_accept([this, &loop](const error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !loop.acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or similar: retry shortly instead of spinning.
      loop.accept_retry_timer.expires_after(std::chrono::milliseconds(50));
      loop.accept_retry_timer.async_wait([this, &loop](const error_code& e) {
        if (!e) DoAccept(loop);
      });
      return;
    }
    if (loop.draining) return;  // socket closes as it goes out of scope
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<Connection>(loop, std::move(socket))->Start();
    DoAccept(loop);
  });
}

void HttpServer::Impl::Sweep(Loop& loop) {
  loop.sweep_timer.expires_after(sweep_interval_);
  loop.sweep_timer.async_wait([this, &loop](const error_code& ec) {
    if (ec) return;
    auto now = SteadyClock::now();
    // Sweep may close connections, which only unregister when their handlers finish later.
    for (Connection* c : loop.connections) c->Sweep(now);
    Sweep(loop);
  });
}

void HttpServer::Impl::Shutdown(absl::Duration grace) {
  if (!running_) return;
  running_ = false;
  shutting_down_.store(true, std::memory_order_release);
  for (auto& loop : loops_) {
    asio::post(loop->io, [l = loop.get()] {
      l->draining = true;
      error_code ignored;
      l->acceptor.close(ignored);
      // BeginShutdown may close; closed connections unregister later, from their handlers.
      std::vector<Connection*> connections(l->connections.begin(), l->connections.end());
      for (Connection* c : connections) c->BeginShutdown();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, ToChrono(std::max(grace, absl::ZeroDuration())),
                 [this] { return open_connections_.load(std::memory_order_acquire) == 0; });
  }
  for (auto& loop : loops_) loop->io.stop();
  for (auto& loop : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
  }
  loops_.clear();  // closes what is left
}

HttpServer::HttpServer(HttpServerOptions options, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() { impl_->Shutdown(absl::ZeroDuration()); }

absl::Status HttpServer::Start() { return impl_->Start(); }
int HttpServer::port() const { return impl_->port(); }
void HttpServer::Shutdown(absl::Duration grace) { impl_->Shutdown(grace); }
int64_t HttpServer::in_flight() const { return impl_->in_flight(); }

}  // namespace ferry::serve
