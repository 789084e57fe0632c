// `ferry run PIPELINE [--param k=v ...] [--from T] [--only T]` and `ferry run --resume RUN_ID`.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "absl/strings/str_split.h"
#include "ferry/cli/cli_common.h"
#include "ferry/cli/progress.h"
#include "ferry/common/status.h"
#include "ferry/exec/executor.h"
#include "ferry/pipeline/runner.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

struct RunOptions {
  std::string pipeline_file;
  std::vector<std::string> params;
  std::string resume;
  std::vector<std::string> from;
  std::vector<std::string> only;
  std::string key;
  bool quiet = false;
};

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

// SIGINT/SIGTERM/SIGHUP are blocked except while the scheduler waits (LocalExecutor's ppoll), so
// they interrupt the wait and never a write to the store in the middle.
void InstallSignalHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigset_t block;
  sigemptyset(&block);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) {
    ::sigaction(s, &sa, nullptr);
    sigaddset(&block, s);
  }
  ::pthread_sigmask(SIG_BLOCK, &block, nullptr);
}

std::vector<std::string> SplitList(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const std::string& s : in) {
    for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) out.emplace_back(part);
  }
  return out;
}

int RunMain(const GlobalOptions& g, const RunOptions& o) {
  if (o.resume.empty() == o.pipeline_file.empty()) {
    return Fail(absl::InvalidArgumentError(
        "give a pipeline file to start a run, or --resume RUN_ID to resume one (not both)"));
  }
  if (!o.resume.empty() && (!o.from.empty() || !o.only.empty() || !o.params.empty())) {
    return Fail(absl::InvalidArgumentError(
        "--resume runs the frozen spec of the run: --param, --from and --only do not apply"));
  }
  if (!o.pipeline_file.empty()) {
    if (absl::Status s = CheckPipelineFile(o.pipeline_file); !s.ok()) return Fail(s);
  }
  absl::StatusOr<Project> project = OpenProject(g, o.pipeline_file);
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<std::unique_ptr<exec::Executor>> executor =
      exec::MakeExecutor(project->config.executor.kind);
  if (!executor.ok()) return Fail(executor.status());

  InstallSignalHandlers();
  TerminalProgress progress(stdout, ::isatty(STDOUT_FILENO) == 1, o.quiet, SystemClock::Get());
  pipeline::RunContext ctx{.project = &project->config,
                           .store = project->store.get(),
                           .lake = project->lake.get(),
                           .executor = executor->get(),
                           .clock = &SystemClock::Get(),
                           .kinds = &pipeline::StepKindRegistry::Default(),
                           .observer = &progress,
                           .cancel = &g_cancel,
                           .self_exe = SelfExe()};
  auto begin = [&](const pipeline::ResolvedPipeline& p) {
    absl::StatusOr<std::vector<state::TaskRunRecord>> tasks = ctx.store->GetTasks(p.run_id);
    progress.Begin(p, tasks.ok() ? *tasks : std::vector<state::TaskRunRecord>{});
  };

  absl::StatusOr<state::PipelineRunRecord> run;
  if (!o.resume.empty()) {
    run = pipeline::ResumeRun(ctx, o.resume, begin);
  } else {
    absl::StatusOr<config::PipelineSpec> spec = pipeline::LoadAndValidate(
        o.pipeline_file, project->config, pipeline::StepKindRegistry::Default());
    if (!spec.ok()) return Fail(spec.status());
    pipeline::RunRequest req;
    auto params = ParseParams(o.params);
    if (!params.ok()) return Fail(params.status());
    req.params = *std::move(params);
    req.from = SplitList(o.from);
    req.only = SplitList(o.only);
    req.idempotency_key = o.key;
    run = pipeline::StartRun(ctx, *spec, req, begin);
  }
  if (!run.ok()) return Fail(run.status());
  absl::StatusOr<std::vector<state::TaskRunRecord>> tasks = ctx.store->GetTasks(run->id);
  if (!tasks.ok()) return Fail(tasks.status());
  progress.End(*run, *tasks, project->lake->root_uri());
  if (run->state == state::run_state::kSucceeded) return kExitOk;
  if (run->state == state::run_state::kCancelled) return kExitCancelled;
  return kExitRunFailed;
}

}  // namespace

void RegisterRunCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run a pipeline now, or resume a run");
  cmd->add_option("pipeline", o->pipeline_file, "Pipeline YAML file, e.g. pipelines/train.yaml");
  cmd->add_option("-p,--param", o->params, "Set a parameter: NAME=VALUE (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--resume", o->resume, "Resume RUN_ID: re-run only what did not succeed");
  cmd->add_option("--from", o->from, "Run these steps and everything downstream (comma list)")
      ->allow_extra_args(false);
  cmd->add_option("--only", o->only, "Run only these steps (comma list)")->allow_extra_args(false);
  cmd->add_option("--idempotency-key", o->key,
                  "Refuse to start while a run of this pipeline with the same key is live");
  cmd->add_flag("-q,--quiet", o->quiet, "No per-task lines, only the summary");
  cmd->callback([&g, &rc, o] { rc = RunMain(g, *o); });
}

}  // namespace ferry::cli
