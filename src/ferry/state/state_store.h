#pragma once
// StateStore: the database that holds every resource's state machine (kinds.h). The controller,
// `ferry run` and `ferry cancel` in other processes share one store; it is the only place where
// "who moved what, when" is decided.
//
// Contract, for every implementation (the conformance suite in state_store_test_base.h checks it):
//  - A transition is one transaction: the row moves from `from` to `to` only if it is in `from` at
//    `expected_version`, the version goes up by one, and an `events` row is appended. If the edge
//    is not in the kind's table: InvalidArgument. If the row is elsewhere or at another version
//    (someone else moved it first): FailedPrecondition, and nothing changes.
//  - A batch of transitions is all-or-nothing.
//  - At most one live (unfinished) attempt per task; at most one live run per (pipeline,
//    idempotency key): the database's unique indexes enforce both, across processes.
//  - The model registry: versions of a model are numbered 1, 2, 3, ... in registration order,
//    each number given once even to concurrent registrations; moving an alias is one
//    compare-and-set transaction with its event; an alias never names a rejected or tombstoned
//    version (kinds.h, IsUsableModelState).
//  - Experiments: ids 1, 2, 3, ... over the store, never reused; at most one experiment per
//    (run, task), whoever writes; a metrics section is replaced in one transaction, so
//    concurrent writers of different sections both keep theirs.
//  - Serving: endpoints and deployments move by compare-and-set like runs; at most one pending or
//    baking deployment per endpoint, and one deployment per (endpoint, idempotency key): unique
//    indexes decide between concurrent creators, across processes.
//
// Thread-safety: one instance may be used from one thread at a time; open one instance per
// thread or process (they coordinate through the database).
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto store, OpenStateStore("sqlite:///tmp/p/.ferry/state.db"));
//   FERRY_ASSIGN_OR_RETURN(PipelineRunRecord run, store->CreateRun({.id = id, ...}));
//   FERRY_RETURN_IF_ERROR(store->TransitionRun({.id = id, .from = "queued", .to = "running",
//                                               .expected_version = run.version}).status());
//   FERRY_ASSIGN_OR_RETURN(ModelVersionRecord v, store->RegisterModelVersion(
//       {.model = "churn", .artifact_uri = uri, .idempotency_key = run_id + "/register"}));
//   FERRY_RETURN_IF_ERROR(store->SetAlias({.model = "churn", .alias = "champion",
//                                          .version = v.version, .expected_current = 6}).status());

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/common/clock.h"

