// ferry batch MODEL_REF --input PATTERN [--input PATTERN ...] [--output URI] [--threads N]
//             [--max-bad-rows N] [--max-bad-fraction F] [--log-endpoint E] [--time-column C]
//             [--wait] [--json]
// Scores files with a registered model (batch/batch_job.h, docs/batch.md). With --wait the job
// runs in this process (progress on stderr, summary on stdout); without, a detached
// `ferry batch-job run ID` runs it and this prints the job id at once. The same command again
// resumes the same job: the submission's idempotency key is the resolved spec.

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/time/clock.h"
#include "ferry/batch/batch_job.h"
#include "ferry/cli/batch_run.h"
#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/pipeline/runner.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace ferry::cli {
namespace {

using json = nlohmann::json;
namespace bs = state::batch_state;

struct BatchOptions {
  std::string model_ref;
  std::vector<std::string> inputs;
  std::string output;
  int threads = 0;
  int64_t max_bad_rows = batch::BadRowPolicy().max_bad_rows;
  double max_bad_fraction = batch::BadRowPolicy().max_bad_fraction;
  std::string log_endpoint;
  std::string time_column;
  bool wait = false;
  bool as_json = false;
};

// A local path as given on the command line is relative to the current folder; the job runs
// elsewhere (a detached process, a resumed run from another folder), so it keeps the absolute
// path. URIs (lake://, s3://, file://) stay as they are.
std::string Absolute(const std::string& path) {
  if (path.empty() || path.find("://") != std::string::npos) return path;
  return std::filesystem::absolute(path).lexically_normal().string();
}

bool OwnerAlive(const state::JobRecord& job) {
  state::PipelineRunRecord as_run;
  as_run.owner_pid = job.owner_pid;
  as_run.owner_host = job.owner_host;
  return pipeline::OwnerAlive(as_run);
}

// Starts `ferry -C ROOT batch-job run ID` in a session of its own (so that the terminal's Ctrl-C
// does not reach it), its stdout and stderr appended to `log_path`. Returns its pid.
absl::StatusOr<pid_t> SpawnDetached(const std::string& root, const std::string& job_id,
                                    const std::string& log_path) {
  FERRY_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(log_path).parent_path().string()));
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  const std::string exe = SelfExe();
  std::vector<std::string> args = {"ferry", "-C", root, "batch-job", "run", job_id};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    return absl::InternalError(
        fmt::format("cannot start `{} batch-job run {}`: {}", exe, job_id, std::strerror(err)));
  }
  return pid;
}

int BatchMain(const GlobalOptions& g, const BatchOptions& o) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  batch::BatchSpec spec;
  spec.model_ref = o.model_ref;
  for (const std::string& in : o.inputs) spec.inputs.push_back(Absolute(in));
  spec.output = Absolute(o.output);
  spec.threads = o.threads;
  spec.bad_rows.max_bad_rows = o.max_bad_rows;
  spec.bad_rows.max_bad_fraction = o.max_bad_fraction;
  spec.log_endpoint = o.log_endpoint;
  spec.time_column = o.time_column;

  const absl::Time before = absl::Now() - absl::Seconds(1);
  absl::StatusOr<state::JobRecord> job =
      batch::SubmitBatchJob(*project->store, *project->lake, project->config.root_dir, spec,
                            SystemClock::Get(), pipeline::ActorName("ferry batch"));
  if (!job.ok()) return Fail(job.status());
  const bool existing = job->state != bs::kQueued || job->created_at < before;

  if (job->state == bs::kCompleted) {
    // The same model version, inputs and output were scored already: nothing to do.
    if (o.as_json) {
      fmt::print("{}\n", BatchJobJson(*project->store, *job, false).dump(2));
    } else {
      fmt::print(
          "batch job {} already completed these inputs with {}: see `ferry batch-job show {}`\n",
          job->id, job->subject, job->id);
    }
    return kExitOk;
  }
  if (existing) {
    auto [done, total] = CommittedFiles(*project->lake, *job);
    fmt::print(stderr, "resuming batch job {}: {} of {} files already committed\n", job->id, done,
               total);
  }
  if (o.wait) return RunBatchJobHere(*project, job->id, o.as_json);

  if ((job->state == bs::kRunning || job->state == bs::kStopping) && OwnerAlive(*job)) {
    fmt::print("batch job {} is already {} (pid {}); follow it with `ferry batch-job show {}`\n",
               job->id, job->state, job->owner_pid, job->id);
    return kExitOk;
  }
  const std::string log_path =
      fmt::format("{}/.ferry/batch/{}.log", project->config.root_dir, job->id);
  absl::StatusOr<pid_t> pid = SpawnDetached(project->config.root_dir, job->id, log_path);
  if (!pid.ok()) return Fail(pid.status());
  if (o.as_json) {
    fmt::print("{}\n", json{{"id", job->id},
                            {"state", job->state},
                            {"model", job->subject},
                            {"pid", *pid},
                            {"log", log_path},
                            {"resumed", existing}}
                           .dump(2));
  } else {
    fmt::print("batch job {} submitted: running in the background (pid {}, log {})\n", job->id,
               *pid, log_path);
    fmt::print("follow it with `ferry batch-job show {}`, stop it with `ferry batch-job stop {}`\n",
               job->id, job->id);
  }
  return kExitOk;
}

}  // namespace

void RegisterBatchCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<BatchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "batch", "Score files (CSV, JSONL, .zst; in the lake or on disk) with a registered model");
  cmd->add_option("MODEL_REF", o->model_ref, "The model version: churn:7, churn:champion, churn")
      ->required();
  cmd->add_option("--input", o->inputs,
                  "Files to score: a path or glob on disk (data/*.csv) or in the lake "
                  "(lake://incoming/2026-11-*.csv); repeatable")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--output", o->output,
                  "Where the scored files go: a lake folder (lake://scores/2026-11) or a local "
                  "folder (default: batch/<job-id>/output/ in the lake)");
  cmd->add_option("--threads", o->threads, "Scoring threads (default: one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-bad-rows", o->max_bad_rows,
                  "A file with more bad rows than this fails the job (default 1000)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-bad-fraction", o->max_bad_fraction,
                  "A file with a larger share of bad rows fails the job (default 0.01)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--log-endpoint", o->log_endpoint,
                  "Also write each scored row to this endpoint's inference log (mode batch)");
  cmd->add_option("--time-column", o->time_column,
                  "With --log-endpoint: the column with each row's time (ISO 8601 or unix "
                  "seconds; default now)");
  cmd->add_flag("--wait", o->wait,
                "Run the job in this process with a progress bar; exit 0 when it completes, 1 "
                "when it fails");
  cmd->add_flag("--json", o->as_json, "JSON output");
  cmd->callback([&g, &rc, o] { rc = BatchMain(g, *o); });
}

}  // namespace ferry::cli
