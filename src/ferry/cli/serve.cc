// ferry serve --endpoint NAME [--host 127.0.0.1] [--port 8080] [--threads N] ...
// The data plane of one endpoint (serve/serve_process.h, docs/serving.md). Until the controller
// exists, it also advances the endpoint's deployment in flight (controller/rollout.h) every
// second; `--no-reconcile` leaves that to `ferry deploy --wait`.

#include <algorithm>
#include <cstdio>
#include <memory>

#include "ferry/cli/cli_common.h"
#include "ferry/common/units.h"
#include "ferry/controller/rollout.h"
#include "ferry/serve/serve_process.h"
#include "ferry/serve/worker_pool.h"
#include "fmt/format.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace ferry::cli {
namespace {

struct ServeCliOptions {
  std::string endpoint;
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 0;
  bool no_log = false;
  bool no_reconcile = false;
  std::string segment_bytes = "16Mi";
  std::string segment_age = "1m";
  std::string max_body = "6Mi";
  std::string grace = "10s";
  int workers_min = 1;
  int workers_max = 4;
};

int ServeMain(const GlobalOptions& g, const ServeCliOptions& o) {
  // What the serving process logs (swaps, rejected configs, worker restarts) goes to stderr;
  // stdout carries only the "serving endpoint ... on http://..." line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("ferry-serve"));
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  serve::ServeOptions so;
  so.endpoint = o.endpoint;
  so.http.host = o.host;
  so.http.port = o.port;
  so.http.threads = o.threads;
  absl::StatusOr<int64_t> body = ParseBytes(o.max_body);
  absl::StatusOr<int64_t> seg = ParseBytes(o.segment_bytes);
  absl::StatusOr<absl::Duration> age = ParseDuration(o.segment_age);
  absl::StatusOr<absl::Duration> grace = ParseDuration(o.grace);
  for (const auto& [flag, st] :
       {std::pair{"--max-body", body.status()}, std::pair{"--log-segment-bytes", seg.status()},
        std::pair{"--log-segment-age", age.status()}, std::pair{"--grace", grace.status()}}) {
    if (!st.ok())
      return Fail(absl::InvalidArgumentError(fmt::format("{}: {}", flag, st.message())));
  }
  so.http.max_body_bytes = static_cast<size_t>(*body);
  so.inference_log = !o.no_log;
  so.log.segment_bytes = static_cast<size_t>(*seg);
  so.log.segment_age = *age;
  so.grace = *grace;
  serve::WorkerPoolOptions workers;
  workers.min_workers = o.workers_min;
  workers.max_workers = std::max(o.workers_min, o.workers_max);
  so.external = serve::PythonWorkerFactory(project->config.root_dir, workers);
  const std::string actor = fmt::format("ferry serve pid {}", getpid());
  std::unique_ptr<controller::RolloutReconciler> reconciler;
  if (!o.no_reconcile) {
    so.on_tick = [&](state::StateStore& store) -> absl::Status {
      if (reconciler == nullptr) {
        reconciler = std::make_unique<controller::RolloutReconciler>(store, *project->lake,
                                                                     SystemClock::Get(), actor);
      }
      return reconciler->ReconcileEndpoint(o.endpoint);
    };
  }
  so.on_listening = [&](int port) {
    fmt::print("serving endpoint {} on http://{}:{}\n", o.endpoint, o.host, port);
    std::fflush(stdout);
  };
  absl::Status s = serve::RunServe(so, *project->store, *project->lake, SystemClock::Get());
  if (!s.ok()) return Fail(s);
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<ServeCliOptions>();
  CLI::App* serve = app.add_subcommand("serve", "Serve an endpoint's variants over HTTP");
  serve->add_option("--endpoint", o->endpoint, "The endpoint (`ferry deploy` creates it)")
      ->required();
  serve->add_option("--host", o->host, "Address to bind (default 127.0.0.1)");
  serve->add_option("--port", o->port, "Port (default 8080; 0 picks a free one and prints it)");
  serve->add_option("--threads", o->threads, "Event loops (default: one per core)");
  serve->add_flag("--no-log", o->no_log, "Do not write the inference log");
  serve->add_option("--log-segment-bytes", o->segment_bytes,
                    "Inference log: commit a segment at this many uncompressed bytes (16Mi)");
  serve->add_option("--log-segment-age", o->segment_age,
                    "Inference log: commit a segment when its oldest record is this old (1m)");
  serve->add_option("--max-body", o->max_body, "Largest request body (6Mi); larger gets 413");
  serve->add_option("--grace", o->grace,
                    "On SIGTERM, how long requests in flight may take to finish (10s)");
  serve
      ->add_option("--workers-min", o->workers_min,
                   "Python models: worker processes kept running per variant (1)")
      ->check(CLI::Range(1, 64));
  serve
      ->add_option("--workers-max", o->workers_max,
                   "Python models: the most worker processes per variant under load (4)")
      ->check(CLI::Range(1, 64));
  serve->add_flag("--no-reconcile", o->no_reconcile,
                  "Do not advance the endpoint's deployments from this process");
  serve->callback([&g, &rc, o] { rc = ServeMain(g, *o); });
}

}  // namespace ferry::cli
