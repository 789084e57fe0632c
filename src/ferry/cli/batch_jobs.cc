// Batch jobs on the command line (docs/batch.md):
//   ferry batch-jobs [--json] [--limit N]     the newest jobs: state, model, inputs, rows, bad
//   ferry batch-job show ID [--json]          its spec, state, per-file results and events
//   ferry batch-job stop ID                   running -> stopping (its owner stops after the file
//                                             in hand); a job whose owner died -> failed
//   ferry batch-job run ID                    (internal) runs a submitted job in this process

#include <unistd.h>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ferry/cli/batch_run.h"
#include "ferry/cli/cli_common.h"
#include "ferry/pipeline/runner.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;
namespace bs = state::batch_state;

std::string InputsText(const json& spec) {
  std::vector<std::string> inputs;
  for (const json& i : spec.value("inputs", json::array())) {
    if (i.is_string()) inputs.push_back(i.get<std::string>());
  }
  std::string text = inputs.empty() ? "-" : absl::StrJoin(inputs, ",");
  constexpr size_t kMax = 40;
  return text.size() > kMax ? text.substr(0, kMax - 3) + "..." : text;
}

std::string Duration(const state::JobRecord& j) {
  if (j.started_at == absl::InfinitePast()) return "-";
  return FormatSpan(j.started_at,
                    j.finished_at == absl::InfinitePast() ? absl::Now() : j.finished_at);
}

int BatchJobsMain(const GlobalOptions& g, bool as_json, int limit) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<std::vector<state::JobRecord>> jobs =
      project->store->ListJobs(std::string(state::BatchJobKind().name), /*subject=*/"", limit);
  if (!jobs.ok()) return Fail(jobs.status());
  if (as_json) {
    json out = json::array();
    for (const state::JobRecord& j : *jobs) {
      json one = BatchJobJson(*project->store, j, /*with_events=*/false);
      one["duration"] = Duration(j);
      out.push_back(std::move(one));
    }
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{:<24} {:<10} {:<16} {:<40} {:>10} {:>7}  {:<19}  {}\n", "ID", "STATE", "MODEL",
             "INPUTS", "ROWS", "BAD", "CREATED", "DURATION");
  for (const state::JobRecord& j : *jobs) {
    json spec = json::parse(j.spec_json, nullptr, false);
    json result = json::parse(j.result_json, nullptr, false);
    if (!spec.is_object()) spec = json::object();
    if (!result.is_object()) result = json::object();
    fmt::print("{:<24} {:<10} {:<16} {:<40} {:>10} {:>7}  {:<19}  {}\n", j.id, j.state, j.subject,
               InputsText(spec), result.value("rows", int64_t{0}), result.value("bad", int64_t{0}),
               ShowTime(j.created_at), Duration(j));
  }
  if (jobs->empty()) fmt::print("(none: start one with `ferry batch MODEL --input FILES`)\n");
  return kExitOk;
}

