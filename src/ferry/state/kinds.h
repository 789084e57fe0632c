#pragma once
// Resource kinds and their state machines, as data. Every long-lived row (a pipeline run, a
// task of a run, a model version, ...) has a `state` and a `version`; it changes only along an
// edge declared here, through StateStore, which checks the edge and the version in one
// transaction. `ferry states` prints these tables and docs/states.md draws them. Immutable after
// start-up; thread-safe.
//
// PipelineRun
//
//     queued ──> running ──> succeeded
//       │          │ │
//       │          │ └──> failed ──┐
//       │          └──> cancelling ──> cancelled   (cancelling ──> failed: the owner died)
//       └──> cancelled     ^                │
//                          │   (resume)     │
//              running <───┴── failed, cancelled
//
// TaskRun (one row per task of a run; each start of its process is an attempt row)
//
//     pending ──> queued ──> running ──> succeeded
//        │          │          │ ├──> failed
//        │          │          │ ├──> retrying ──> queued (after backoff)
//        │          │          │ └──> cancelled
//        ├──> cached (checkpoint hit)    upstream_failed, skipped, cancelled <── pending
//        └─ failed / upstream_failed / cancelled / skipped ──> pending   (resume)
//           succeeded / cached ──> pending   (resume, when the checkpoint is gone)
//
// ModelVersion (one row per registered version of a model: churn:1, churn:2, ...)
//
//     registered ──> validated ──> staged ──> production ──> archived ──> staged   (rollback)
//         │              │ │         │ │                        ^ ^
//         │              │ │         │ └── withdrawn ───────────┘ │
//         │              │ └── superseded ──────────────────────────┘
//         │              │           │
//         └──────────────┴───────────┴──> rejected   (a gate, a reviewer or the canary said no)
//
//     registered, validated, archived, rejected ──> tombstoned   (deleted; a staged or
//     production version is archived first: it may be serving traffic)
//
// Endpoint (one named real-time endpoint; its config lists the variants `ferry serve` hosts)
//
//     creating ──> in_service ──> updating ──> in_service      (a deployment promoted)
//        │             │  ^          │  └──> rolling_back ──> in_service   (previous config back)
//        └──> failed   │  └──────────┘            ^
//              │       └──────────────────────────┘   (`ferry rollback` after a promotion)
//              └──> updating                          (a new deployment repairs it)
//     in_service, failed ──> deleting ──> deleted
//
// Deployment (one change of an endpoint's variants; at most one pending or baking per endpoint)
//
//     pending ──> baking ──> promoted
//        │          ├──> rolled_back   (a threshold crossed, or `ferry rollback`)
//        │          └──> failed        (the new variant never became ready)
//        └──> failed, rolled_back
//
// BatchJob (one `ferry batch` or `batch` step: score files, write outputs beside a manifest)
//
//     queued ──> running ──> completed
//       │          ├──> failed ──> running        (resume: a re-run skips committed outputs)
//       │          └──> stopping ──> stopped ──> running   (resume)
//       └──> failed, stopped                      (stopping ──> failed: the owner died)
//
// MonitorRun (one `ferry monitor` or `monitor` step: a report over an inference-log window)
//
//     queued ──> running ──> passed
//       │          ├──> alerted   (a threshold crossed: the report says which)
//       └──────────┴──> failed    (the report could not be made)

#include <string>
#include <string_view>
#include <vector>

namespace ferry::state {

struct Edge {
  std::string_view from;
  std::string_view to;
  std::string_view why;  // when the edge is taken, for `ferry states` and the docs
};

struct KindTable {
  std::string_view name;                   // "PipelineRun"
  std::vector<std::string_view> states;    // main path first
  std::vector<std::string_view> terminal;  // states with no work left (resume edges aside)
  std::vector<Edge> edges;
  std::string_view diagram;  // the ASCII drawing above
};

namespace run_state {
inline constexpr std::string_view kQueued = "queued";
inline constexpr std::string_view kRunning = "running";
inline constexpr std::string_view kSucceeded = "succeeded";
inline constexpr std::string_view kFailed = "failed";
inline constexpr std::string_view kCancelling = "cancelling";
inline constexpr std::string_view kCancelled = "cancelled";
}  // namespace run_state

namespace task_state {
inline constexpr std::string_view kPending = "pending";
inline constexpr std::string_view kQueued = "queued";
inline constexpr std::string_view kRunning = "running";
inline constexpr std::string_view kSucceeded = "succeeded";
inline constexpr std::string_view kCached = "cached";
inline constexpr std::string_view kRetrying = "retrying";
inline constexpr std::string_view kFailed = "failed";
inline constexpr std::string_view kUpstreamFailed = "upstream_failed";
inline constexpr std::string_view kSkipped = "skipped";
inline constexpr std::string_view kCancelled = "cancelled";
}  // namespace task_state

namespace model_state {
inline constexpr std::string_view kRegistered = "registered";
inline constexpr std::string_view kValidated = "validated";
inline constexpr std::string_view kStaged = "staged";
inline constexpr std::string_view kProduction = "production";
inline constexpr std::string_view kArchived = "archived";
inline constexpr std::string_view kRejected = "rejected";
inline constexpr std::string_view kTombstoned = "tombstoned";
}  // namespace model_state

namespace endpoint_state {
inline constexpr std::string_view kCreating = "creating";
inline constexpr std::string_view kInService = "in_service";
inline constexpr std::string_view kUpdating = "updating";
inline constexpr std::string_view kRollingBack = "rolling_back";
inline constexpr std::string_view kFailed = "failed";
inline constexpr std::string_view kDeleting = "deleting";
inline constexpr std::string_view kDeleted = "deleted";
}  // namespace endpoint_state

namespace deployment_state {
inline constexpr std::string_view kPending = "pending";
inline constexpr std::string_view kBaking = "baking";
inline constexpr std::string_view kPromoted = "promoted";
inline constexpr std::string_view kRolledBack = "rolled_back";
inline constexpr std::string_view kFailed = "failed";
}  // namespace deployment_state

namespace batch_state {
inline constexpr std::string_view kQueued = "queued";
inline constexpr std::string_view kRunning = "running";
inline constexpr std::string_view kCompleted = "completed";
inline constexpr std::string_view kFailed = "failed";
inline constexpr std::string_view kStopping = "stopping";
inline constexpr std::string_view kStopped = "stopped";
}  // namespace batch_state

namespace monitor_state {
inline constexpr std::string_view kQueued = "queued";
inline constexpr std::string_view kRunning = "running";
inline constexpr std::string_view kPassed = "passed";
inline constexpr std::string_view kAlerted = "alerted";
inline constexpr std::string_view kFailed = "failed";
}  // namespace monitor_state

const KindTable& PipelineRunKind();
const KindTable& TaskRunKind();
const KindTable& ModelVersionKind();
const KindTable& EndpointKind();
const KindTable& DeploymentKind();
const KindTable& BatchJobKind();
const KindTable& MonitorRunKind();
const std::vector<const KindTable*>& AllKinds();

// Case-insensitive lookup by name ("pipelinerun", "PipelineRun", "task_run" all work); null if
// none.
const KindTable* FindKind(std::string_view name);

bool IsLegal(const KindTable& kind, std::string_view from, std::string_view to);
bool IsState(const KindTable& kind, std::string_view state);
bool IsTerminal(const KindTable& kind, std::string_view state);

// Whether a model version in `state` may be named by an alias or picked as a model's latest:
// every state but rejected and tombstoned.
bool IsUsableModelState(std::string_view state);

}  // namespace ferry::state
