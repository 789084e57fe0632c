#include "ferry/pipeline/runner.h"

#include <signal.h>
#include <unistd.h>

#include <set>

#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/pipeline/checkpoint.h"
#include "ferry/pipeline/workdir.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::pipeline {

namespace ts = state::task_state;
namespace rs = state::run_state;

namespace {

std::string HostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::string ProcComm(int64_t pid) {
  absl::StatusOr<std::string> comm = ReadFile(fmt::format("/proc/{}/comm", pid));
  if (!comm.ok()) return "";
  std::string s = *comm;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The tasks to run for --only / --from, and a check that everything upstream of them is a cache
// hit (they will reuse those outputs).
absl::StatusOr<Selection> Select(const RunContext& ctx, const ResolvedPipeline& p,
                                 const RunRequest& req) {
  Selection sel;
  if (req.from.empty() && req.only.empty()) return sel;
  sel.active = true;
  auto check = [&](const std::string& name, std::string_view flag) -> absl::Status {
    if (p.FindStep(name) == nullptr) {
      std::vector<std::string> names;
      for (const ResolvedStep& s : p.steps) names.push_back(s.name);
      return absl::InvalidArgumentError(
          fmt::format("{} {}: pipeline '{}' has no step '{}'; steps: {}", flag, name, p.name, name,
                      fmt::join(names, ", ")));
    }
    return absl::OkStatus();
  };
  for (const std::string& n : req.only) {
    FERRY_RETURN_IF_ERROR(check(n, "--only"));
    sel.selected.insert(n);
  }
  for (const std::string& n : req.from) {
    FERRY_RETURN_IF_ERROR(check(n, "--from"));
    sel.selected.insert(n);
  }
  if (!req.from.empty()) {
    // Steps are in topological order: one forward pass collects every descendant.
    for (const ResolvedStep& s : p.steps) {
      for (const std::string& need : s.needs) {
        if (sel.selected.count(need) &&
            std::find(req.only.begin(), req.only.end(), need) == req.only.end()) {
          sel.selected.insert(s.name);
        }
      }
    }
  }
  // Upstream of the selection: must be cache hits, checked in topological order.
  std::set<std::string> needed;
  for (auto it = p.steps.rbegin(); it != p.steps.rend(); ++it) {
    if (sel.selected.count(it->name) || needed.count(it->name)) {
      for (const std::string& need : it->needs) {
        if (!sel.selected.count(need)) needed.insert(need);
      }
    }
  }
  std::map<std::string, std::string> hashes;
  for (const ResolvedStep& s : p.steps) {
    if (!needed.count(s.name)) continue;
    std::map<std::string, std::string> upstream;
    for (const std::string& need : s.needs) upstream[need] = hashes[need];
    FERRY_ASSIGN_OR_RETURN(std::string key, CacheKey(p, s, upstream));
    absl::StatusOr<state::CheckpointRecord> hit = ctx.store->GetCheckpoint(key);
    if (!hit.ok() || !ctx.lake->CheckCommitted(hit->output_uri).ok()) {
      return absl::FailedPreconditionError(fmt::format(
          "step '{}' is upstream of the selected steps and has no checkpoint for its current "
          "inputs; run the pipeline without --only/--from first, or select '{}' too",
          s.name, s.name));
    }
    hashes[s.name] = hit->output_hash;
  }
  return sel;
}

absl::StatusOr<state::PipelineRunRecord> TakeOwnership(const RunContext& ctx,
                                                       const state::PipelineRunRecord& run,
                                                       const std::string& reason,
                                                       const std::string& actor) {
  return ctx.store->TransitionRun({.id = run.id,
                                   .from = run.state,
                                   .to = rs::kRunning,
                                   .expected_version = run.version,
                                   .reason = reason,
                                   .actor = actor,
                                   .owner_pid = ::getpid(),
                                   .owner_host = HostName(),
                                   .message = ""});
}

// The run's parameter files; every task's input/config links to them (workdir.h).
absl::Status WriteParams(const RunContext& ctx, const ResolvedPipeline& p) {
  FERRY_ASSIGN_OR_RETURN(std::string key, storage::layout::RunParams(p.name, p.run_id));
  FERRY_RETURN_IF_ERROR(ctx.lake->Put(key, p.params.dump(2) + "\n"));
  FERRY_ASSIGN_OR_RETURN(key, storage::layout::RunHyperparameters(p.name, p.run_id));
  return ctx.lake->Put(key, HyperparametersOf(p.params).dump(2) + "\n");
}

SchedulerDeps Deps(const RunContext& ctx, const std::string& actor) {
  return SchedulerDeps{.store = ctx.store,
                       .lake = ctx.lake,
                       .executor = ctx.executor,
                       .clock = ctx.clock,
                       .observer = ctx.observer,
                       .cancel = ctx.cancel,
                       .actor = actor};
}

}  // namespace

std::string ActorName(std::string_view command) {
  return fmt::format("{} pid {}@{}", command, ::getpid(), HostName());
}

bool OwnerAlive(const state::PipelineRunRecord& run) {
  if (run.owner_pid <= 0 || run.owner_host != HostName()) return false;
  if (::kill(static_cast<pid_t>(run.owner_pid), 0) != 0) return false;
  // A live pid might have been reused by another program: it must be a ferry too.
  return ProcComm(run.owner_pid) == ProcComm(::getpid());
}

absl::StatusOr<state::PipelineRunRecord> StartRun(
    const RunContext& ctx, const config::PipelineSpec& spec, const RunRequest& req,
    const std::function<void(const ResolvedPipeline&)>& on_created) {
  std::string actor = ActorName("ferry run");
  std::string run_id = NewRunId(*ctx.clock);
  FERRY_ASSIGN_OR_RETURN(ResolvedPipeline p, Resolve(spec, *ctx.project, *ctx.kinds, req.params,
                                                     run_id, ctx.clock->Now(), ctx.self_exe));
  FERRY_ASSIGN_OR_RETURN(Selection sel, Select(ctx, p, req));
  state::NewRun nr{.id = run_id,
                   .pipeline = p.name,
                   .pipeline_file = p.file,
                   .idempotency_key = req.idempotency_key,
                   .params_json = p.params.dump(),
                   .spec_json = p.ToJson().dump(),
                   .tasks = {},
                   .actor = actor};
  for (const ResolvedStep& s : p.steps) nr.tasks.push_back(s.name);
  FERRY_ASSIGN_OR_RETURN(state::PipelineRunRecord run, ctx.store->CreateRun(nr));
  FERRY_RETURN_IF_ERROR(WriteParams(ctx, p));
  FERRY_RETURN_IF_ERROR(TakeOwnership(ctx, run, "started", actor).status());
  if (on_created) on_created(p);
  Scheduler scheduler(Deps(ctx, actor), p, std::move(sel));
  return scheduler.Drive();
}

absl::StatusOr<state::PipelineRunRecord> ResumeRun(
    const RunContext& ctx, const std::string& run_id,
    const std::function<void(const ResolvedPipeline&)>& on_resumed) {
  std::string actor = ActorName("ferry run --resume");
  FERRY_ASSIGN_OR_RETURN(state::PipelineRunRecord run, ctx.store->GetRun(run_id));
  if (run.state == rs::kSucceeded) {
    return absl::FailedPreconditionError(
        fmt::format("run {} already succeeded; there is nothing to resume", run_id));
  }
  if (run.state == rs::kRunning || run.state == rs::kCancelling) {
    if (OwnerAlive(run)) {
      return absl::FailedPreconditionError(fmt::format(
          "run {} is being driven by pid {} on {}; wait for it, or `ferry cancel {}` first", run_id,
          run.owner_pid, run.owner_host, run_id));
    }
    FERRY_ASSIGN_OR_RETURN(
        run, ctx.store->TransitionRun({.id = run.id,
                                       .from = run.state,
                                       .to = rs::kFailed,
                                       .expected_version = run.version,
                                       .reason = fmt::format("its owner (pid {} on {}) died",
                                                             run.owner_pid, run.owner_host),
                                       .actor = actor,
                                       .owner_pid = 0,
                                       .message = "owner died"}));
  }
  FERRY_ASSIGN_OR_RETURN(ResolvedPipeline p,
                         ResolvedPipeline::FromJson(nlohmann::json::parse(run.spec_json)));

  // Tasks the dead owner left running: finished and committed ones count as succeeded; the
  // others are stopped and will run again.
  FERRY_ASSIGN_OR_RETURN(std::vector<state::TaskRunRecord> tasks, ctx.store->GetTasks(run_id));
  std::vector<state::TaskTransition> batch;
  for (const state::TaskRunRecord& t : tasks) {
    if (t.state != ts::kRunning) continue;
    FERRY_ASSIGN_OR_RETURN(std::string dir_key, storage::layout::TaskDir(p.name, run_id, t.task));
    state::TaskTransition tr{
        .run_id = run_id, .task = t.task, .from = ts::kRunning, .expected_version = t.version};
    if (ctx.lake->CheckCommitted(dir_key).ok()) {
      FERRY_ASSIGN_OR_RETURN(std::string manifest_text,
                             ctx.lake->Get(storage::layout::ManifestOf(dir_key)));
      nlohmann::json manifest = nlohmann::json::parse(manifest_text);
      tr.to = ts::kSucceeded;
      tr.reason = "its checkpoint was committed before the owner died";
      tr.exit_code = 0;
      tr.output_uri = dir_key;
      tr.output_hash = manifest.value("output_hash", "");
      tr.message = "";
      const ResolvedStep* step = p.FindStep(t.task);
      if (!t.cache_key.empty() && step != nullptr && step->cache) {
        FERRY_RETURN_IF_ERROR(ctx.store->PutCheckpoint({.cache_key = t.cache_key,
                                                        .pipeline = p.name,
                                                        .run_id = run_id,
                                                        .task = t.task,
                                                        .output_uri = dir_key,
                                                        .output_hash = *tr.output_hash,
                                                        .created_at = ctx.clock->Now()}));
      }
    } else {
      FERRY_RETURN_IF_ERROR(ctx.executor->KillOrphan(t.pid));
      tr.to = ts::kFailed;
      tr.reason = "its owner died while it ran";
      tr.message = "owner died";
    }
    batch.push_back(std::move(tr));
  }
  FERRY_RETURN_IF_ERROR(ctx.store->TransitionTasks(batch, actor).status());
  batch.clear();
  FERRY_ASSIGN_OR_RETURN(tasks, ctx.store->GetTasks(run_id));
  for (const state::TaskRunRecord& t : tasks) {
    // Checkpoints are committed in order but flushed by the OS (Durability::kOrdered): after a
    // power loss a task may be recorded done while its checkpoint is gone. It runs again.
    if ((t.state == ts::kSucceeded || t.state == ts::kCached) &&
        !ctx.lake->CheckCommitted(t.output_uri).ok()) {
      batch.push_back({.run_id = run_id,
                       .task = t.task,
                       .from = t.state,
                       .to = ts::kPending,
                       .expected_version = t.version,
                       .reason = fmt::format("resume: checkpoint {} is gone", t.output_uri)});
      continue;
    }
    if (t.state == ts::kFailed || t.state == ts::kUpstreamFailed || t.state == ts::kCancelled ||
        t.state == ts::kSkipped) {
      batch.push_back({.run_id = run_id,
                       .task = t.task,
                       .from = t.state,
                       .to = ts::kPending,
                       .expected_version = t.version,
                       .reason = "resume"});
    }
  }
  FERRY_RETURN_IF_ERROR(ctx.store->TransitionTasks(batch, actor).status());
  FERRY_RETURN_IF_ERROR(WriteParams(ctx, p));
  FERRY_RETURN_IF_ERROR(TakeOwnership(ctx, run, "resume", actor).status());
  if (on_resumed) on_resumed(p);
  Scheduler scheduler(Deps(ctx, actor), p, Selection{});
  return scheduler.Drive();
}

absl::StatusOr<state::PipelineRunRecord> CancelRun(state::StateStore& store,
                                                   exec::Executor& executor,
                                                   const std::string& run_id) {
  std::string actor = ActorName("ferry cancel");
  FERRY_ASSIGN_OR_RETURN(state::PipelineRunRecord run, store.GetRun(run_id));
  if (state::IsTerminal(state::PipelineRunKind(), run.state)) {
    return absl::FailedPreconditionError(fmt::format(
        "run {} has already ended ({}); there is nothing to cancel", run_id, run.state));
  }
  if (run.state == rs::kQueued) {
    return store.TransitionRun({.id = run_id,
                                .from = rs::kQueued,
                                .to = rs::kCancelled,
                                .expected_version = run.version,
                                .reason = "ferry cancel",
                                .actor = actor,
                                .message = "cancelled before it started"});
  }
  if (run.state == rs::kRunning) {
    FERRY_ASSIGN_OR_RETURN(run, store.TransitionRun({.id = run_id,
                                                     .from = rs::kRunning,
                                                     .to = rs::kCancelling,
                                                     .expected_version = run.version,
                                                     .reason = "ferry cancel",
                                                     .actor = actor,
                                                     .message = "cancelled by ferry cancel"}));
  }
  if (OwnerAlive(run)) {
    ::kill(static_cast<pid_t>(run.owner_pid), SIGTERM);
    return run;
  }
  // Nobody drives the run: stop what is left of its tasks and close it here.
  FERRY_ASSIGN_OR_RETURN(std::vector<state::TaskRunRecord> tasks, store.GetTasks(run_id));
  std::vector<state::TaskTransition> batch;
  for (const state::TaskRunRecord& t : tasks) {
    if (state::IsTerminal(state::TaskRunKind(), t.state)) continue;
    if (t.state == ts::kRunning) FERRY_RETURN_IF_ERROR(executor.KillOrphan(t.pid));
    batch.push_back({.run_id = run_id,
                     .task = t.task,
                     .from = t.state,
                     .to = ts::kCancelled,
                     .expected_version = t.version,
                     .reason = "ferry cancel (owner gone)"});
  }
  FERRY_RETURN_IF_ERROR(store.TransitionTasks(batch, actor).status());
  return store.TransitionRun({.id = run_id,
                              .from = run.state,
                              .to = rs::kCancelled,
                              .expected_version = run.version,
                              .reason = "owner gone",
                              .actor = actor,
                              .owner_pid = 0,
                              .message = run.message});
}

}  // namespace ferry::pipeline