int BatchJobShowMain(const GlobalOptions& g, const std::string& id, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<state::JobRecord> job = GetJobOfKind(
      *project->store, id, state::BatchJobKind().name, "batch job", "ferry batch-jobs");
  if (!job.ok()) return Fail(job.status());
  json shown = BatchJobJson(*project->store, *job, /*with_events=*/true);
  if (as_json) {
    fmt::print("{}\n", shown.dump(2));
    return kExitOk;
  }
  const json& spec = shown["spec"];
  const json& result = shown["result"];
  fmt::print("batch job {}  state {}  model {}\n", job->id, job->state, job->subject);
  fmt::print("  created {}  started {}  finished {}  duration {}\n", ShowTime(job->created_at),
             ShowTime(job->started_at), ShowTime(job->finished_at), Duration(*job));
  if (!job->message.empty()) fmt::print("  message: {}\n", job->message);
  if (job->owner_pid > 0) fmt::print("  owner: pid {}@{}\n", job->owner_pid, job->owner_host);
  fmt::print("\nSPEC\n");
  for (const json& i : spec.value("inputs", json::array())) {
    fmt::print("  input   {}\n", i.is_string() ? i.get<std::string>() : i.dump());
  }
  const std::string output = spec.value("output", "");
  fmt::print("  output  {}\n",
             output.empty() ? fmt::format("batch/{}/output/ in the lake", id) : output);
  for (const auto& [key, value] : spec.items()) {
    if (key == "inputs" || key == "output") continue;
    fmt::print("  {:<7} {}\n", key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  fmt::print("\nFILES\n  {:>9} {:>9} {:>6} {:>8}  {}\n", "ROWS", "SCORED", "BAD", "SECONDS",
             "INPUT -> OUTPUT");
  for (const json& f : result.value("files", json::array())) {
    fmt::print("  {:>9} {:>9} {:>6} {:>8.2f}  {} -> {}{}\n", f.value("rows", int64_t{0}),
               f.value("scored", int64_t{0}), f.value("bad", int64_t{0}), f.value("seconds", 0.0),
               f.value("input", ""), f.value("output", ""),
               f.value("skipped", false) ? "  (skipped)" : "");
    if (!f.value("quarantine", "").empty()) {
      fmt::print("  {:>36}  bad rows: {}\n", "", f.value("quarantine", ""));
    }
  }
  fmt::print("  total: rows {}, scored {}, bad {}\n", result.value("rows", int64_t{0}),
             result.value("scored", int64_t{0}), result.value("bad", int64_t{0}));
  fmt::print("\nEVENTS\n");
  for (const json& e : shown["events"]) {
    fmt::print("  {}  {:<9} -> {:<9}  {}  ({})\n", e.value("at", ""),
               e.value("from", "").empty() ? "(new)" : e.value("from", ""), e.value("to", ""),
               e.value("reason", ""), e.value("actor", ""));
  }
  return kExitOk;
}

int BatchJobStopMain(const GlobalOptions& g, const std::string& id) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<state::JobRecord> job = GetJobOfKind(
      *project->store, id, state::BatchJobKind().name, "batch job", "ferry batch-jobs");
  if (!job.ok()) return Fail(job.status());
  state::PipelineRunRecord owner;
  owner.owner_pid = job->owner_pid;
  owner.owner_host = job->owner_host;
  const bool alive = pipeline::OwnerAlive(owner);
  const std::string actor = pipeline::ActorName("ferry batch-job stop");
  state::JobTransition t{.id = job->id,
                         .from = job->state,
                         .to = bs::kStopped,
                         .expected_version = job->version,
                         .reason = "`ferry batch-job stop`",
                         .actor = actor};
  if (job->state == bs::kQueued) {
    t.to = bs::kStopped;
  } else if ((job->state == bs::kRunning || job->state == bs::kStopping) && !alive) {
    t.to = bs::kFailed;
    t.reason = "the owner died";
    t.message = fmt::format(
        "the owner (pid {}@{}) died; run the same `ferry batch` again to "
        "resume it",
        job->owner_pid, job->owner_host);
  } else if (job->state == bs::kRunning) {
    t.to = bs::kStopping;
  } else if (job->state == bs::kStopping) {
    fmt::print(
        "batch job {} is already stopping: its owner (pid {}) stops after the file in "
        "hand\n",
        id, job->owner_pid);
    return kExitOk;
  } else {
    return Fail(absl::FailedPreconditionError(fmt::format(
        "batch job {} is {}: nothing to stop{}", id, job->state,
        job->state == bs::kCompleted ? "" : " (run the same `ferry batch` to resume it)")));
  }
  absl::StatusOr<state::JobRecord> after = project->store->TransitionJob(t);
  if (!after.ok()) return Fail(after.status());
  if (after->state == bs::kStopping) {
    fmt::print("batch job {} stopping: its owner (pid {}) finishes the file in hand and stops\n",
               id, after->owner_pid);
  } else {
    fmt::print("batch job {} {}{}\n", id, after->state,
               after->message.empty() ? "" : fmt::format(" — {}", after->message));
  }
  return kExitOk;
}

int BatchJobRunMain(const GlobalOptions& g, const std::string& id, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  return RunBatchJobHere(*project, id, as_json);
}

}  // namespace

void RegisterBatchJobsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto list_json = std::make_shared<bool>(false);
  auto limit = std::make_shared<int>(20);
  CLI::App* list = app.add_subcommand("batch-jobs", "List batch jobs, newest first");
  list->add_flag("--json", *list_json, "JSON output");
  list->add_option("--limit", *limit, "How many (default 20; 0 = all)")
      ->check(CLI::NonNegativeNumber);
  list->callback([&g, &rc, list_json, limit] { rc = BatchJobsMain(g, *list_json, *limit); });

  CLI::App* job = app.add_subcommand("batch-job", "Inspect, stop or run a batch job");
  job->require_subcommand(1);
  auto id = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* show =
      job->add_subcommand("show", "A batch job: its spec, state, per-file results and events");
  show->add_option("ID", *id, "The job (from `ferry batch-jobs`)")->required();
  show->add_flag("--json", *as_json, "JSON output");
  show->callback([&g, &rc, id, as_json] { rc = BatchJobShowMain(g, *id, *as_json); });

  CLI::App* stop = job->add_subcommand(
      "stop", "Stop a running batch job after the file in hand (resume it with the same command)");
  stop->add_option("ID", *id, "The job")->required();
  stop->callback([&g, &rc, id] { rc = BatchJobStopMain(g, *id); });

  // Internal: what `ferry batch` without --wait starts in the background.
  CLI::App* run = job->add_subcommand("run", "");
  run->group("");
  run->add_option("ID", *id, "The job")->required();
  run->add_flag("--json", *as_json, "JSON output");
  run->callback([&g, &rc, id, as_json] { rc = BatchJobRunMain(g, *id, *as_json); });
}

}  // namespace ferry::cli
