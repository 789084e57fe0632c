#include "ferry/state/kinds.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace ferry::state {
namespace {

constexpr std::string_view kRunDiagram = R"(    queued ──> running ──> succeeded
      │          │ │
      │          │ └──> failed ──┐
      │          └──> cancelling ──> cancelled   (cancelling ──> failed: the owner died)
      └──> cancelled     ^                │
                         │   (resume)     │
             running <───┴── failed, cancelled)";

constexpr std::string_view kTaskDiagram = R"(    pending ──> queued ──> running ──> succeeded
       │          │          │ ├──> failed
       │          │          │ ├──> retrying ──> queued (after backoff)
       │          │          │ └──> cancelled
       ├──> cached (checkpoint hit)    upstream_failed, skipped, cancelled <── pending
       └─ failed / upstream_failed / cancelled / skipped ──> pending   (resume)
          succeeded / cached ──> pending   (resume, when the checkpoint is gone))";

constexpr std::string_view kModelVersionDiagram =
    R"(    registered ──> validated ──> staged ──> production ──> archived ──> staged   (rollback)
        │              │ │         │ │                        ^ ^
        │              │ │         │ └── withdrawn ───────────┘ │
        │              │ └── superseded ──────────────────────────┘
        │              │           │
        └──────────────┴───────────┴──> rejected   (a gate, a reviewer or the canary said no)

    registered, validated, archived, rejected ──> tombstoned   (deleted; a staged or
    production version is archived first: it may be serving traffic))";

constexpr std::string_view kEndpointDiagram =
    R"(    creating ──> in_service ──> updating ──> in_service      (a deployment promoted)
       │             │  ^          │  └──> rolling_back ──> in_service   (previous config back)
       └──> failed   │  └──────────┘            ^
             │       └──────────────────────────┘   (`ferry rollback` after a promotion)
             └──> updating                          (a new deployment repairs it)
    in_service, failed ──> deleting ──> deleted)";

constexpr std::string_view kDeploymentDiagram = R"(    pending ──> baking ──> promoted
       │          ├──> rolled_back   (a threshold crossed, or `ferry rollback`)
       │          └──> failed        (the new variant never became ready)
       └──> failed, rolled_back)";
constexpr std::string_view kBatchJobDiagram = R"(    queued ──> running ──> completed
      │          ├──> failed ──> running        (resume: a re-run skips committed outputs)
      │          └──> stopping ──> stopped ──> running   (resume)
      └──> failed, stopped                      (stopping ──> failed: the owner died))";
constexpr std::string_view kMonitorRunDiagram = R"(    queued ──> running ──> passed
      │          ├──> alerted   (a threshold crossed: the report says which)
      └──────────┴──> failed    (the report could not be made))";

}  // namespace

const KindTable& PipelineRunKind() {
  using namespace run_state;
  static const KindTable* table = new KindTable{
      "PipelineRun",
      {kQueued, kRunning, kSucceeded, kFailed, kCancelling, kCancelled},
      {kSucceeded, kFailed, kCancelled},
      {
          {kQueued, kRunning, "the scheduler takes the run"},
          {kQueued, kCancelled, "cancelled before it started"},
          {kRunning, kSucceeded, "every task succeeded, was cached or skipped"},
          {kRunning, kFailed, "a task failed, or the process owning the run died"},
          {kRunning, kCancelling, "`ferry cancel` or a signal: tasks are being stopped"},
          {kCancelling, kCancelled, "every running task has stopped"},
          {kCancelling, kFailed, "the owning process died while cancelling"},
          {kFailed, kRunning, "`ferry run --resume`: re-run what did not succeed"},
          {kCancelled, kRunning, "`ferry run --resume` of a cancelled run"},
      },
      kRunDiagram};
  return *table;
}

