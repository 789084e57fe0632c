#include "ferry/serve/worker_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "ferry/common/status.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

extern char** environ;

namespace ferry::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

// How often the supervisor looks at its workers (deaths, starts, scaling); pings follow
// health_every.
constexpr auto kTick = std::chrono::milliseconds(50);
// A worker that stays up this long gets its slot's restart backoff reset.
constexpr absl::Duration kStableUptime = absl::Seconds(30);
// SIGTERM, then SIGKILL after this.
constexpr absl::Duration kStopGrace = absl::Seconds(5);
constexpr size_t kStderrTailLines = 20;
constexpr size_t kMaxFreeConnectionsPerWorker = 32;
constexpr uint64_t kMaxResponseBytes = uint64_t{1} << 30;

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                       strsignal(WTERMSIG(status)));
  }
  return fmt::format("stopped (wait status {})", status);
}

// The Python server's access-log line of a 2xx answer (`127.0.0.1 - - [date] "GET /ping
// HTTP/1.1" 200 -`): ferry's own health checks and served requests, which ferry's metrics count.
// Not forwarded, so that a worker's log and stderr tail hold what went wrong.
bool IsSuccessAccessLine(const std::string& line) {
  if (line.rfind("127.0.0.1 - - [", 0) != 0) return false;
  size_t q = line.rfind("\" ");
  return q != std::string::npos && q + 2 < line.size() && line[q + 2] == '2';
}

// One keep-alive HTTP connection to a worker. Synchronous use by one thread at a time: each
// exchange queues an asynchronous operation (so that the stream's expiry bounds it) and runs the
// connection's own io_context until it completes.
struct Connection {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
};

void RunPending(Connection& c) {
  c.ioc.restart();
  c.ioc.run();
}

enum class Outcome { kAnswered, kConnectionFailed, kTimedOut };

struct Exchange {
  Outcome outcome = Outcome::kConnectionFailed;
  int status = 0;
  std::string body;
  bool keep_alive = false;
  std::string error;  // what failed, for kConnectionFailed and kTimedOut
};

absl::StatusOr<std::unique_ptr<Connection>> Connect(int port, absl::Duration timeout) {
  auto c = std::make_unique<Connection>();
  beast::error_code ec;
  c->stream.expires_after(absl::ToChronoMilliseconds(timeout));
  c->stream.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port),
                          [&ec](beast::error_code e) { ec = e; });
  RunPending(*c);
  if (ec) {
    return absl::UnavailableError(
        fmt::format("cannot connect to 127.0.0.1:{}: {}", port,
                    ec == beast::error::timeout ? std::string("timed out") : ec.message()));
  }
  c->stream.socket().set_option(tcp::no_delay(true), ec);  // small JSON bodies: no Nagle delay
  return c;
}

Exchange RoundTrip(Connection& c, http::verb verb, const char* target, std::string body,
                   absl::Duration timeout) {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.keep_alive(true);
  if (verb == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  beast::error_code ec;
  c.stream.expires_after(absl::ToChronoMilliseconds(timeout));
  http::async_write(c.stream, req, [&](beast::error_code e, std::size_t) {
    ec = e;
    if (e) return;
    http::async_read(c.stream, c.buffer, parser,
                     [&ec](beast::error_code e2, std::size_t) { ec = e2; });
  });
  RunPending(c);
  Exchange x;
  if (ec) {
    x.outcome = ec == beast::error::timeout ? Outcome::kTimedOut : Outcome::kConnectionFailed;
    x.error = ec.message();
    return x;
  }
  c.stream.expires_never();
  x.outcome = Outcome::kAnswered;
  x.status = static_cast<int>(parser.get().result_int());
  x.keep_alive = parser.get().keep_alive();
  x.body = std::move(parser.get().body());
  return x;
}

}  // namespace

// One worker process (one incarnation of a slot). Shared by the slot and by the requests in
// flight to it; the process and reader fields belong to the supervisor.
struct Worker {
  int slot = 0;
  pid_t pid = 0;
  absl::Time started;
  std::atomic<int> port{0};
  std::atomic<bool> ready{false};
  std::atomic<bool> dead{false};  // killed or found dead: no new requests
  std::atomic<int> outstanding{0};
  int failed_pings = 0;   // supervisor only
  bool reaped = false;    // supervisor only (the destructor after the supervisor stopped)
  std::string death;      // why it was killed, when the pool killed it
  absl::Time kill_after;  // retiring workers: SIGKILL from then on

