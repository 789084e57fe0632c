#pragma once
// FaultyStateStore: a StateStore decorator that simulates its owner process dying between two
// persistence points. The first `writes_before_crash` write calls (CreateRun, TransitionRun,
// TransitionTasks, SetAttemptPid, PutCheckpoint) go through to the real store; every later one
// fails with Unavailable and reaches nothing, so the database holds exactly what a process killed
// at that point would have left. Reads always go through. Test-only; single-threaded like the
// store it wraps, which it borrows.
//
// Example:
//   FaultyStateStore faulty(*store, /*writes_before_crash=*/3);
//   absl::StatusOr<PipelineRunRecord> run = StartRun(ContextOver(faulty), spec, {});
//   // !run.ok() once the run needs a 4th write; faulty.crashed() tells it happened.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ferry/common/status.h"
#include "ferry/pipeline/internal/state_store_wrapper.h"
#include "fmt/format.h"

namespace ferry::pipeline::internal {

class FaultyStateStore final : public StateStoreWrapper {
 public:
  FaultyStateStore(state::StateStore& target, int writes_before_crash)
      : StateStoreWrapper(target), budget_(writes_before_crash) {}

  // Writes let through so far (at most writes_before_crash).
  int writes() const { return writes_; }
  // True once a write has been refused.
  bool crashed() const { return crashed_; }

  absl::StatusOr<state::PipelineRunRecord> CreateRun(const state::NewRun& run) override {
    FERRY_RETURN_IF_ERROR(Admit("CreateRun"));
    return target().CreateRun(run);
  }
  absl::StatusOr<state::PipelineRunRecord> TransitionRun(const state::RunTransition& t) override {
    FERRY_RETURN_IF_ERROR(Admit("TransitionRun"));
    return target().TransitionRun(t);
  }
  absl::StatusOr<std::vector<state::TaskRunRecord>> TransitionTasks(
      const std::vector<state::TaskTransition>& batch, const std::string& actor) override {
    FERRY_RETURN_IF_ERROR(Admit("TransitionTasks"));
    return target().TransitionTasks(batch, actor);
  }
  absl::Status SetAttemptPid(const std::string& run_id, const std::string& task,
                             int64_t pid) override {
    FERRY_RETURN_IF_ERROR(Admit("SetAttemptPid"));
    return target().SetAttemptPid(run_id, task, pid);
  }
  absl::Status PutCheckpoint(const state::CheckpointRecord& c) override {
    FERRY_RETURN_IF_ERROR(Admit("PutCheckpoint"));
    return target().PutCheckpoint(c);
  }

 private:
  absl::Status Admit(const char* call) {
    if (writes_ >= budget_) {
      crashed_ = true;
      return absl::UnavailableError(fmt::format(
          "injected fault: the state store is gone after {} writes ({} refused)", budget_, call));
    }
    ++writes_;
    return absl::OkStatus();
  }

  const int budget_;
  int writes_ = 0;
  bool crashed_ = false;
};

}  // namespace ferry::pipeline::internal