namespace ferry::state {

struct PipelineRunRecord {
  std::string id;
  std::string pipeline;
  std::string pipeline_file;  // absolute path of the YAML it was started from
  std::string state;
  int64_t version = 0;
  std::string idempotency_key;  // empty when none
  std::string params_json;      // the frozen parameters
  std::string spec_json;        // the resolved pipeline, frozen at start (resume runs this)
  int64_t owner_pid = 0;        // the `ferry run` process that drives it, 0 when none
  std::string owner_host;
  absl::Time created_at = absl::InfinitePast();
  absl::Time started_at = absl::InfinitePast();  // InfinitePast: not yet
  absl::Time finished_at = absl::InfinitePast();
  std::string message;  // why it failed / was cancelled
};

struct TaskRunRecord {
  std::string run_id;
  std::string task;
  std::string state;
  int64_t version = 0;
  int attempts = 0;  // attempts started so far
  int64_t pid = 0;   // process group of the live attempt, 0 when none
  int exit_code = 0;
  std::string cache_key;
  std::string output_uri;  // where the checkpoint is (may be another run's, when cached)
  std::string output_hash;
  absl::Time queued_at = absl::InfinitePast();
  absl::Time started_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();
  absl::Time retry_at = absl::InfinitePast();  // when a retrying task may be queued again
  std::string message;
};

struct AttemptRecord {
  std::string run_id;
  std::string task;
  int attempt = 0;  // 1-based
  int64_t pid = 0;
  absl::Time started_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();  // InfinitePast while live
  std::string outcome;                            // the task state it ended in; empty while live
  int exit_code = 0;
  std::string log_uri;
};

struct EventRecord {
  int64_t seq = 0;
  // "PipelineRun", "TaskRun", "ModelVersion", "ModelAlias", "Endpoint", "Deployment",
  // "BatchJob", "MonitorRun"
  std::string kind;
  // Run id, "<run id>/<task>", "<model>:<version>" (ModelVersion), "<model>@<alias>" (ModelAlias),
  // the endpoint's name (Endpoint), the deployment's id (Deployment), the job's id (BatchJob,
  // MonitorRun).
  std::string resource;
  // States, or for ModelAlias the version numbers the alias pointed to before and after ("7");
  // empty for creation (and `to` for an alias's deletion).
  std::string from;
  std::string to;
  // Version (revision) after the change; for ModelAlias the version number it points to after
  // the move, 0 once deleted.
  int64_t version = 0;
  std::string actor;  // "ferry run pid 123@host", "ferry cancel", ...
  std::string reason;
  absl::Time at = absl::InfinitePast();
};

struct CheckpointRecord {
  std::string cache_key;
  std::string pipeline;
  std::string run_id;
  std::string task;
  std::string output_uri;
  std::string output_hash;
  absl::Time created_at = absl::InfinitePast();
};

struct NewRun {
  std::string id;
  std::string pipeline;
  std::string pipeline_file;
  std::string idempotency_key;
  std::string params_json;
  std::string spec_json;
  std::vector<std::string> tasks;  // created in state pending, in the same transaction
  std::string actor;
};

struct RunTransition {
  std::string id;
  std::string_view from;
  std::string_view to;
  int64_t expected_version = 0;
  std::string reason;
  std::string actor;
  // Fields written in the same transaction, when set.
  std::optional<int64_t> owner_pid;
  std::optional<std::string> owner_host;
  std::optional<std::string> message;
};

struct TaskTransition {
  std::string run_id;
  std::string task;
  std::string_view from;
  std::string_view to;
  int64_t expected_version = 0;
  std::string reason;
  // Fields written in the same transaction, when set. Entering `running` opens attempt
  // attempts+1 (with `log_uri`); leaving `running` closes the live attempt with outcome `to`.
  std::optional<int> exit_code;
  std::optional<std::string> cache_key;
  std::optional<std::string> output_uri;
  std::optional<std::string> output_hash;
  std::optional<std::string> message;
  std::optional<absl::Time> retry_at;
  std::optional<std::string> log_uri;
  // Indexes a committed checkpoint in the same transaction (as PutCheckpoint would).
  std::optional<CheckpointRecord> checkpoint;
};

// A named model: the parent of its versions. Created explicitly or by its first registration.
struct ModelRecord {
  std::string name;  // CheckModelName
  std::string description;
  int64_t latest_version = 0;  // the last version number given out; 0 before the first
  absl::Time created_at = absl::InfinitePast();
};

// One registered version of a model ("churn:7"): an immutable artifact plus its lifecycle state.
struct ModelVersionRecord {
  std::string model;
  int64_t version = 0;       // 1, 2, 3, ... per model, in registration order
  std::string state;         // ModelVersionKind()
  int64_t revision = 0;      // the compare-and-set counter: 1 at registration, +1 per transition
  std::string artifact_uri;  // models/<name>/<version>/ in the lake, or where it was trained
  std::string run_id;        // the pipeline run and task that registered it; may be empty
  std::string task;
  std::string idempotency_key;  // empty when none
  std::string metrics_json;     // evaluation metrics, as the register step recorded them
  std::string metadata_json;    // model type, dataset version, git commit, ...
  absl::Time created_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();  // the last transition (created_at before any)
  std::string message;                           // why it was rejected, archived, ...
};

struct NewModelVersion {
  std::string model;  // created (with no description) if it does not exist yet
  std::string artifact_uri;
  std::string run_id;
  std::string task;
  // A retried registration with the same non-empty key (by convention "<run id>/<task>") returns
  // the version the first one created instead of a new one, whatever state it is in now.
  std::string idempotency_key;
  std::string metrics_json;
  std::string metadata_json;
  std::string actor;
};

struct ModelVersionTransition {
  std::string model;
  int64_t version = 0;
  std::string_view from;
  std::string_view to;
  int64_t expected_revision = 0;
  std::string reason;
  std::string actor;
  std::optional<std::string> message;  // written in the same transaction, when set
};

// A movable name for one version of a model ("churn:champion" -> churn:7).
struct ModelAliasRecord {
  std::string model;
  std::string alias;
  int64_t version = 0;
  absl::Time updated_at = absl::InfinitePast();  // the last move
};

struct AliasMove {
  std::string model;
  std::string alias;    // CheckAliasName
  int64_t version = 0;  // the version it is to point to
  // Compare-and-set: when set, the move happens only if the alias points to this version now;
  // 0 means "only if the alias does not exist yet". Unset: move whatever it points to.
  std::optional<int64_t> expected_current;
  std::string reason;
  std::string actor;
};

// One training run of a model ("experiment 41"): what was trained with what, and how well.
struct ExperimentRecord {
  int64_t id = 0;      // 1, 2, 3, ... over the whole store, in creation order
  std::string name;    // the experiment name (the train step's `experiment:`)
  std::string run_id;  // the pipeline run and task that trained it
  std::string task;
  std::string model_type;       // "logistic_regression", "xgboost", "python"
  std::string params_json;      // hyperparameters + seed, a JSON object
  std::string metrics_json;     // a JSON object of sections: {"train": {...}, "evaluate": {...}}
  std::string dataset;          // the training dataset version as "features@3"
  std::string dataset_version;  // its content id
  std::string code_hash;        // hash of the code that trained it (model type + files)
  std::string artifact_uri;     // where the trained model is
  double duration_seconds = 0;  // the fit, as measured by the train task
  std::string model_version;    // "churn:7" once registered, else ""
  absl::Time created_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();
};

struct NewExperiment {  // ExperimentRecord's fields that a train task sets
  std::string name, run_id, task, model_type, params_json, metrics_json, dataset, dataset_version,
      code_hash, artifact_uri;
  double duration_seconds = 0;
};

struct ExperimentFilter {
  std::string name;        // "" = every name
  std::string model_type;  // "" = every type
  int limit = 0;           // 0 = no limit; newest first
};

// --- Serving: endpoints, their deployments, the stats serving processes publish, API keys ---

// A named real-time endpoint. `config_json` is what `ferry serve --endpoint <name>` hosts
// (docs/serving.md):
//   {"variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 100,
//                  "mode": "live"}],          // mode live|shadow; live weights sum to 100
//    "echo_inputs": false, "log_sampling": 1.0, "auth": false, "sticky_header": ""}
// "{}" (no variants) while creating. Serving processes watch `version` and reload on a change.
struct EndpointRecord {
  std::string name;  // CheckModelName's rules
  std::string state;
  int64_t version = 0;  // compare-and-set counter: 1 at creation, +1 per transition
  std::string config_json;
  absl::Time created_at = absl::InfinitePast();
  absl::Time updated_at = absl::InfinitePast();
  std::string message;
};

struct NewEndpoint {
  std::string name;
  std::string config_json = "{}";
  std::string actor;
};

struct EndpointTransition {
  std::string name;
  std::string_view from;
  std::string_view to;
  int64_t expected_version = 0;
  std::string reason;
  std::string actor;
  // Written in the same transaction, when set.
  std::optional<std::string> config_json;
  std::optional<std::string> message;
};

// One change of an endpoint's variants (DeploymentKind()).
struct DeploymentRecord {
  std::string id;  // "d20261127-121700-3f9a1c" (NewDeploymentId)
  std::string endpoint;
  std::string state;
  int64_t version = 0;
  std::string strategy;  // "blue_green", "canary", "shadow", "rollback"
  // What was asked: {"model": "churn", "version": 8, "weight": 10, "bake_seconds": 600,
  // "rollback_on": [{"metric": "error_rate", "op": ">", "value": 0.01}], "min_requests": 0,
  // "ready_timeout_seconds": 60}
  std::string spec_json;
  std::string from_config_json;  // the endpoint's config when the deployment was created
  std::string to_config_json;    // the config it leaves when promoted ("" until known)
  std::string idempotency_key;   // empty when none
  absl::Time created_at = absl::InfinitePast();
  absl::Time baking_since = absl::InfinitePast();  // when it entered baking
  absl::Time finished_at = absl::InfinitePast();
  std::string message;  // why it was promoted, rolled back or failed: the measured values
  std::string actor;    // who created it
};

struct NewDeployment {
  std::string id;
  std::string endpoint;
  std::string strategy;
  std::string spec_json;
  std::string from_config_json;
  std::string idempotency_key;
  std::string actor;
};

struct DeploymentTransition {
  std::string id;
  std::string_view from;
  std::string_view to;
  int64_t expected_version = 0;
  std::string reason;
  std::string actor;
  // Written in the same transaction, when set. Entering baking sets baking_since (to `at`),
  // entering a terminal state sets finished_at (to `at`).
  std::optional<std::string> to_config_json;
  std::optional<std::string> message;
  absl::Time at = absl::InfinitePast();  // InfinitePast: the store's clock (absl::Now())
};

// What one serving process reports about one variant it hosts, replaced as a whole every few
// seconds (counters are cumulative since that process loaded that model version as that
// variant). The rollout reconciler reads these to decide readiness and canary health.
struct VariantStatsRecord {
  std::string endpoint;
  std::string instance;  // the serving process: "pid@host:port"
  std::string variant;
  std::string model;
  int64_t model_version = 0;
  int64_t endpoint_version = 0;  // the endpoint config version the process runs
  bool ready = false;            // loaded and answering
  int64_t requests = 0;
  int64_t errors = 0;  // 5xx answers (a model that failed); 4xx are the client's
  // Latency histogram in milliseconds: {"bounds_ms": [0.1, 0.25, ...], "counts": [...]}. Bounds
  // increase strictly; counts[i] is the number of requests in bucket i alone (bounds_ms[i-1],
  // bounds_ms[i]] -- not cumulative across buckets, as serve's metrics snapshot and
  // HistogramQuantileMs read it -- and counts has one more entry, for (last bound, +Inf).
  std::string latency_json;
  absl::Time updated_at = absl::InfinitePast();
};

// --- Jobs: batch jobs and monitor runs ---

// One batch job (BatchJobKind()) or monitor run (MonitorRunKind()): a one-off operation with a
// spec, an owner process while it runs, and a result. Both kinds share one table and this record.
struct JobRecord {
  std::string id;       // "b20261127-121700-3f9a1c" / "m20261127-..." (NewJobId)
  std::string kind;     // "BatchJob" or "MonitorRun"
  std::string subject;  // the model reference ("churn:7") of a batch job, the endpoint of a monitor
  std::string state;
  int64_t version = 0;
  std::string spec_json;    // what was asked (inputs, output, window, thresholds, ...)
  std::string result_json;  // what it did so far: counts, outputs, the report's key ("{}" at first)
  std::string idempotency_key;  // empty when none
  int64_t owner_pid = 0;        // the process that runs it (0 when none)
  std::string owner_host;
  absl::Time created_at = absl::InfinitePast();
  absl::Time started_at = absl::InfinitePast();   // when it last entered running
  absl::Time finished_at = absl::InfinitePast();  // when it entered a terminal state
  std::string message;
  std::string actor;
};

struct NewJob {
  std::string id;
  std::string kind;  // BatchJobKind().name or MonitorRunKind().name
  std::string subject;
  std::string spec_json = "{}";
  // A second CreateJob of the same kind with the same non-empty key returns the first job.
  std::string idempotency_key;
  std::string actor;
};

struct JobTransition {
  std::string id;
  std::string_view from;
  std::string_view to;
  int64_t expected_version = 0;
  std::string reason;
  std::string actor;
  // Written in the same transaction, when set. Entering running sets started_at, entering a
  // terminal state sets finished_at.
  std::optional<std::string> result_json;
  std::optional<std::string> message;
  std::optional<int64_t> owner_pid;
  std::optional<std::string> owner_host;
};

// An API key for serving (docs/serving.md). The secret is never stored: `hash` is the hex
// SHA-256 of the full key text.
struct ApiKeyRecord {
  std::string id;    // the public part of the key, unique ("k3f9a1c2b")
  std::string name;  // a label
  std::string role;  // "invoke" or "admin"
  std::string hash;
  absl::Time created_at = absl::InfinitePast();
  absl::Time revoked_at = absl::InfinitePast();  // InfinitePast: live
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Creates the run (state queued, version 1) and its tasks (pending, version 1) in one
  // transaction. AlreadyExists if the id exists, or if a live run of the same pipeline holds the
  // same non-empty idempotency key (the message names that run's id).
  virtual absl::StatusOr<PipelineRunRecord> CreateRun(const NewRun& run) = 0;
  virtual absl::StatusOr<PipelineRunRecord> GetRun(const std::string& id) = 0;
  // Newest first; `pipeline` empty means all.
  virtual absl::StatusOr<std::vector<PipelineRunRecord>> ListRuns(const std::string& pipeline,
                                                                  int limit) = 0;
  virtual absl::StatusOr<PipelineRunRecord> TransitionRun(const RunTransition& t) = 0;