  int out_fd = -1, err_fd = -1;
  std::thread reader;
  std::atomic<bool> stop_reading{false};

  std::mutex mu;
  std::vector<std::unique_ptr<Connection>> free;  // idle keep-alive connections
  std::deque<std::string> stderr_tail;

  ~Worker() {
    stop_reading = true;
    if (reader.joinable()) reader.join();
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
  }

  std::string StderrTail() {
    std::lock_guard<std::mutex> l(mu);
    std::string out;
    for (const std::string& line : stderr_tail) out += "  " + line + "\n";
    return out.empty() ? "  (nothing)\n" : out;
  }

  void DropConnections() {
    std::vector<std::unique_ptr<Connection>> drop;
    std::lock_guard<std::mutex> l(mu);
    drop.swap(free);
  }
};

struct WorkerPool::Impl {
  struct Slot {
    std::shared_ptr<Worker> worker;  // null while the slot waits out its backoff
    int restarts = 0;
    bool ever_ready = false;
    bool counted_start_failure = false;
    absl::Duration backoff;
    absl::Time restart_at;
  };

  WorkerPoolOptions o;
  std::string line;                 // what /bin/sh runs
  std::vector<std::string> env_kv;  // KEY=VALUE, ferry's environment with o.env on top

  mutable std::mutex mu;
  std::condition_variable wake_cv;   // the supervisor's
  std::condition_variable state_cv;  // Start's: a worker became ready, or failed to start
  bool stopping = false;
  bool wake = false;
  std::vector<Slot> slots;
  std::vector<std::shared_ptr<Worker>> retiring;  // SIGTERMed when scaling down, to be reaped
  int start_failures = 0;
  std::string first_failure;
  size_t next_pick = 0;
  std::atomic<int> in_flight{0};
  int peak_in_flight = 0;  // since window_start
  absl::Time window_start;
  absl::Time next_health;
  std::thread supervisor;

  void Wake() {
    {
      std::lock_guard<std::mutex> l(mu);
      wake = true;
    }
    wake_cv.notify_all();
  }

  // --- processes ---