const KindTable& TaskRunKind() {
  using namespace task_state;
  static const KindTable* table = new KindTable{
      "TaskRun",
      {kPending, kQueued, kRunning, kSucceeded, kCached, kRetrying, kFailed, kUpstreamFailed,
       kSkipped, kCancelled},
      {kSucceeded, kCached, kFailed, kUpstreamFailed, kSkipped, kCancelled},
      {
          {kPending, kQueued, "every upstream task is done"},
          {kPending, kCached, "a checkpoint with the same cache key exists"},
          {kPending, kUpstreamFailed, "an upstream task failed"},
          {kPending, kSkipped, "not selected by --only / --from"},
          {kPending, kCancelled, "the run was cancelled"},
          {kQueued, kRunning, "a slot is free: an attempt starts"},
          {kQueued, kCancelled, "the run was cancelled"},
          {kRunning, kSucceeded, "the process exited 0; its output is checkpointed"},
          {kRunning, kFailed, "non-zero exit, timeout, or the owning process died"},
          {kRunning, kRetrying, "the attempt failed and retries are left"},
          {kRunning, kCancelled, "SIGTERM, then SIGKILL after the grace period"},
          {kRetrying, kQueued, "the backoff has elapsed"},
          {kRetrying, kCancelled, "the run was cancelled"},
          {kFailed, kPending, "resume"},
          {kUpstreamFailed, kPending, "resume"},
          {kCancelled, kPending, "resume"},
          {kSkipped, kPending, "resume"},
          {kSucceeded, kPending, "resume: its checkpoint is gone from the lake (power loss)"},
          {kCached, kPending, "resume: the checkpoint it reused is gone from the lake"},
      },
      kTaskDiagram};
  return *table;
}

const KindTable& ModelVersionKind() {
  using namespace model_state;
  static const KindTable* table = new KindTable{
      "ModelVersion",
      {kRegistered, kValidated, kStaged, kProduction, kArchived, kRejected, kTombstoned},
      {kArchived, kRejected, kTombstoned},
      {
          {kRegistered, kValidated, "every validation gate passed (metrics, schema, checks)"},
          {kRegistered, kRejected, "a validation gate failed"},
          {kRegistered, kTombstoned, "deleted before validation"},
          {kValidated, kStaged, "promoted to staging: deployed as a canary or shadow"},
          {kValidated, kRejected, "refused by a reviewer"},
          {kValidated, kArchived, "superseded: another version was chosen"},
          {kValidated, kTombstoned, "deleted"},
          {kStaged, kProduction, "promoted: its canary or shadow evaluation passed"},
          {kStaged, kRejected, "its canary or shadow evaluation failed"},
          {kStaged, kArchived, "withdrawn from staging without promotion"},
          {kProduction, kArchived, "replaced by a newer production version, or retired"},
          {kArchived, kStaged, "rollback: staged again to take production back"},
          {kArchived, kTombstoned, "deleted (retention, or by hand)"},
          {kRejected, kTombstoned, "deleted (retention, or by hand)"},
      },
      kModelVersionDiagram};
  return *table;
}

const KindTable& EndpointKind() {
  using namespace endpoint_state;
  static const KindTable* table = new KindTable{
      "Endpoint",
      {kCreating, kInService, kUpdating, kRollingBack, kFailed, kDeleting, kDeleted},
      {kDeleted},
      {
          {kCreating, kInService, "its first deployment was promoted"},
          {kCreating, kFailed, "its first deployment failed"},
          {kInService, kUpdating, "a deployment started changing its variants"},
          {kUpdating, kInService, "the deployment was promoted, or failed before any switch"},
          {kUpdating, kRollingBack, "the canary crossed a threshold, or `ferry rollback`"},
          {kInService, kRollingBack, "`ferry rollback`: the config before the last promotion"},
          {kRollingBack, kInService, "the previous variants serve again"},
          {kFailed, kUpdating, "a new deployment repairs it"},
          {kInService, kDeleting, "`ferry endpoint delete`"},
          {kFailed, kDeleting, "`ferry endpoint delete`"},
          {kDeleting, kDeleted, "serving processes have stopped"},
      },
      kEndpointDiagram};
  return *table;
}