  // Tasks of a run, in creation order.
  virtual absl::StatusOr<std::vector<TaskRunRecord>> GetTasks(const std::string& run_id) = 0;
  // All-or-nothing; returns the updated rows in the order given.
  virtual absl::StatusOr<std::vector<TaskRunRecord>> TransitionTasks(
      const std::vector<TaskTransition>& batch, const std::string& actor) = 0;
  // Records the process group of the live attempt (written after the process is spawned; the
  // transition to running was persisted before). FailedPrecondition when no attempt is live.
  virtual absl::Status SetAttemptPid(const std::string& run_id, const std::string& task,
                                     int64_t pid) = 0;
  virtual absl::StatusOr<std::vector<AttemptRecord>> GetAttempts(const std::string& run_id,
                                                                 const std::string& task) = 0;

  // Events of one resource (run id, or "<run id>/<task>"), oldest first; empty `resource` = all.
  virtual absl::StatusOr<std::vector<EventRecord>> GetEvents(const std::string& resource) = 0;

  // The checkpoint index: cache key -> where a task's committed output is.
  virtual absl::Status PutCheckpoint(const CheckpointRecord& c) = 0;
  // NotFound when there is none.
  virtual absl::StatusOr<CheckpointRecord> GetCheckpoint(const std::string& cache_key) = 0;

