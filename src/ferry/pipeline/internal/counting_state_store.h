#pragma once
// CountingStateStore: a StateStore decorator that counts the calls made through it, for tests
// that bound how much a component talks to the store. Test-only; single-threaded like the store
// it wraps, which it borrows.

#include <string>
#include <vector>

#include "ferry/pipeline/internal/state_store_wrapper.h"

namespace ferry::pipeline::internal {

class CountingStateStore final : public StateStoreWrapper {
 public:
  struct Counts {
    int create_run = 0;
    int get_run = 0;
    int transition_run = 0;
    int get_tasks = 0;
    int transition_tasks = 0;  // calls
    int task_transitions = 0;  // transitions in those calls' batches
    int set_attempt_pid = 0;
    int put_checkpoint = 0;
    int get_checkpoint = 0;
    // Calls that write (each is one transaction).
    int writes() const {
      return create_run + transition_run + transition_tasks + set_attempt_pid + put_checkpoint;
    }
  };

  using StateStoreWrapper::StateStoreWrapper;

  const Counts& counts() const { return counts_; }

  absl::StatusOr<state::PipelineRunRecord> CreateRun(const state::NewRun& run) override {
    ++counts_.create_run;
    return target().CreateRun(run);
  }
  absl::StatusOr<state::PipelineRunRecord> GetRun(const std::string& id) override {
    ++counts_.get_run;
    return target().GetRun(id);
  }
  absl::StatusOr<state::PipelineRunRecord> TransitionRun(const state::RunTransition& t) override {
    ++counts_.transition_run;
    return target().TransitionRun(t);
  }
  absl::StatusOr<std::vector<state::TaskRunRecord>> GetTasks(const std::string& run_id) override {
    ++counts_.get_tasks;
    return target().GetTasks(run_id);
  }
  absl::StatusOr<std::vector<state::TaskRunRecord>> TransitionTasks(
      const std::vector<state::TaskTransition>& batch, const std::string& actor) override {
    ++counts_.transition_tasks;
    counts_.task_transitions += static_cast<int>(batch.size());
    return target().TransitionTasks(batch, actor);
  }
  absl::Status SetAttemptPid(const std::string& run_id, const std::string& task,
                             int64_t pid) override {
    ++counts_.set_attempt_pid;
    return target().SetAttemptPid(run_id, task, pid);
  }
  absl::Status PutCheckpoint(const state::CheckpointRecord& c) override {
    ++counts_.put_checkpoint;
    return target().PutCheckpoint(c);
  }
  absl::StatusOr<state::CheckpointRecord> GetCheckpoint(const std::string& cache_key) override {
    ++counts_.get_checkpoint;
    return target().GetCheckpoint(cache_key);
  }

 private:
  Counts counts_;
};

}  // namespace ferry::pipeline::internal