  absl::StatusOr<std::shared_ptr<Worker>> Spawn(int slot) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      return absl::InternalError(fmt::format("cannot make a pipe: {}", std::strerror(errno)));
    }
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return absl::InternalError(fmt::format("cannot make a pipe: {}", std::strerror(errno)));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // no connection or pipe of ours leaks
    posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group (killed as one), no signal blocked or ignored that ferry blocks or
    // ignores (a serve process may block SIGTERM to wait for it).
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT}) sigaddset(&defaults, s);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string sh = "/bin/sh", dash_c = "-c";
    std::string cmd = line;
    std::vector<char*> argv = {sh.data(), dash_c.data(), cmd.data(), nullptr};
    std::vector<char*> envp;
    for (std::string& kv : env_kv) envp.push_back(kv.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, sh.c_str(), &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) {
      ::close(out[0]);
      ::close(err[0]);
      return absl::FailedPreconditionError(
          fmt::format("cannot start `{}` in {}: {} (is the project folder there?)", line, o.cwd,
                      std::strerror(rc)));
    }
    auto w = std::make_shared<Worker>();
    w->slot = slot;
    w->pid = pid;
    w->started = absl::Now();
    w->out_fd = out[0];
    w->err_fd = err[0];
    ::fcntl(w->out_fd, F_SETFL, ::fcntl(w->out_fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(w->err_fd, F_SETFL, ::fcntl(w->err_fd, F_GETFL) | O_NONBLOCK);
    w->reader = std::thread([this, raw = w.get()] { ReadOutput(*raw); });
    spdlog::info("worker slot {}: started pid {}: {}", slot, pid, line);
    return w;
  }

  // The worker's stdout and stderr, line by line, to ferry's stderr: the port from "listening on
  // HOST:PORT", the last lines of stderr kept for error messages. Ends at EOF of both, or once
  // stop_reading is set (after the process was reaped) and nothing more is buffered.
  void ReadOutput(Worker& w) {
    std::string partial[2];
    int fds[2] = {w.out_fd, w.err_fd};
    bool open[2] = {true, true};
    char buf[4096];
    auto emit = [&](int which, const std::string& text) {
      if (IsSuccessAccessLine(text)) return;
      std::string out = fmt::format("[worker {}] {}\n", w.pid, text);
      std::fwrite(out.data(), 1, out.size(), stderr);
      if (which == 0 && w.port.load() == 0 && text.rfind("listening on ", 0) == 0) {
        size_t colon = text.rfind(':');
        int port = colon == std::string::npos ? 0 : std::atoi(text.c_str() + colon + 1);
        if (port > 0 && port < 65536) {
          w.port = port;
          wake_cv.notify_all();  // without mu: the supervisor ticks anyway
        }
      }
      if (which == 1) {
        std::lock_guard<std::mutex> l(w.mu);
        w.stderr_tail.push_back(text);
        if (w.stderr_tail.size() > kStderrTailLines) w.stderr_tail.pop_front();
      }
    };
    while (open[0] || open[1]) {
      pollfd p[2];
      int n = 0;
      int index[2];
      for (int i = 0; i < 2; ++i) {
        if (open[i]) {
          p[n] = {fds[i], POLLIN, 0};
          index[n++] = i;
        }
      }
      int r = ::poll(p, n, 100);
      if (r < 0 && errno != EINTR) break;
      bool got = false;
      for (int k = 0; k < n && r > 0; ++k) {
        if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        int i = index[k];
        ssize_t len = ::read(fds[i], buf, sizeof buf);
        if (len > 0) {
          got = true;
          partial[i].append(buf, static_cast<size_t>(len));
          size_t nl;
          while ((nl = partial[i].find('\n')) != std::string::npos) {
            emit(i, partial[i].substr(0, nl));
            partial[i].erase(0, nl + 1);
          }
        } else if (len == 0 || (errno != EAGAIN && errno != EINTR)) {
          open[i] = false;
        }
      }
      if (!got && w.stop_reading.load()) break;
    }
    for (int i = 0; i < 2; ++i) {
      if (!partial[i].empty()) emit(i, partial[i]);
    }
  }

  // Marks `w` dead and kills its process group; the supervisor reaps and restarts it.
  void Kill(const std::shared_ptr<Worker>& w, const std::string& why) {
    if (w->dead.exchange(true)) return;
    w->ready = false;
    {
      std::lock_guard<std::mutex> l(mu);
      w->death = why;
    }
    w->DropConnections();
    ::kill(-w->pid, SIGKILL);
    spdlog::warn("worker slot {}: killed pid {}: {}", w->slot, w->pid, why);
    Wake();
  }

  // --- requests ---

  std::unique_ptr<Connection> TakeConnection(Worker& w) {
    std::lock_guard<std::mutex> l(w.mu);
    if (w.free.empty()) return nullptr;
    std::unique_ptr<Connection> c = std::move(w.free.back());
    w.free.pop_back();
    return c;
  }

  void GiveBack(Worker& w, std::unique_ptr<Connection> c) {
    std::lock_guard<std::mutex> l(w.mu);  // Kill sets `dead` before it drops the free list
    if (!w.dead.load() && w.free.size() < kMaxFreeConnectionsPerWorker)
      w.free.push_back(std::move(c));
  }

  // One exchange with `w` over a pooled connection, or a fresh one when there is none or the
  // pooled one turns out to be closed.
  Exchange Send(Worker& w, http::verb verb, const char* target, const std::string& body,
                absl::Duration timeout) {
    Exchange x;
    std::unique_ptr<Connection> c = TakeConnection(w);
    if (c != nullptr) {
      x = RoundTrip(*c, verb, target, body, timeout);
      if (x.outcome != Outcome::kConnectionFailed) {
        if (x.outcome == Outcome::kAnswered && x.keep_alive) GiveBack(w, std::move(c));
        return x;
      }
      c.reset();  // stale (the worker closed it while idle): one fresh connection
    }
    absl::StatusOr<std::unique_ptr<Connection>> fresh = Connect(w.port.load(), timeout);
    if (!fresh.ok()) {
      x.outcome = Outcome::kConnectionFailed;
      x.error = std::string(fresh.status().message());
      return x;
    }
    x = RoundTrip(**fresh, verb, target, body, timeout);
    if (x.outcome == Outcome::kAnswered && x.keep_alive) GiveBack(w, std::move(*fresh));
    return x;
  }

  absl::Duration PingTimeout() const { return std::min(o.request_timeout, absl::Seconds(2)); }

  bool Ping(Worker& w) {
    Exchange x = Send(w, http::verb::get, "/ping", "", PingTimeout());
    return x.outcome == Outcome::kAnswered && x.status == 200;
  }

  // The ready worker with the fewest requests in flight (ties: round robin), its count taken.
  std::shared_ptr<Worker> Pick(const Worker* exclude) {
    std::lock_guard<std::mutex> l(mu);
    std::shared_ptr<Worker> best;
    const size_t n = slots.size();
    const size_t first = n == 0 ? 0 : next_pick++ % n;
    for (size_t k = 0; k < n; ++k) {
      const std::shared_ptr<Worker>& w = slots[(first + k) % n].worker;
      if (w == nullptr || !w->ready.load() || w->dead.load() || w.get() == exclude) continue;
      if (best == nullptr || w->outstanding.load() < best->outstanding.load()) best = w;
    }
    if (best == nullptr) return nullptr;
    int now_out = ++best->outstanding;
    peak_in_flight = std::max(peak_in_flight, ++in_flight);
    if (now_out >= o.max_outstanding_per_worker && static_cast<int>(n) < o.max_workers) {
      wake = true;  // every worker is that busy (this one had the fewest): scale up now
      wake_cv.notify_all();
    }
    return best;
  }

  std::string NotReadyMessage() {
    std::lock_guard<std::mutex> l(mu);
    int live = 0;
    for (const Slot& s : slots) live += s.worker != nullptr && !s.worker->dead.load();
    return fmt::format(
        "no worker of the model is ready ({} of {} starting, the others restarting after a "
        "failure; see the worker lines in the server's log); retry shortly",
        live, slots.size());
  }

  // --- supervisor ---

  void Supervise() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      wake_cv.wait_for(lock, kTick, [this] { return stopping || wake; });
      if (stopping) break;
      wake = false;
      lock.unlock();
      Tick();
      lock.lock();
    }
  }

  void Tick() {
    const absl::Time now = absl::Now();
    ReapExited(now);
    CheckStarting(now);
    if (now >= next_health) {
      next_health = now + o.health_every;
      CheckHealth();
    }
    RestartDue(now);
    Scale(now);
  }

  // Deaths: slots start their backoff; retiring workers past their grace get SIGKILL.
  void ReapExited(absl::Time now) {
    std::vector<std::pair<std::shared_ptr<Worker>, int>> exited;
    {
      std::lock_guard<std::mutex> l(mu);
      for (Slot& s : slots) {
        if (s.worker == nullptr) continue;
        int status = 0;
        if (::waitpid(s.worker->pid, &status, WNOHANG) != s.worker->pid) continue;
        s.worker->reaped = true;
        s.worker->ready = false;
        s.worker->dead = true;
        if (now - s.worker->started >= kStableUptime) s.backoff = o.backoff_initial;
        s.restart_at = now + s.backoff;
        s.backoff = std::min(s.backoff * 2, o.backoff_max);
        exited.emplace_back(std::move(s.worker), status);
        s.worker = nullptr;
      }
      for (auto it = retiring.begin(); it != retiring.end();) {
        int status = 0;
        if (::waitpid((*it)->pid, &status, WNOHANG) == (*it)->pid) {
          (*it)->reaped = true;
          exited.emplace_back(std::move(*it), -1);
          it = retiring.erase(it);
          continue;
        }
        if (now >= (*it)->kill_after) ::kill(-(*it)->pid, SIGKILL);
        ++it;
      }
    }
    for (auto& [w, status] : exited) {
      w->stop_reading = true;
      if (w->reader.joinable()) w->reader.join();  // the last lines are in the tail now
      w->DropConnections();
      if (status == -1) {
        spdlog::info("worker slot {}: pid {} stopped (scaled down)", w->slot, w->pid);
        continue;
      }
      std::string tail = w->StderrTail();
      std::string why;
      {
        std::lock_guard<std::mutex> l(mu);
        why = w->death.empty() ? DescribeExit(status) : w->death;
        Slot* s = w->slot < static_cast<int>(slots.size()) ? &slots[w->slot] : nullptr;
        if (s != nullptr && !s->ever_ready && !s->counted_start_failure) {
          s->counted_start_failure = true;
          ++start_failures;
          if (first_failure.empty()) {
            first_failure = fmt::format(
                "the model's worker `{}` (in {}) {} before it was ready; its stderr ends with:\n{}",
                line, o.cwd, why, tail);
          }
        }
      }
      state_cv.notify_all();
      spdlog::warn("worker slot {}: pid {} {}; restarting with backoff. Its stderr ends with:\n{}",
                   w->slot, w->pid, why, tail);
    }
  }

  std::vector<std::shared_ptr<Worker>> LiveWorkers() {
    std::vector<std::shared_ptr<Worker>> out;
    std::lock_guard<std::mutex> l(mu);
    for (const Slot& s : slots) {
      if (s.worker != nullptr && !s.worker->dead.load()) out.push_back(s.worker);
    }
    return out;
  }

  // Workers that said where they listen get pinged until the first 200 (then they are ready);
  // those not ready within start_timeout are killed.
  void CheckStarting(absl::Time now) {
    for (const std::shared_ptr<Worker>& w : LiveWorkers()) {
      if (w->ready.load()) continue;
      if (w->port.load() > 0 && Ping(*w)) {
        w->ready = true;
        {
          std::lock_guard<std::mutex> l(mu);
          slots[w->slot].ever_ready = true;
        }
        state_cv.notify_all();
        spdlog::info("worker slot {}: pid {} ready on 127.0.0.1:{}", w->slot, w->pid,
                     w->port.load());
      } else if (now - w->started > o.start_timeout) {
        Kill(w, fmt::format("not ready within {} (start_timeout): no \"listening on\" line and "
                            "200 from GET /ping",
                            absl::FormatDuration(o.start_timeout)));
      }
    }
  }

  void CheckHealth() {
    for (const std::shared_ptr<Worker>& w : LiveWorkers()) {
      if (!w->ready.load()) continue;
      if (Ping(*w)) {
        w->failed_pings = 0;
      } else if (++w->failed_pings >= 2) {
        Kill(w, "GET /ping failed twice in a row");
      }
    }
  }

  void RestartDue(absl::Time now) {
    std::lock_guard<std::mutex> l(mu);
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      if (s.worker != nullptr || now < s.restart_at) continue;
      ++s.restarts;
      absl::StatusOr<std::shared_ptr<Worker>> w = Spawn(static_cast<int>(i));
      if (w.ok()) {
        s.worker = std::move(*w);
        continue;
      }
      spdlog::error("worker slot {}: {}", i, w.status().message());
      s.restart_at = now + s.backoff;
      s.backoff = std::min(s.backoff * 2, o.backoff_max);
    }
  }

  // Up by one when every ready worker is at max_outstanding_per_worker and none is starting;
  // down to what the window's peak needed (not below min) after idle_scale_down.
  void Scale(absl::Time now) {
    std::lock_guard<std::mutex> l(mu);
    const int n = static_cast<int>(slots.size());
    bool all_busy = true, any_ready = false, starting = false;
    for (const Slot& s : slots) {
      const Worker* w = s.worker.get();
      if (w == nullptr || w->dead.load()) continue;
      if (!w->ready.load()) {
        starting = true;
        continue;
      }
      any_ready = true;
      if (w->outstanding.load() < o.max_outstanding_per_worker) all_busy = false;
    }
    peak_in_flight = std::max(peak_in_flight, in_flight.load());
    if (any_ready && all_busy && !starting && n < o.max_workers) {
      absl::StatusOr<std::shared_ptr<Worker>> w = Spawn(n);
      if (w.ok()) {
        Slot s{.worker = std::move(*w), .backoff = o.backoff_initial};
        slots.push_back(std::move(s));
        spdlog::info("scaled up to {} workers ({} requests in flight)", n + 1, in_flight.load());
      } else {
        spdlog::error("cannot scale up: {}", w.status().message());
      }
      window_start = now;
      return;
    }
    if (now - window_start < o.idle_scale_down) return;
    const int per = std::max(1, o.max_outstanding_per_worker);
    const int target = std::max(o.min_workers, (peak_in_flight + per - 1) / per);
    window_start = now;
    peak_in_flight = in_flight.load();
    if (target >= n) return;
    for (int i = n - 1; i >= target; --i) {
      std::shared_ptr<Worker> w = std::move(slots[i].worker);
      slots.pop_back();
      if (w == nullptr) continue;
      w->ready = false;
      w->dead = true;  // no new requests; those in flight finish (SIGTERM lets the server drain)
      w->DropConnections();
      w->kill_after = now + kStopGrace;
      ::kill(-w->pid, SIGTERM);
      retiring.push_back(std::move(w));
    }
    spdlog::info("scaled down to {} workers (at most {} requests in flight for {})", target,
                 peak_in_flight, absl::FormatDuration(o.idle_scale_down));
  }

  // Stops the supervisor, then every worker: SIGTERM to its group, SIGKILL after kStopGrace.
  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu);
      stopping = true;
    }
    wake_cv.notify_all();
    if (supervisor.joinable()) supervisor.join();
    std::vector<std::shared_ptr<Worker>> all = std::move(retiring);
    for (Slot& s : slots) {
      if (s.worker != nullptr) all.push_back(std::move(s.worker));
    }
    slots.clear();
    for (const std::shared_ptr<Worker>& w : all) {
      w->ready = false;
      w->dead = true;
      w->DropConnections();
      if (!w->reaped) ::kill(-w->pid, SIGTERM);
    }
    const absl::Time deadline = absl::Now() + kStopGrace;
    while (true) {
      bool left = false;
      for (const std::shared_ptr<Worker>& w : all) {
        if (w->reaped) continue;
        int status = 0;
        if (::waitpid(w->pid, &status, WNOHANG) == w->pid) {
          w->reaped = true;
        } else {
          left = true;
        }
      }
      if (!left) break;
      if (absl::Now() >= deadline) {
        for (const std::shared_ptr<Worker>& w : all) {
          if (w->reaped) continue;
          spdlog::warn("worker pid {} still running {} after SIGTERM: SIGKILL", w->pid,
                       absl::FormatDuration(kStopGrace));
          ::kill(-w->pid, SIGKILL);
          int status = 0;
          while (::waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
          }
          w->reaped = true;
        }
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (const std::shared_ptr<Worker>& w : all) {
      w->stop_reading = true;
      if (w->reader.joinable()) w->reader.join();
    }
  }
};