  // --- The model registry ---

  // AlreadyExists when the model exists (its description is left as it is): callers that only
  // need the model to exist treat that as success. InvalidArgument unless IsValidName(name).
  virtual absl::StatusOr<ModelRecord> CreateModel(const std::string& name,
                                                  const std::string& description) = 0;
  // NotFound when there is no such model.
  virtual absl::StatusOr<ModelRecord> GetModel(const std::string& name) = 0;
  // Every model, by name.
  virtual absl::StatusOr<std::vector<ModelRecord>> ListModels() = 0;

  // Gives the model's next version number (creating the model if needed) and records the
  // version in state registered, revision 1, with a creation event, in one transaction.
  // Concurrent registrations of one model, from any process, get distinct consecutive numbers.
  // With an idempotency key already used for this model, returns that version and writes
  // nothing. InvalidArgument for an invalid model name.
  virtual absl::StatusOr<ModelVersionRecord> RegisterModelVersion(const NewModelVersion& v) = 0;
  // NotFound when the model or the version does not exist.
  virtual absl::StatusOr<ModelVersionRecord> GetModelVersion(const std::string& model,
                                                             int64_t version) = 0;
  // Versions of a model, oldest (1) first. NotFound when the model does not exist.
  virtual absl::StatusOr<std::vector<ModelVersionRecord>> ListModelVersions(
      const std::string& model) = 0;
  // Compare-and-set along ModelVersionKind(), as TransitionRun. Also FailedPrecondition when the
  // version would become rejected or tombstoned while an alias points to it (the message names
  // the aliases): move or delete them first.
  virtual absl::StatusOr<ModelVersionRecord> TransitionModelVersion(
      const ModelVersionTransition& t) = 0;

