// `ferry cancel RUN_ID`: stop a run. Its owner stops the tasks (SIGTERM, then SIGKILL after the
// grace period); a run whose owner is gone is cancelled here at once.

#include "ferry/cli/cli_common.h"
#include "ferry/exec/executor.h"
#include "ferry/pipeline/runner.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

int CancelMain(const GlobalOptions& g, const std::string& run_id) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  auto executor = exec::MakeExecutor(project->config.executor.kind);
  if (!executor.ok()) return Fail(executor.status());
  auto run = pipeline::CancelRun(*project->store, **executor, run_id);
  if (!run.ok()) return Fail(run.status());
  if (run->state == "cancelled") {
    fmt::print("run {} cancelled\n", run_id);
  } else {
    fmt::print("run {} is {}: its owner (pid {}) is stopping its tasks\n", run_id, run->state,
               run->owner_pid);
  }
  return kExitOk;
}

}  // namespace

void RegisterCancelCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto run_id = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("cancel", "Cancel a run");
  cmd->add_option("run_id", *run_id, "The run")->required();
  cmd->callback([&g, &rc, run_id] { rc = CancelMain(g, *run_id); });
}

}  // namespace ferry::cli