WorkerPool::WorkerPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkerPool::~WorkerPool() { impl_->Stop(); }

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Start(WorkerPoolOptions o) {
  if (o.command.empty()) {
    return absl::InvalidArgumentError(
        "a worker pool needs the model's command (model.json \"command\")");
  }
  if (o.min_workers < 1 || o.max_workers < o.min_workers) {
    return absl::InvalidArgumentError(fmt::format(
        "worker counts must satisfy 1 <= min ({}) <= max ({})", o.min_workers, o.max_workers));
  }
  if (o.max_outstanding_per_worker < 1) {
    return absl::InvalidArgumentError(fmt::format(
        "max_outstanding_per_worker must be at least 1, got {}", o.max_outstanding_per_worker));
  }
  if (o.cwd.empty()) o.cwd = ".";
  auto impl = std::make_unique<Impl>();
  impl->line = fmt::format("exec {} serve --model-dir {} --host 127.0.0.1 --port 0", o.command,
                           Quote(o.model_dir));
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) vars[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : o.env) vars[k] = v;
  for (const auto& [k, v] : vars) impl->env_kv.push_back(k + "=" + v);
  impl->o = std::move(o);
  Impl& p = *impl;
  const absl::Time now = absl::Now();
  p.window_start = now;
  p.next_health = now + p.o.health_every;
  std::unique_ptr<WorkerPool> pool(new WorkerPool(std::move(impl)));  // stops what starts
  for (int i = 0; i < p.o.min_workers; ++i) {
    FERRY_ASSIGN_OR_RETURN(std::shared_ptr<Worker> w, p.Spawn(i));
    std::lock_guard<std::mutex> l(p.mu);
    p.slots.push_back({.worker = std::move(w), .backoff = p.o.backoff_initial});
  }
  p.supervisor = std::thread([&p] { p.Supervise(); });

  const auto deadline = std::chrono::steady_clock::now() +
                        absl::ToChronoMilliseconds(p.o.start_timeout + absl::Seconds(1));
  std::unique_lock<std::mutex> lock(p.mu);
  const int started = static_cast<int>(p.slots.size());
  bool ok = p.state_cv.wait_until(lock, deadline, [&] {
    for (const Impl::Slot& s : p.slots) {
      if (s.ever_ready) return true;
    }
    return p.start_failures >= started;
  });
  bool any_ready = false;
  for (const Impl::Slot& s : p.slots) any_ready = any_ready || s.ever_ready;
  if (any_ready) return pool;
  const std::string failure = p.first_failure;
  const std::string timeout = fmt::format(
      "no worker of `{}` (in {}) was ready within {} (start_timeout): it must print \"listening "
      "on HOST:PORT\" and answer GET /ping with 200",
      p.line, p.o.cwd, absl::FormatDuration(p.o.start_timeout));
  lock.unlock();
  pool.reset();  // stops the workers; `p` is gone
  if (!ok || failure.empty()) return absl::DeadlineExceededError(timeout);
  return absl::FailedPreconditionError(failure);
}