  // Records where a version's artifact is, when registration had to give the number first
  // (the register step copies the bundle to models/<name>/<version>/ and then says so). Setting
  // the same URI again is a no-op; FailedPrecondition when the version already has another one
  // (an artifact never moves); NotFound for an unknown version; InvalidArgument for "".
  virtual absl::StatusOr<ModelVersionRecord> SetModelVersionArtifact(
      const std::string& model, int64_t version, const std::string& artifact_uri) = 0;

  // Creates or moves an alias, and appends a ModelAlias event, in one transaction. InvalidArgument
  // for a bad alias name; NotFound when the version does not exist; FailedPrecondition when the
  // version is rejected or tombstoned, or when `expected_current` does not hold (someone moved it
  // first; nothing changes). Pointing an alias where it already points changes nothing and
  // records no event.
  virtual absl::StatusOr<ModelAliasRecord> SetAlias(const AliasMove& move) = 0;
  // NotFound when the model has no such alias.
  virtual absl::StatusOr<ModelAliasRecord> GetAlias(const std::string& model,
                                                    const std::string& alias) = 0;
  // The model's aliases, by name. NotFound when the model does not exist.
  virtual absl::StatusOr<std::vector<ModelAliasRecord>> ListAliases(const std::string& model) = 0;
  // Removes the alias and appends a ModelAlias event (to ""), in one transaction. NotFound when
  // there is no such alias.
  virtual absl::Status DeleteAlias(const std::string& model, const std::string& alias,
                                   const std::string& actor) = 0;

