#include "ferry/serve/serve_process.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <memory>

#include "ferry/common/status.h"
#include "ferry/serve/auth.h"
#include "ferry/serve/metrics.h"
#include "ferry/serve/router.h"
#include "ferry/serve/service.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace ferry::serve {
namespace {

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

std::string Describe(const EndpointSnapshot& snap) {
  std::string out;
  for (const HostedVariant& v : snap.variants) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}={}:{} {}", v.config.name, v.config.model, v.config.version,
                       v.config.mode == "shadow" ? "shadow" : fmt::format("{}%", v.config.weight));
  }
  return out.empty() ? "no variants" : out;
}

}  // namespace

absl::Status RunServe(const ServeOptions& options, state::StateStore& store,
                      storage::ArtifactStore& lake, const Clock& clock) {
  FERRY_ASSIGN_OR_RETURN(state::EndpointRecord endpoint, store.GetEndpoint(options.endpoint));

  // The signals the control loop waits for are blocked before any thread starts, so that every
  // thread inherits the mask and only sigtimedwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &signals, &previous);

  ServeMetrics metrics;
  ModelCache cache(store, lake, options.external);
  // Destroyed in reverse: the server (its loops use the service) before the service, the
  // service before the log.
  std::unique_ptr<audit::InferenceLog> log;
  std::atomic<HttpServer*> server_ptr{nullptr};
  std::unique_ptr<InferenceService> service;
  std::unique_ptr<HttpServer> server;
  std::string instance;

  if (options.inference_log) {
    audit::InferenceLogOptions lo = options.log;
    lo.endpoint = options.endpoint;
    // Unique across processes and restarts: segment names carry it.
    lo.instance = fmt::format("{}-{:x}", getpid(), absl::ToUnixMicros(clock.Now()) & 0xffffff);
    absl::StatusOr<std::unique_ptr<audit::InferenceLog>> opened =
        audit::InferenceLog::Open(lake, lo, clock);
    if (!opened.ok()) {
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      return opened.status();
    }
    log = std::move(*opened);
  }
  service =
      std::make_unique<InferenceService>(ServiceOptions{.endpoint = options.endpoint}, metrics,
                                         log.get(), clock, [&server_ptr]() -> int64_t {
                                           HttpServer* s = server_ptr.load();
                                           return s != nullptr ? s->in_flight() : 0;
                                         });
  server = std::make_unique<HttpServer>(options.http, *service);
  server_ptr.store(server.get());

  int64_t rejected_version = 0;
  auto reload = [&](bool forced) {
    absl::StatusOr<state::EndpointRecord> now = store.GetEndpoint(options.endpoint);
    if (!now.ok()) {
      spdlog::warn("endpoint {}: cannot read it ({}); still serving the last config",
                   options.endpoint, now.status().message());
      return;
    }
    std::shared_ptr<const EndpointSnapshot> current = service->snapshot();
    if (current != nullptr && current->version == now->version) return;
    if (!forced && now->version == rejected_version) return;
    absl::StatusOr<std::shared_ptr<const EndpointSnapshot>> next =
        BuildSnapshot(*now, cache, metrics);
    if (!next.ok()) {
      rejected_version = now->version;
      spdlog::error("rejected the new config of endpoint {}: {}; still serving version {}",
                    options.endpoint, next.status().message(),
                    current == nullptr ? 0 : current->version);
      return;
    }
    service->SetSnapshot(*next);
    cache.Retain(**next);
    spdlog::info("endpoint {} version {}: {}", options.endpoint, (*next)->version,
                 Describe(**next));
  };
  auto reload_keys = [&] {
    absl::StatusOr<std::vector<state::ApiKeyRecord>> keys = store.ListApiKeys();
    if (keys.ok()) service->SetKeys(std::make_shared<const KeySet>(*keys));
  };

  reload(true);
  reload_keys();
  if (absl::Status started = server->Start(); !started.ok()) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return started;
  }
  instance = fmt::format("{}@{}:{}", getpid(), HostName(), server->port());
  if (options.on_listening) options.on_listening(server->port());

  auto publish = [&] {
    std::shared_ptr<const EndpointSnapshot> snap = service->snapshot();
    if (snap == nullptr) return;
    for (const HostedVariant& v : snap->variants) {
      VariantMetrics::Snapshot s = v.metrics->Read();
      state::VariantStatsRecord r;
      r.endpoint = options.endpoint;
      r.instance = instance;
      r.variant = v.config.name;
      r.model = v.config.model;
      r.model_version = v.config.version;
      r.endpoint_version = snap->version;
      r.ready = v.model->predictor->Ready();
      r.requests = s.requests;
      r.errors = s.errors;
      r.latency_json = LatencyToJson(s.counts);
      if (absl::Status st = store.PutVariantStats(r); !st.ok()) {
        spdlog::warn("cannot publish the stats of variant {}: {}", v.config.name, st.message());
      }
    }
  };

  publish();
  absl::Time last_publish = clock.Now();
  for (;;) {
    timespec timeout{};
    const int64_t poll_ms = absl::ToInt64Milliseconds(options.poll);
    timeout.tv_sec = poll_ms / 1000;
    timeout.tv_nsec = (poll_ms % 1000) * 1000000;
    siginfo_t info;
    const int sig = sigtimedwait(&signals, &info, &timeout);
    if (sig == SIGTERM || sig == SIGINT) break;
    const int64_t before = service->snapshot() ? service->snapshot()->version : 0;
    reload(sig == SIGHUP);
    reload_keys();
    const bool swapped = service->snapshot() && service->snapshot()->version != before;
    if (swapped || clock.Now() - last_publish >= options.stats_every) {
      // Variants the new config no longer has must not linger in `ferry endpoint show`.
      if (swapped) (void)store.DeleteVariantStats(options.endpoint, instance);
      publish();
      last_publish = clock.Now();
    }
    if (options.on_tick) {
      if (absl::Status st = options.on_tick(store); !st.ok()) {
        spdlog::warn("endpoint {}: {}", options.endpoint, st.message());
      }
    }
  }

  spdlog::info("endpoint {}: stopping; finishing the requests in flight", options.endpoint);
  server->Shutdown(options.grace);
  if (log != nullptr) log->Close();
  (void)store.DeleteVariantStats(options.endpoint, instance);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return absl::OkStatus();
}

}  // namespace ferry::serve
