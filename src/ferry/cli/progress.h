#pragma once
// Progress of a run on the terminal. On a TTY: a live view redrawn in place (counts by state, a
// progress bar, elapsed time, the running tasks). Otherwise: one plain line per task change, for
// logs and CI. Ends with a summary table: what ran, how long each task took, where outputs are.
// Single-threaded (called from the scheduler's loop).

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "ferry/common/clock.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/scheduler.h"
#include "ferry/state/state_store.h"

namespace ferry::cli {

class TerminalProgress final : public pipeline::RunObserver {
 public:
  // `quiet`: no per-task lines and no live view (the summary still prints).
  TerminalProgress(std::FILE* out, bool tty, bool quiet, const Clock& clock);

  void Begin(const pipeline::ResolvedPipeline& p, const std::vector<state::TaskRunRecord>& tasks);
  void OnTaskChanged(const state::TaskRunRecord& task, const std::string& detail) override;
  void OnTick() override;
  absl::Duration tick() const override { return tty_ ? absl::Milliseconds(100) : absl::Seconds(1); }
  // Clears the live view and prints the summary.
  void End(const state::PipelineRunRecord& run, const std::vector<state::TaskRunRecord>& tasks,
           const std::string& lake_root);

 private:
  void Redraw();
  std::FILE* out_;
  bool tty_;
  bool quiet_;
  const Clock& clock_;
  absl::Time started_;
  std::string run_id_;
  std::string pipeline_;
  std::map<std::string, std::string> state_;  // task -> state
  std::vector<std::string> order_;
  int drawn_lines_ = 0;
  absl::Time last_draw_ = absl::InfinitePast();
};

}  // namespace ferry::cli