  // --- Experiments: one record per training run (not a state machine: no events) ---

  // Records an experiment. Idempotent per (run_id, task) when run_id is non-empty: a retried or
  // resumed train task updates its experiment (every field of `e`, updated_at) and keeps its id
  // (and model_version). InvalidArgument when name is empty or params_json / metrics_json is not
  // a JSON object (naming the field), or duration_seconds is negative or not finite.
  virtual absl::StatusOr<ExperimentRecord> RecordExperiment(const NewExperiment& e) = 0;
  // NotFound ("no experiment 41; `ferry experiments` lists them").
  virtual absl::StatusOr<ExperimentRecord> GetExperiment(int64_t id) = 0;
  // NotFound when that run and task recorded none (always, for an empty run_id).
  virtual absl::StatusOr<ExperimentRecord> FindExperiment(const std::string& run_id,
                                                          const std::string& task) = 0;
  // Newest (highest id) first.
  virtual absl::StatusOr<std::vector<ExperimentRecord>> ListExperiments(
      const ExperimentFilter& f) = 0;
  // Sets metrics section `section` ("evaluate") of the experiment to `metrics_json` (a JSON
  // object; other sections are kept), in one transaction (read-modify-write must not lose a
  // concurrent update of another section). NotFound for an unknown id; InvalidArgument for bad JSON
  // or an empty section name.
  virtual absl::Status SetExperimentMetrics(int64_t id, const std::string& section,
                                            const std::string& metrics_json) = 0;
  // Records the registered version ("churn:7"). NotFound for an unknown id.
  virtual absl::Status SetExperimentModelVersion(int64_t id, const std::string& model_version) = 0;

  // --- Endpoints and deployments ---

  // Creates the endpoint in state creating, version 1, with a creation event. AlreadyExists when
  // the name is taken (also by a deleted endpoint). InvalidArgument for a bad name or a
  // config_json that is not a JSON object.
  virtual absl::StatusOr<EndpointRecord> CreateEndpoint(const NewEndpoint& e) = 0;
  // NotFound ("no endpoint churn; `ferry endpoints` lists them").
  virtual absl::StatusOr<EndpointRecord> GetEndpoint(const std::string& name) = 0;
  // By name.
  virtual absl::StatusOr<std::vector<EndpointRecord>> ListEndpoints() = 0;
  // Compare-and-set along EndpointKind(), as TransitionRun. InvalidArgument for a config_json
  // that is not a JSON object.
  virtual absl::StatusOr<EndpointRecord> TransitionEndpoint(const EndpointTransition& t) = 0;

  // Creates the deployment in state pending, version 1, with a creation event.
  // FailedPrecondition when the endpoint already has a pending or baking deployment, naming it
  // ("endpoint churn has deployment d... in flight (baking); wait for it or `ferry rollback
  // churn`"): a unique index decides between concurrent callers, across processes. With an
  // idempotency key already used for this endpoint, returns that deployment (whatever its state
  // now) and writes nothing. NotFound for an unknown endpoint; AlreadyExists for a used id;
  // InvalidArgument for an id that is not a valid name, a strategy other than blue_green, canary,
  // shadow or rollback, or a spec_json or from_config_json that is not a JSON object.
  virtual absl::StatusOr<DeploymentRecord> CreateDeployment(const NewDeployment& d) = 0;
  virtual absl::StatusOr<DeploymentRecord> GetDeployment(const std::string& id) = 0;
  // Newest first; `endpoint` empty means all; limit 0 means no limit. NotFound for an unknown
  // endpoint.
  virtual absl::StatusOr<std::vector<DeploymentRecord>> ListDeployments(const std::string& endpoint,
                                                                        int limit) = 0;
  // Compare-and-set along DeploymentKind(), as TransitionRun.
  virtual absl::StatusOr<DeploymentRecord> TransitionDeployment(const DeploymentTransition& t) = 0;

