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
//
// Thread-safety: one instance may be used from one thread at a time; open one instance per
// thread or process (they coordinate through the database).
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto store, OpenStateStore("sqlite:///tmp/p/.ferry/state.db"));
//   FERRY_ASSIGN_OR_RETURN(PipelineRunRecord run, store->CreateRun({.id = id, ...}));
//   FERRY_RETURN_IF_ERROR(store->TransitionRun({.id = id, .from = "queued", .to = "running",
//                                               .expected_version = run.version}).status());

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

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
  std::string kind;      // "PipelineRun", "TaskRun"
  std::string resource;  // run id, or "<run id>/<task>"
  std::string from;      // empty for creation
  std::string to;
  int64_t version = 0;  // version after the change
  std::string actor;    // "ferry run pid 123@host", "ferry cancel", ...
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
};

// Opens the store named by `uri` ("sqlite:///abs/path.db"; "postgresql://..." arrives later and
// is reported as Unimplemented), creating or migrating its schema.
absl::StatusOr<std::unique_ptr<StateStore>> OpenStateStore(const std::string& uri);

}  // namespace ferry::state
