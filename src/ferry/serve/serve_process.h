#pragma once
// RunServe: the data plane of one endpoint (`ferry serve --endpoint churn`). It loads the
// endpoint's variants from the state store, starts the HTTP server and the inference log, and
// then, on its control loop (the calling thread):
//   - polls the endpoint every `poll` and on SIGHUP; a new config version is loaded beside the
//     running one and swapped in atomically (no request fails); a config that does not load is
//     rejected, logged, and the last good one keeps serving;
//   - reloads the API keys;
//   - publishes each variant's counters to the store (state::VariantStatsRecord) for the rollout
//     reconciler, and calls `on_tick` (the CLI advances the endpoint's deployment there);
//   - on SIGTERM or SIGINT stops accepting, finishes the requests in flight (up to `grace`),
//     commits the inference log, removes its stats rows, and returns OK.
// Owns every thread it starts; the store and lake are used from the calling thread only.

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ferry/audit/inference_log.h"
#include "ferry/common/clock.h"
#include "ferry/serve/http_server.h"
#include "ferry/serve/predictor.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::serve {

struct ServeOptions {
  std::string endpoint;
  HttpServerOptions http;
  bool inference_log = true;
  audit::InferenceLogOptions log;  // endpoint and instance are filled in
  absl::Duration poll = absl::Seconds(1);
  absl::Duration stats_every = absl::Seconds(1);
  absl::Duration grace = absl::Seconds(10);
  ExternalPredictorFactory external;  // Python models; null: not served
  // Called on the control loop after each poll, with the store (the CLI runs the rollout
  // reconciler of this endpoint here). Errors are logged, never fatal.
  std::function<absl::Status(state::StateStore&)> on_tick;
  // Called once the server listens, with the port (useful with port 0).
  std::function<void(int port)> on_listening;
};

// NotFound when the endpoint does not exist; Unavailable when the port cannot be bound.
absl::Status RunServe(const ServeOptions& options, state::StateStore& store,
                      storage::ArtifactStore& lake, const Clock& clock);

}  // namespace ferry::serve