const KindTable& DeploymentKind() {
  using namespace deployment_state;
  static const KindTable* table = new KindTable{
      "Deployment",
      {kPending, kBaking, kPromoted, kRolledBack, kFailed},
      {kPromoted, kRolledBack, kFailed},
      {
          {kPending, kBaking, "the new variant is in the endpoint's config (weight, shadow)"},
          {kPending, kFailed, "the model cannot be loaded or the endpoint cannot change"},
          {kPending, kRolledBack, "`ferry rollback` before it started"},
          {kBaking, kPromoted, "ready (blue-green), or the bake time passed under the thresholds"},
          {kBaking, kRolledBack, "a rollback threshold was crossed, or `ferry rollback`"},
          {kBaking, kFailed, "the new variant never became ready"},
      },
      kDeploymentDiagram};
  return *table;
}

const KindTable& BatchJobKind() {
  using namespace batch_state;
  static const KindTable* table = new KindTable{
      "BatchJob",
      {kQueued, kRunning, kCompleted, kFailed, kStopping, kStopped},
      {kCompleted, kFailed, kStopped},
      {
          {kQueued, kRunning, "a process took the job and started scoring"},
          {kQueued, kFailed, "the job cannot start (model or inputs missing)"},
          {kQueued, kStopped, "stopped before it started"},
          {kRunning, kCompleted, "every input file's output is committed"},
          {kRunning, kFailed, "an input could not be read or scored, or the owner died"},
          {kRunning, kStopping, "`ferry batch-job stop` or a signal"},
          {kStopping, kStopped, "the owner finished the file in hand and exited"},
          {kStopping, kFailed, "the owner died while stopping"},
          {kFailed, kRunning, "resume: a re-run skips the outputs already committed"},
          {kStopped, kRunning, "resume: a re-run skips the outputs already committed"},
      },
      kBatchJobDiagram};
  return *table;
}

const KindTable& MonitorRunKind() {
  using namespace monitor_state;
  static const KindTable* table =
      new KindTable{"MonitorRun",
                    {kQueued, kRunning, kPassed, kAlerted, kFailed},
                    {kPassed, kAlerted, kFailed},
                    {
                        {kQueued, kRunning, "a process took the run and reads the window"},
                        {kQueued, kFailed, "the run cannot start (no endpoint, no baseline)"},
                        {kRunning, kPassed, "the report is written and no threshold was crossed"},
                        {kRunning, kAlerted, "the report is written and a threshold was crossed"},
                        {kRunning, kFailed, "the report could not be made, or the owner died"},
                    },
                    kMonitorRunDiagram};
  return *table;
}

const std::vector<const KindTable*>& AllKinds() {
  static const auto* all = new std::vector<const KindTable*>{
      &PipelineRunKind(), &TaskRunKind(),  &ModelVersionKind(), &EndpointKind(),
      &DeploymentKind(),  &BatchJobKind(), &MonitorRunKind()};
  return *all;
}

const KindTable* FindKind(std::string_view name) {
  auto fold = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != '_' && c != '-')
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
  };
  std::string want = fold(name);
  for (const KindTable* k : AllKinds()) {
    if (fold(k->name) == want) return k;
  }
  return nullptr;
}

bool IsLegal(const KindTable& kind, std::string_view from, std::string_view to) {
  return std::any_of(kind.edges.begin(), kind.edges.end(),
                     [&](const Edge& e) { return e.from == from && e.to == to; });
}

bool IsState(const KindTable& kind, std::string_view state) {
  return std::find(kind.states.begin(), kind.states.end(), state) != kind.states.end();
}

bool IsTerminal(const KindTable& kind, std::string_view state) {
  return std::find(kind.terminal.begin(), kind.terminal.end(), state) != kind.terminal.end();
}

bool IsUsableModelState(std::string_view state) {
  return state != model_state::kRejected && state != model_state::kTombstoned;
}

}  // namespace ferry::state
