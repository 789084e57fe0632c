#include "ferry/cli/progress.h"

#include <algorithm>

#include "ferry/cli/cli_common.h"
#include "ferry/common/units.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"

namespace ferry::cli {

namespace ts = state::task_state;

TerminalProgress::TerminalProgress(std::FILE* out, bool tty, bool quiet, const Clock& clock)
    : out_(out), tty_(tty), quiet_(quiet), clock_(clock), started_(clock.Now()) {}

void TerminalProgress::Begin(const pipeline::ResolvedPipeline& p,
                             const std::vector<state::TaskRunRecord>& tasks) {
  run_id_ = p.run_id;
  pipeline_ = p.name;
  started_ = clock_.Now();
  for (const pipeline::ResolvedStep& s : p.steps) order_.push_back(s.name);
  for (const state::TaskRunRecord& t : tasks) state_[t.task] = t.state;
  fmt::print(out_, "run {} of pipeline {} ({} tasks, up to {} at once)\n", p.run_id, p.name,
             p.steps.size(), p.max_parallel);
  std::fflush(out_);
}

void TerminalProgress::OnTaskChanged(const state::TaskRunRecord& task, const std::string& detail) {
  state_[task.task] = task.state;
  if (quiet_) return;
  if (tty_) {
    // The live view shows the change at the next tick; only ends are worth a line of their own.
    if (task.state != ts::kFailed && task.state != ts::kRetrying) return;
    Redraw();  // clear first
  }
  std::string line = fmt::format("{}  {:<24} {:<15}",
                                 absl::FormatTime("%H:%M:%S", clock_.Now(), absl::LocalTimeZone()),
                                 task.task, task.state);
  if (task.state == ts::kSucceeded)
    line += " " + FormatSpan(task.started_at, task.finished_at);
  else if (task.state == ts::kRunning)
    line += fmt::format(" attempt {}", task.attempts);
  else if (!detail.empty() && task.state != ts::kQueued)
    line += " " + detail;
  if (tty_) {
    // Erase the live view, print the line above it; the view is redrawn on the next tick.
    for (int i = 0; i < drawn_lines_; ++i) fmt::print(out_, "\x1b[1A\x1b[2K");
    drawn_lines_ = 0;
  }
  fmt::print(out_, "{}\n", line);
  // Not a terminal: a log file or a CI console that someone may be following as the run goes.
  if (!tty_) std::fflush(out_);
}

void TerminalProgress::OnTick() {
  if (!tty_ || quiet_) return;
  absl::Time now = clock_.Now();
  if (now - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = now;
  Redraw();
}

void TerminalProgress::Redraw() {
  if (!tty_) return;
  for (int i = 0; i < drawn_lines_; ++i) fmt::print(out_, "\x1b[1A\x1b[2K");
  std::map<std::string, int> counts;
  std::vector<std::string> running;
  for (const std::string& name : order_) {
    const std::string& s = state_[name];
    ++counts[s];
    if (s == ts::kRunning) running.push_back(name);
  }
  int done = counts[std::string(ts::kSucceeded)] + counts[std::string(ts::kCached)] +
             counts[std::string(ts::kSkipped)] + counts[std::string(ts::kFailed)] +
             counts[std::string(ts::kUpstreamFailed)] + counts[std::string(ts::kCancelled)];
  int total = static_cast<int>(order_.size());
  constexpr int kWidth = 30;
  int filled = total ? done * kWidth / total : kWidth;
  std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
  fmt::print(out_, "[{}] {}/{} done  {}  elapsed {}\n", bar, done, total,
             fmt::format("pending {} · running {} · ok {} · cached {} · failed {}",
                         counts["pending"] + counts["queued"] + counts["retrying"],
                         counts["running"], counts["succeeded"], counts["cached"],
                         counts["failed"] + counts["upstream_failed"]),
             HumanDuration(clock_.Now() - started_));
  drawn_lines_ = 1;
  for (size_t i = 0; i < running.size() && i < 8; ++i) {
    fmt::print(out_, "  ▸ {}\n", running[i]);
    ++drawn_lines_;
  }
  std::fflush(out_);
}

void TerminalProgress::End(const state::PipelineRunRecord& run,
                           const std::vector<state::TaskRunRecord>& tasks,
                           const std::string& lake_root) {
  if (tty_) {
    for (int i = 0; i < drawn_lines_; ++i) fmt::print(out_, "\x1b[1A\x1b[2K");
    drawn_lines_ = 0;
  }
  std::map<std::string, int> counts;
  for (const auto& t : tasks) ++counts[t.state];
  fmt::print(out_, "\nrun {}: {} in {}\n", run.id, run.state,
             FormatSpan(run.started_at, run.finished_at));
  // Small pipelines list every task; big ones the ten slowest and everything not ok.
  std::vector<const state::TaskRunRecord*> rows;
  for (const auto& t : tasks) rows.push_back(&t);
  bool big = rows.size() > 25;
  if (big) {
    std::stable_sort(rows.begin(), rows.end(), [](auto* a, auto* b) {
      auto d = [](auto* t) {
        return t->finished_at == absl::InfinitePast() || t->started_at == absl::InfinitePast()
                   ? absl::ZeroDuration()
                   : t->finished_at - t->started_at;
      };
      return d(a) > d(b);
    });
    std::vector<const state::TaskRunRecord*> keep;
    for (size_t i = 0; i < rows.size(); ++i) {
      bool ok = rows[i]->state == ts::kSucceeded || rows[i]->state == ts::kCached ||
                rows[i]->state == ts::kSkipped;
      if (i < 10 || !ok) keep.push_back(rows[i]);
    }
    rows = keep;
  }
  fmt::print(out_, "  {:<24} {:<15} {:>8} {:>9}  {}\n", "TASK", "STATE", "ATTEMPTS", "TIME",
             "OUTPUT");
  for (const auto* t : rows) {
    std::string output = t->output_uri.empty() ? (t->message.empty() ? "-" : t->message)
                                               : lake_root + "/" + t->output_uri;
    fmt::print(out_, "  {:<24} {:<15} {:>8} {:>9}  {}\n", t->task, t->state, t->attempts,
               t->state == ts::kCached ? "cached" : FormatSpan(t->started_at, t->finished_at),
               output);
  }
  if (big)
    fmt::print(out_, "  ({} tasks; the 10 slowest and any not ok are shown)\n", tasks.size());
  std::string tally;
  for (const auto& [state, n] : counts)
    tally += fmt::format("{}{} {}", tally.empty() ? "" : ", ", n, state);
  fmt::print(out_, "tasks: {}\n", tally);
  if (!run.message.empty() && run.state != "succeeded") fmt::print(out_, "why: {}\n", run.message);
  fmt::print(out_, "details: ferry show {}   logs: ferry logs {} [TASK]\n", run.id, run.id);
  std::fflush(out_);
}

}  // namespace ferry::cli
