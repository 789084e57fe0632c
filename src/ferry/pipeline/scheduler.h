#pragma once
// Scheduler: drives one pipeline run to its end. Event-driven: a task becomes ready when its
// last upstream task finishes (a counter per task, decremented by each upstream's completion),
// so nothing rescans the graph; a ready task is either a cache hit or joins the FIFO queue, and
// the queue is drained into the Executor while fewer than max_parallel tasks run.
//
// Every transition is persisted in the StateStore before it is acted on: a task is `running` in
// the store before its process is launched, its checkpoint is committed in the lake before it is
// `succeeded`. So a `kill -9` at any point leaves a state that `ferry run --resume` (runner.h)
// completes without running again anything that had succeeded.
//
// Timeouts: SIGTERM, then SIGKILL after the grace period; a timed-out attempt counts as failed.
// Retries: exponential backoff (config::RetryDelay), waited on without blocking other tasks.
// Cancellation: `*cancel` becoming true (set by a signal handler) or the run moving to
// `cancelling` in the store (by `ferry cancel` elsewhere) stops queued work and terminates
// running tasks. Not thread-safe: one Scheduler per run, driven by one thread.

#include <atomic>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "ferry/common/clock.h"
#include "ferry/exec/executor.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::pipeline {

// Notified of every persisted task change and of each turn of the loop (for progress views).
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void OnTaskChanged(const state::TaskRunRecord& task, const std::string& detail) = 0;
  // Called at least every `tick()` while tasks run.
  virtual void OnTick() {}
  virtual absl::Duration tick() const { return absl::Seconds(1); }
};

// --only / --from: the tasks to run (always, cache or not). Tasks upstream of them must be cache
// hits (checked before the run starts); every other task is skipped.
struct Selection {
  bool active = false;
  std::set<std::string> selected;
};

struct SchedulerDeps {
  state::StateStore* store = nullptr;
  storage::ArtifactStore* lake = nullptr;
  exec::Executor* executor = nullptr;
  const Clock* clock = nullptr;
  RunObserver* observer = nullptr;            // may be null
  const std::atomic<bool>* cancel = nullptr;  // may be null
  std::string actor;                          // "ferry run pid 12@host"
};

class Scheduler {
 public:
  Scheduler(SchedulerDeps deps, const ResolvedPipeline& pipeline, Selection selection);

  // Drives run `pipeline.run_id`, which must be `running` and owned by this process, and whose
  // tasks are in pending/queued/retrying/succeeded/cached/skipped states. Returns the run's final
  // record (succeeded, failed or cancelled). An error means the store or the lake failed; the
  // run is then left for `--resume`.
  absl::StatusOr<state::PipelineRunRecord> Drive();

 private:
  struct Node;
  class Impl;
  SchedulerDeps deps_;
  const ResolvedPipeline& pipeline_;
  Selection selection_;
};

}  // namespace ferry::pipeline
