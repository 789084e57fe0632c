// `ferry logs RUN_ID [TASK] [--attempt N]`: the stdout/stderr of a run's tasks.

#include "ferry/cli/cli_common.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

struct LogsOptions {
  std::string run_id;
  std::string task;
  int attempt = 0;  // 0 = all
};

int LogsMain(const GlobalOptions& g, const LogsOptions& o) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  auto tasks = project->store->GetTasks(o.run_id);
  if (!tasks.ok()) return Fail(tasks.status());
  if (tasks->empty()) {
    auto run = project->store->GetRun(o.run_id);
    if (!run.ok()) return Fail(run.status());
  }
  bool found = o.task.empty();
  for (const auto& t : *tasks) {
    if (!o.task.empty() && t.task != o.task) continue;
    found = true;
    auto attempts = project->store->GetAttempts(o.run_id, t.task);
    if (!attempts.ok()) return Fail(attempts.status());
    for (const auto& a : *attempts) {
      if (o.attempt && a.attempt != o.attempt) continue;
      fmt::print("==> {} attempt {} ({}) <==\n", t.task, a.attempt,
                 a.outcome.empty() ? "running" : a.outcome);
      auto text = project->lake->Get(a.log_uri);
      if (text.ok()) {
        fmt::print("{}", *text);
        if (!text->empty() && text->back() != '\n') fmt::print("\n");
      } else {
        fmt::print("(no log: {})\n", text.status().message());
      }
    }
  }
  if (!found) {
    return Fail(absl::NotFoundError(fmt::format("run {} has no task '{}'", o.run_id, o.task)));
  }
  return kExitOk;
}

}  // namespace

void RegisterLogsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<LogsOptions>();
  CLI::App* cmd = app.add_subcommand("logs", "Print the logs of a run's tasks");
  cmd->add_option("run_id", o->run_id, "The run")->required();
  cmd->add_option("task", o->task, "Only this task");
  cmd->add_option("--attempt", o->attempt, "Only this attempt (1-based)");
  cmd->callback([&g, &rc, o] { rc = LogsMain(g, *o); });
}

}  // namespace ferry::cli
