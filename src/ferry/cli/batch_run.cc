#include "ferry/cli/batch_run.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"
#include "ferry/batch/batch_job.h"
#include "ferry/common/clock.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

using json = nlohmann::json;
namespace bs = state::batch_state;

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

void OnSignal(int sig) {
  g_signal.store(sig);
  g_stop.store(true);
}

// SA_RESTART: a signal must not turn a read or write of the job's files into an error; the
// engine notices the flag between chunks and finishes the file in hand.
void InstallStopHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM}) ::sigaction(s, &sa, nullptr);
}

json ObjectOf(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

std::string Mib(int64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

// The progress on stderr. On a TTY one line redrawn in place; otherwise a line each time a file
// is done, for logs and CI.
class BatchProgressView {
 public:
  BatchProgressView(std::FILE* out, bool tty) : out_(out), tty_(tty), started_(absl::Now()) {}

  void Update(const batch::BatchProgress& p) {
    const double secs = absl::ToDoubleSeconds(absl::Now() - started_);
    if (tty_) {
      const double frac =
          p.bytes_total > 0
              ? std::clamp(static_cast<double>(p.bytes_done) / p.bytes_total, 0.0, 1.0)
          : p.files_total > 0 ? static_cast<double>(p.files_done) / p.files_total
                              : 0.0;
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(frac * kWidth);
      fmt::print(out_, "\r\x1b[2K[{}{}] {:3.0f}%  {}/{} files  {} rows  {} / {}  {:.1f}s",
                 std::string(filled, '#'), std::string(kWidth - filled, '-'), frac * 100,
                 p.files_done, p.files_total, p.rows_done, Mib(p.bytes_done), Mib(p.bytes_total),
                 secs);
      drawn_ = true;
    } else if (p.files_done != last_files_) {
      fmt::print(out_, "batch: {}/{} files, {} rows, {:.1f}s\n", p.files_done, p.files_total,
                 p.rows_done, secs);
    }
    last_files_ = p.files_done;
    std::fflush(out_);
  }

  // Clears the bar before the summary.
  void End() {
    if (tty_ && drawn_) fmt::print(out_, "\r\x1b[2K");
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  bool tty_;
  absl::Time started_;
  int last_files_ = -1;
  bool drawn_ = false;
};

// Watches the job in the store (its own instance: one per thread) and raises the stop flag when
// `ferry batch-job stop` has moved it to stopping.
class StopWatcher {
 public:
  StopWatcher(const std::string& state_uri, const std::string& job_id) {
    absl::StatusOr<std::unique_ptr<state::StateStore>> store = state::OpenStateStore(state_uri);
    if (!store.ok()) return;  // no watcher: signals still stop the job
    thread_ =
        std::thread([this, s = std::shared_ptr<state::StateStore>(std::move(*store)), job_id] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!done_) {
            cv_.wait_for(lock, std::chrono::milliseconds(500));
            if (done_) break;
            lock.unlock();
            absl::StatusOr<state::JobRecord> job = s->GetJob(job_id);
            if (job.ok() && job->state == bs::kStopping) {
              stopped_by_command_.store(true);
              g_stop.store(true);
            }
            lock.lock();
          }
        });
  }
  ~StopWatcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool stopped_by_command() const { return stopped_by_command_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> stopped_by_command_{false};
  std::thread thread_;
};

void PrintSummary(const state::JobRecord& job, const json& result) {
  const json files = result.value("files", json::array());
  int skipped = 0;
  fmt::print("batch job {}: {}{}\n", job.id, job.state,
             job.message.empty() ? "" : fmt::format(" — {}", job.message));
  if (!files.empty()) {
    fmt::print("  {:>9} {:>9} {:>6} {:>8}  {}\n", "ROWS", "SCORED", "BAD", "SECONDS",
               "INPUT -> OUTPUT");
  }
  for (const json& f : files) {
    const bool skip = f.value("skipped", false);
    skipped += skip ? 1 : 0;
    fmt::print("  {:>9} {:>9} {:>6} {:>8.2f}  {} -> {}{}\n", f.value("rows", int64_t{0}),
               f.value("scored", int64_t{0}), f.value("bad", int64_t{0}), f.value("seconds", 0.0),
               f.value("input", ""), f.value("output", ""),
               skip ? "  (skipped: committed before)" : "");
    if (!f.value("quarantine", "").empty()) {
      fmt::print("  {:>36}  bad rows: {}\n", "", f.value("quarantine", ""));
    }
  }
  fmt::print("files {} ({} skipped), rows {}, scored {}, bad {}, seconds {:.2f}\n", files.size(),
             skipped, result.value("rows", int64_t{0}), result.value("scored", int64_t{0}),
             result.value("bad", int64_t{0}), result.value("seconds", 0.0));
}

}  // namespace

std::pair<int, int> CommittedFiles(storage::ArtifactStore& lake, const state::JobRecord& job) {
  const json result = ObjectOf(job.result_json);
  int committed = 0;
  int listed = 0;
  for (const json& f : result.value("files", json::array())) {
    ++listed;
    if (!f.value("output", "").empty()) ++committed;
  }
  int total = listed;
  if (absl::StatusOr<std::string> dir = storage::layout::BatchJob(job.id); dir.ok()) {
    if (absl::StatusOr<std::string> text = lake.Get(*dir + "/input-manifest.json"); text.ok()) {
      json m = json::parse(*text, nullptr, false);
      const json* files = m.is_array() ? &m : nullptr;
      for (const char* key : {"files", "inputs"}) {
        if (files == nullptr && m.is_object() && m.contains(key) && m[key].is_array()) {
          files = &m[key];
        }
      }
      if (files != nullptr) total = std::max(listed, static_cast<int>(files->size()));
    }
  }
  return {committed, total};
}

json BatchJobJson(state::StateStore& store, const state::JobRecord& job, bool with_events) {
  json out = {{"id", job.id},
              {"state", job.state},
              {"model", job.subject},
              {"spec", ObjectOf(job.spec_json)},
              {"result", ObjectOf(job.result_json)},
              {"created_at", ShowTime(job.created_at)},
              {"started_at", ShowTime(job.started_at)},
              {"finished_at", ShowTime(job.finished_at)},
              {"owner_pid", job.owner_pid},
              {"owner_host", job.owner_host},
              {"message", job.message},
              {"actor", job.actor}};
  if (with_events) {
    json events = json::array();
    absl::StatusOr<std::vector<state::EventRecord>> evs = store.GetEvents(job.id);
    if (evs.ok()) {
      for (const state::EventRecord& e : *evs) {
        events.push_back({{"at", ShowTime(e.at)},
                          {"from", e.from},
                          {"to", e.to},
                          {"reason", e.reason},
                          {"actor", e.actor}});
      }
    }
    out["events"] = events;
  }
  return out;
}

int RunBatchJobHere(Project& project, const std::string& job_id, bool as_json) {
  InstallStopHandlers();
  BatchProgressView view(stderr, ::isatty(STDERR_FILENO) == 1);
  absl::StatusOr<batch::BatchResult> result;
  bool by_command = false;
  {
    StopWatcher watcher(project.config.state_uri, job_id);
    result = batch::RunBatchJob(
        *project.store, *project.lake, project.config.root_dir, job_id, SystemClock::Get(),
        [&view](const batch::BatchProgress& p) { view.Update(p); }, &g_stop);
    by_command = watcher.stopped_by_command();
  }
  view.End();
  absl::StatusOr<state::JobRecord> job = project.store->GetJob(job_id);
  if (!job.ok()) return Fail(result.ok() ? job.status() : result.status());
  json shown = BatchJobJson(*project.store, *job, /*with_events=*/false);
  if (result.ok()) shown["result"] = batch::BatchResultToJson(*result);

  const int sig = g_signal.load();
  if (!result.ok() && absl::IsCancelled(result.status())) {
    if (as_json) {
      fmt::print("{}\n", shown.dump(2));
    } else {
      PrintSummary(*job, shown["result"]);
    }
    fmt::print(stderr, "ferry: batch job {} {} ({}); run the same command again to resume it\n",
               job_id, job->state,
               sig != 0     ? fmt::format("signal {}", sig)
               : by_command ? std::string("`ferry batch-job stop`")
                            : std::string("stopped"));
    return sig != 0 ? 128 + sig : kExitCancelled;
  }
  // Another live process runs it, or it could not start: nothing of ours to summarise.
  if (!result.ok() && job->state != bs::kFailed) return Fail(result.status());
  if (as_json) {
    fmt::print("{}\n", shown.dump(2));
  } else {
    PrintSummary(*job, shown["result"]);
    if (job->state == bs::kCompleted) {
      const json spec = ObjectOf(job->spec_json);
      const std::string output = spec.value("output", "");
      fmt::print("outputs: {}\n", output.empty() ? fmt::format("batch/{}/output/ in the lake ({})",
                                                               job_id, project.lake->root_uri())
                                                 : output);
    }
  }
  if (!result.ok()) {
    fmt::print(stderr, "ferry: error: {}\n", result.status().message());
    return kExitRunFailed;
  }
  return job->state == bs::kCompleted ? kExitOk : kExitRunFailed;
}

}  // namespace ferry::cli
