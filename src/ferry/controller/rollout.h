#pragma once
// Rollout: how an endpoint changes its variants — one Deployment (state/kinds.h) at a time,
// driven to an end by a reconciler that reads time from a Clock. `ferry deploy` starts a
// deployment (StartDeployment) and, with --wait, drives it (RunUntilDone); a serving process or
// the controller steps the in-flight deployment of an endpoint every second (ReconcileEndpoint).
//
// Thread-safety: the free functions are safe to call from many threads and processes at once
// (each with its own StateStore instance). A RolloutReconciler is used by one thread; many
// reconcilers in many processes may drive the same deployment: every move is a compare-and-set
// transition of the store, and a reconciler that loses a race re-reads and continues from where
// the winner left the rows, so no move happens twice.
//
// Variants are named "blue" and "green": the first deployment of an endpoint gets "blue", each
// later one the name the live variant does not have. The endpoint's config during the bake
// (`bake config`) and after promotion (`to config`, {new 100}) follow from the deployment's
// from_config_json and spec, so any reconciler recomputes them.
//
//   pending ──(write bake config)──> baking ──(ready; bake passed under thresholds)──> promoted
//
//   strategy     bake config (endpoint in_service -> updating)    promoted when
//   first        {blue 100}  (endpoint creating -> in_service)     ready
//   blue_green   {old 100, new 0 live}                             ready
//   canary       {old 100-w, new w}                                ready, bake passed, requests
//                                                                  >= min_requests, thresholds ok
//   shadow       {old 100 live, new 0 shadow}                      as canary
//
//   time ──────────────────────────────────────────────────────────────────────────────>
//   StartDeployment   Step: bake config      new variant ready     bake elapsed
//   │ pending         │ baking               │                     │ promoted: {new 100},
//   │                 │ endpoint updating    │ (blue_green:        │ endpoint in_service
//   │                 │                      │  promoted here)     │
//   │                 ├── a threshold crossed (requests >= 1) ──> rolled_back: from config,
//   │                 │                          endpoint updating -> rolling_back -> in_service
//   │                 ├── bake elapsed, requests < min_requests ──> rolled_back ("not enough
//   │                 │                                                          traffic")
//   │                 └── not ready within ready_timeout ──> failed: from config,
//   │                                                        endpoint updating -> in_service
//
// Ready: when some serving instance of the endpoint is fresh (published VariantStats within 10 s
// of now), every fresh instance reports the new variant ready at an endpoint version >= the one
// that wrote the bake config; when no instance is fresh, the model version's bundle loading
// counts as ready. The bake counts from the moment the deployment entered baking.
//
// Canary and shadow health counts only rows published at an endpoint version >= the one that
// wrote the bake config (so counters of an earlier deployment's variant of the same name do not
// count), for the new variant's name, model and version.
//
// The deployment decides first and the endpoint follows: promoted, rolled back or failed is one
// compare-and-set transition of the deployment (so two reconcilers can never decide differently),
// and then the endpoint is settled to where the decision leaves it (the to config when promoted,
// the from config otherwise). Whoever sees the endpoint's newest deployment ended and the endpoint
// not there yet settles it — Step, ReconcileEndpoint, StartDeployment and Rollback all do — so a
// process that stops between the two moves leaves nothing half done.
//
// Model versions follow, best effort and only along legal edges of ModelVersionKind: baking ->
// the new version validated -> staged; promoted -> staged -> production and the replaced live
// version production -> archived; rolled back -> staged -> rejected; failed -> staged -> archived.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(state::DeploymentRecord d, StartDeployment(*store, *lake,
//       {.endpoint = "churn", .model_ref = "churn:8", .strategy = "canary", .weight = 10,
//        .bake = absl::Minutes(10), .rollback_on = "error_rate>0.01,p99_ms>25"}, clock));
//   RolloutReconciler r(*store, *lake, clock, "ferry deploy");
//   FERRY_ASSIGN_OR_RETURN(d, r.RunUntilDone(d.id, sleep, print));

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/common/clock.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::controller {

// A serving instance counts as fresh when it published stats within this long of now.
inline constexpr absl::Duration kFreshness = absl::Seconds(10);

struct DeployRequest {
  std::string endpoint;
  std::string model_ref;                // "churn:champion", "churn:8" (state::ResolveModelRef)
  std::string strategy = "blue_green";  // blue_green | canary | shadow
  int weight = 10;                      // canary: percent of live traffic, 1..99
  absl::Duration bake = absl::ZeroDuration();  // canary/shadow: how long to watch before promoting
  // "error_rate>0.01,p99_ms>25" (metrics: error_rate, p99_ms, p50_ms; ops > >= < <=): crossing
  // one rolls the deployment back.
  std::string rollback_on;
  // At the end of the bake, fewer requests to the new variant than this -> rolled back ("not
  // enough traffic").
  int64_t min_requests = 0;
  absl::Duration ready_timeout = absl::Minutes(2);
  // Endpoint settings changed with this deployment (unset: kept).
  std::optional<bool> echo_inputs;
  std::optional<bool> auth;
  std::optional<double> log_sampling;
  std::optional<std::string> sticky_header;
  std::string idempotency_key;
  std::string actor;
};

// One term of --rollback-on: roll back when `metric op value` holds.
struct Threshold {
  std::string metric;  // error_rate | p99_ms | p50_ms
  std::string op;      // > >= < <=
  double value = 0;
};

// "error_rate>0.01, p99_ms>25" -> two thresholds; "" -> none. InvalidArgument naming the term and
// what is accepted.
absl::StatusOr<std::vector<Threshold>> ParseRollbackOn(std::string_view spec);
// "error_rate>0.01"
std::string ThresholdToString(const Threshold& t);

// Creates the endpoint when missing (state creating), checks that the model version exists and
// that its bundle loads (FailedPrecondition naming the folder otherwise), and records a pending
// deployment (state::NewDeploymentId). FailedPrecondition naming the in-flight deployment when
// there is one (the store decides, across processes); InvalidArgument for a bad request.
absl::StatusOr<state::DeploymentRecord> StartDeployment(state::StateStore& store,
                                                        storage::ArtifactStore& lake,
                                                        const DeployRequest& r, const Clock& clock);

// What the serving instances report about one variant, summed.
struct VariantHealth {
  int64_t requests = 0;
  int64_t errors = 0;
  double error_rate = 0;  // errors / requests; 0 without requests
  double p50_ms = std::numeric_limits<double>::quiet_NaN();  // NaN without latency data
  double p99_ms = std::numeric_limits<double>::quiet_NaN();
  int fresh_instances = 0;  // instances whose row was updated within `freshness` of now
  int ready_instances = 0;  // of those, the ones that report the variant ready
};

// Sums the rows of `variant` serving model:version over instances; the latency quantiles come
// from the summed histograms (counts per bucket, as VariantStatsRecord::latency_json; a row with
// other bounds or malformed counts adds no latency). Rows older than `freshness` count for
// requests but not as fresh instances.
VariantHealth AggregateVariantStats(const std::vector<state::VariantStatsRecord>& rows,
                                    const std::string& variant, const std::string& model,
                                    int64_t version, absl::Time now, absl::Duration freshness);

// The value of `metric` in `h` (NaN when unknown), and whether `t` is crossed (never for NaN).
double MetricValue(const VariantHealth& h, const std::string& metric);
bool Crossed(const Threshold& t, double value);

class RolloutReconciler {
 public:
  // Borrows `store`, `lake` and `clock`; `actor` is written into every event.
  RolloutReconciler(state::StateStore& store, storage::ArtifactStore& lake, const Clock& clock,
                    std::string actor);

  // Moves the deployment as far as it can go now and returns it as it is then (a terminal
  // deployment is returned as it is). NotFound for an unknown id; other errors of the store.
  absl::StatusOr<state::DeploymentRecord> Step(const std::string& deployment_id);

  // Steps until the deployment is promoted, rolled back or failed, calling `sleep` between steps
  // (one second, or less when the bake or the ready timeout ends sooner) and `on_change` whenever
  // its state or message changed.
  absl::StatusOr<state::DeploymentRecord> RunUntilDone(
      const std::string& id, const std::function<void(absl::Duration)>& sleep,
      const std::function<void(const state::DeploymentRecord&)>& on_change);

  // Steps the endpoint's in-flight (pending or baking) deployment, if any.
  absl::Status ReconcileEndpoint(const std::string& endpoint);

 private:
  absl::StatusOr<bool> BundleLoads(const std::string& model, int64_t version);

  state::StateStore& store_;
  storage::ArtifactStore& lake_;
  const Clock& clock_;
  std::string actor_;
  std::map<std::pair<std::string, int64_t>, bool> bundle_loads_;  // cache of BundleLoads
};

// `ferry rollback <endpoint>`: an in-flight deployment -> rolled_back with the previous config
// restored; otherwise the config before the last promoted deployment is restored, recorded as a
// deployment with strategy "rollback" (promoted at once). FailedPrecondition when there is
// nothing to roll back to (no promoted deployment, or only the endpoint's first).
absl::StatusOr<state::DeploymentRecord> Rollback(state::StateStore& store,
                                                 const std::string& endpoint,
                                                 const std::string& reason,
                                                 const std::string& actor, const Clock& clock);

}  // namespace ferry::controller