  // Replaces the row of (endpoint, instance, variant); updated_at InfinitePast means the store's
  // clock. InvalidArgument for bad latency_json (see VariantStatsRecord), an empty endpoint,
  // instance or variant, or negative counts.
  virtual absl::Status PutVariantStats(const VariantStatsRecord& s) = 0;
  // Rows of an endpoint, by instance then variant.
  virtual absl::StatusOr<std::vector<VariantStatsRecord>> ListVariantStats(
      const std::string& endpoint) = 0;
  // Removes every row of one instance (a serving process that stops cleanly).
  virtual absl::Status DeleteVariantStats(const std::string& endpoint,
                                          const std::string& instance) = 0;

  // --- API keys ---

  // Stores a live key: revoked_at is ignored; created_at InfinitePast means the store's clock.
  // AlreadyExists for a used id; InvalidArgument for an empty id, a role other than
  // invoke/admin or an empty hash.
  virtual absl::StatusOr<ApiKeyRecord> CreateApiKey(const ApiKeyRecord& k) = 0;
  // Every key, revoked ones included, by creation time.
  virtual absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() = 0;
  // Sets revoked_at. NotFound for an unknown id; revoking twice keeps the first time.
  virtual absl::Status RevokeApiKey(const std::string& id) = 0;

  // --- Jobs (batch jobs, monitor runs) ---

  // Creates a job in `queued`. With an idempotency key already used by a job of the same kind,
  // returns that job instead (whatever its state). InvalidArgument for an unknown kind, a bad id
  // or spec_json that is not a JSON object; AlreadyExists for a taken id.
  virtual absl::StatusOr<JobRecord> CreateJob(const NewJob& job) = 0;
  // NotFound names the id and the listing command.
  virtual absl::StatusOr<JobRecord> GetJob(const std::string& id) = 0;
  // Jobs of `kind`, optionally of one subject, newest first; limit <= 0: all.
  virtual absl::StatusOr<std::vector<JobRecord>> ListJobs(const std::string& kind,
                                                          const std::string& subject,
                                                          int limit) = 0;
  // Compare-and-set along the job's kind table, as TransitionRun.
  virtual absl::StatusOr<JobRecord> TransitionJob(const JobTransition& t) = 0;
  // Replaces result_json while the job is in `state` (progress of a running job, without a
  // transition or an event). FailedPrecondition when it is not in that state any more.
  virtual absl::Status SetJobResult(const std::string& id, std::string_view state,
                                    const std::string& result_json) = 0;
};

// "d20261127-121700-3f9a1c": as NewRunId, with a "d".
std::string NewDeploymentId(const Clock& clock);
// "b20261127-121700-3f9a1c" for a batch job, "m..." for a monitor run: the prefix, the UTC time
// and 6 random hex digits.
std::string NewJobId(char prefix, const Clock& clock);

// InvalidArgument, saying what is allowed, unless `name` can name a model: IsValidName.
absl::Status CheckModelName(std::string_view name);
// InvalidArgument, saying what is allowed, unless `alias` can name an alias: IsValidName, not all
// digits (it would read as a version number), not "latest" (reserved).
absl::Status CheckAliasName(std::string_view alias);

// A reference to a model version, as users write it: "churn:7" (version 7), "churn:champion"
// (what the alias points to now), "churn" or "churn:latest" (the newest version that is not
// rejected or tombstoned).
struct ModelRef {
  std::string model;
  int64_t version = 0;  // set for "churn:7"
  std::string alias;    // set for "churn:champion"; both unset means latest
};

// InvalidArgument, saying the accepted forms, for anything else.
absl::StatusOr<ModelRef> ParseModelRef(std::string_view ref);

// Parses `ref` and reads the version it names now, through `store` (a read, not a snapshot: an
// alias moved right after is not seen). NotFound when the model, version or alias does not
// exist, or the model has no usable version for "latest".
absl::StatusOr<ModelVersionRecord> ResolveModelRef(StateStore& store, std::string_view ref);

// Opens the store named by `uri` ("sqlite:///abs/path.db"; "postgresql://..." arrives later and
// is reported as Unimplemented), creating or migrating its schema.
absl::StatusOr<std::unique_ptr<StateStore>> OpenStateStore(const std::string& uri);

}  // namespace ferry::state