absl::StatusOr<json> WorkerPool::Predict(const json& rows) {
  Impl& p = *impl_;
  const std::string body =
      json{{"instances", rows}}.dump(-1, ' ', false, json::error_handler_t::replace);
  std::shared_ptr<Worker> failed;
  std::string failure;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<Worker> w = p.Pick(failed.get());
    if (w == nullptr) {
      if (failed == nullptr) return absl::UnavailableError(p.NotReadyMessage());
      return absl::UnavailableError(fmt::format(
          "the model's worker (pid {}) failed ({}) and no other worker is ready; retry shortly",
          failed->pid, failure));
    }
    Exchange x = p.Send(*w, http::verb::post, "/invocations", body, p.o.request_timeout);
    --w->outstanding;
    --p.in_flight;
    if (x.outcome == Outcome::kConnectionFailed) {
      failure = x.error;
      p.Kill(w, fmt::format("POST /invocations failed: {}", x.error));
      failed = std::move(w);
      continue;
    }
    if (x.outcome == Outcome::kTimedOut) {
      return absl::DeadlineExceededError(
          fmt::format("the model's worker (pid {}) did not answer within {} (request_timeout)",
                      w->pid, absl::FormatDuration(p.o.request_timeout)));
    }
    json doc = json::parse(x.body, nullptr, /*allow_exceptions=*/false);
    if (x.status == 200) {
      if (!doc.is_object() || !doc.contains("predictions") || !doc["predictions"].is_array()) {
        return absl::InternalError(
            fmt::format("the model's worker (pid {}) answered 200 without a \"predictions\" "
                        "array: {:.200}",
                        w->pid, x.body));
      }
      if (rows.is_array() && doc["predictions"].size() != rows.size()) {
        return absl::InternalError(
            fmt::format("the model's worker (pid {}) answered {} predictions for {} rows", w->pid,
                        doc["predictions"].size(), rows.size()));
      }
      return std::move(doc["predictions"]);
    }
    std::string message = fmt::format("{:.500}", x.body), code;
    if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
      const json& e = doc["error"];
      if (e.contains("message") && e["message"].is_string()) message = e["message"];
      if (e.contains("code") && e["code"].is_string()) code = e["code"];
    }
    const std::string what = fmt::format("{} (the model's worker answered {}{})", message, x.status,
                                         code.empty() ? std::string() : " " + code);
    if (x.status >= 400 && x.status < 500) return absl::InvalidArgumentError(what);
    return absl::InternalError(what);
  }
  return absl::UnavailableError(
      fmt::format("the model's workers failed twice ({}); retry shortly", failure));
}

bool WorkerPool::Ready() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const Impl::Slot& s : impl_->slots) {
    if (s.worker != nullptr && s.worker->ready.load() && !s.worker->dead.load()) return true;
  }
  return false;
}

std::vector<WorkerPool::WorkerInfo> WorkerPool::Workers() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  std::vector<WorkerInfo> out;
  for (const Impl::Slot& s : impl_->slots) {
    WorkerInfo info{.restarts = s.restarts};
    if (s.worker != nullptr) {
      info.pid = s.worker->pid;
      info.port = s.worker->port.load();
      info.ready = s.worker->ready.load() && !s.worker->dead.load();
      info.outstanding = s.worker->outstanding.load();
    }
    out.push_back(info);
  }
  return out;
}

}  // namespace ferry::serve
