#pragma once
// Runner: the operations behind `ferry run`, `ferry run --resume` and `ferry cancel`, on top of
// resolve.h (what to run) and scheduler.h (running it).
//
//  - StartRun resolves the pipeline once (parameters frozen into the run row and into
//    runs/<pipeline>/<run>/params.json), creates the run and its tasks, takes ownership
//    (queued -> running, with this process's pid) and drives it.
//  - ResumeRun takes over a run whose owner is gone or that failed or was cancelled: a task the
//    dead owner left `running` whose checkpoint was committed is recorded as succeeded (it is
//    not run again); others are killed if still alive and re-run; failed, upstream_failed,
//    cancelled and skipped tasks go back to pending; succeeded and cached ones stay.
//  - CancelRun moves a run to `cancelling` and signals its owner, which stops the tasks; a run
//    whose owner is dead is cancelled on the spot.
// Functions are not thread-safe with respect to the same StateStore instance.

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/common/clock.h"
#include "ferry/config/project.h"
#include "ferry/exec/executor.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/scheduler.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::pipeline {

struct RunContext {
  const config::ProjectConfig* project = nullptr;
  state::StateStore* store = nullptr;
  storage::ArtifactStore* lake = nullptr;
  exec::Executor* executor = nullptr;
  const Clock* clock = nullptr;
  const StepKindRegistry* kinds = nullptr;
  RunObserver* observer = nullptr;            // may be null
  const std::atomic<bool>* cancel = nullptr;  // may be null
  std::string self_exe;                       // the ferry binary, for built-in step kinds
};

struct RunRequest {
  std::vector<std::pair<std::string, std::string>> params;  // --param k=v
  std::vector<std::string> from;                            // --from: these and downstream
  std::vector<std::string> only;                            // --only: just these
  std::string idempotency_key;
};

// "ferry run pid 123@host": who moved a resource, in the events table.
std::string ActorName(std::string_view command);

// Resolves, creates and drives a run; `on_created` (may be empty) is called with the resolved
// pipeline once the run exists, before any task starts.
absl::StatusOr<state::PipelineRunRecord> StartRun(
    const RunContext& ctx, const config::PipelineSpec& spec, const RunRequest& req,
    const std::function<void(const ResolvedPipeline&)>& on_created = {});

absl::StatusOr<state::PipelineRunRecord> ResumeRun(
    const RunContext& ctx, const std::string& run_id,
    const std::function<void(const ResolvedPipeline&)>& on_resumed = {});

// Returns the run as left: `cancelling` (its owner is stopping it) or `cancelled`.
absl::StatusOr<state::PipelineRunRecord> CancelRun(state::StateStore& store,
                                                   exec::Executor& executor,
                                                   const std::string& run_id);

// True when the run's owner process is alive on this host.
bool OwnerAlive(const state::PipelineRunRecord& run);

}  // namespace ferry::pipeline
