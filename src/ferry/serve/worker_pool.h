#pragma once
// WorkerPool: a Predictor served by N worker processes of an external model under the runner
// contract (docs/python-models.md): `<command> serve --model-dir DIR --host 127.0.0.1 --port 0`,
// which prints "listening on HOST:PORT" and answers GET /ping and POST /invocations.
//
// The pool spawns each worker in its own process group on a loopback port, reads the port from
// its stdout, and marks it ready after a 200 from /ping. A supervisor thread notices deaths
// (waitpid), pings every ready worker every `health_every` (two failed pings in a row: the
// worker is killed), restarts dead workers with exponential backoff (reset once a worker has
// stayed up 30 s), and scales between min_workers and max_workers: one worker more when every
// ready worker has max_outstanding_per_worker requests in flight, fewer (down to what the peak
// load needed, at least min_workers) after idle_scale_down without that much load. Predict goes
// to the ready worker with the fewest requests in flight, over a pooled keep-alive connection.
// What a worker prints goes to ferry's stderr, each line prefixed with "[worker PID]" (but
// the access-log lines of its 2xx answers).
//
// Thread-safety: every method may be called from any thread at once. The pool owns its
// supervisor thread and its child processes; destruction closes the connections, sends SIGTERM
// to every worker's process group, SIGKILL to those still alive after 5 s, and reaps them.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(std::unique_ptr<WorkerPool> pool,
//                          WorkerPool::Start({.command = "python3 models/churn.py",
//                                             .model_dir = bundle + "/model",
//                                             .cwd = project_dir}));
//   FERRY_ASSIGN_OR_RETURN(nlohmann::json predictions,
//                          pool->Predict(nlohmann::json::array({{{"tenure", 3}}})));

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/serve/predictor.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {

struct WorkerPoolOptions {
  std::string command;                     // model.json "command", run by /bin/sh
  std::string model_dir;                   // <bundle>/model
  std::string cwd;                         // the project folder: where the command runs
  std::map<std::string, std::string> env;  // added to ferry's environment (overriding)
  int min_workers = 1;
  int max_workers = 4;
  // Scale up when every ready worker has this many requests in flight (and below max_workers);
  // scale down after idle_scale_down during which the load never needed the workers there are.
  int max_outstanding_per_worker = 4;
  absl::Duration idle_scale_down = absl::Seconds(30);
  absl::Duration start_timeout = absl::Seconds(30);  // to "listening on" and a 200 from /ping
  absl::Duration request_timeout = absl::Seconds(30);
  absl::Duration health_every = absl::Seconds(1);
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(10);
};

class WorkerPool final : public Predictor {
 public:
  // Checks the options, starts min_workers workers and waits until one is ready. On failure
  // (every worker exited before it was ready, or none was ready within start_timeout) stops them
  // and returns FailedPrecondition / DeadlineExceeded with the command, the exit status and the
  // tail of the worker's stderr. InvalidArgument for inconsistent options.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Start(WorkerPoolOptions options);

  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // POSTs {"instances": rows} to the ready worker with the fewest requests in flight and returns
  // its "predictions" array, as the worker computed it. A worker's 4xx is InvalidArgument with
  // its message, a 5xx Internal with its message; no answer within request_timeout is
  // DeadlineExceeded. A connection that fails (also after one retry on a fresh connection, in
  // case a pooled one had gone stale) marks the worker dead, for the supervisor to restart, and
  // the request is retried once on another ready worker. Unavailable when no worker is ready.
  // Never throws.
  absl::StatusOr<nlohmann::json> Predict(const nlohmann::json& rows) override;

  // At least one worker is ready.
  bool Ready() const override;

  struct WorkerInfo {
    int64_t pid = 0;  // 0 while the slot waits out its restart backoff
    int port = 0;     // 0 until the worker said where it listens
    bool ready = false;
    int outstanding = 0;  // requests in flight
    int restarts = 0;     // of this slot since the pool started
  };
  // One entry per worker slot (retiring workers excluded), in slot order.
  std::vector<WorkerInfo> Workers() const;

  struct Impl;

 private:
  explicit WorkerPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The ExternalPredictorFactory (predictor.h) for Python models: a model whose model.json has a
// "command" is served by a WorkerPool with `defaults` (sizes, timeouts, extra env), running the
// command in `project_dir` with FERRY_PROJECT_DIR=project_dir (unless `defaults.env` sets it)
// on the bundle's model/ folder. The predictor it returns takes rows as the built-in models do:
// it applies the bundle's transform (model.json "transform") to rows typed by "input_schema",
// sends the transformed rows to the workers, and answers the predictions in the form of
// model::PredictionsToJson, read with the bundle's task and classes. FailedPrecondition for a
// model without a command; the errors of WorkerPool::Start otherwise.
ExternalPredictorFactory PythonWorkerFactory(std::string project_dir, WorkerPoolOptions defaults);

}  // namespace ferry::serve
