// `ferry task --kind K`: the process of a built-in step kind. The scheduler launches it through
// the Executor like any other task, in the task's working folder (FERRY_WORKDIR), so a container
// or a cluster node runs built-in steps exactly as a laptop does.

#include <cstdlib>

#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/pipeline/step_kind.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

int TaskMain(const std::string& kind_name) {
  const pipeline::StepKind* kind = pipeline::StepKindRegistry::Default().Find(kind_name);
  if (kind == nullptr) {
    return Fail(absl::InvalidArgumentError(fmt::format("no built-in step kind '{}'", kind_name)));
  }
  const char* workdir = std::getenv("FERRY_WORKDIR");
  if (workdir == nullptr) {
    return Fail(absl::InvalidArgumentError(
        "FERRY_WORKDIR is not set: `ferry task` is started by the scheduler, not by hand"));
  }
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  pipeline::TaskContext ctx;
  ctx.workdir = workdir;
  ctx.project_dir = env("FERRY_PROJECT_DIR");
  ctx.lake_uri = env("FERRY_LAKE");
  ctx.run_id = env("FERRY_RUN_ID");
  ctx.pipeline = env("FERRY_PIPELINE");
  ctx.task = env("FERRY_TASK");
  ctx.run_ts = env("FERRY_RUN_TS");
  auto step = ReadFile(ctx.workdir + "/input/config/step.json");
  if (!step.ok()) return Fail(step.status());
  auto params = ReadFile(ctx.workdir + "/input/config/params.json");
  if (!params.ok()) return Fail(params.status());
  ctx.step = nlohmann::json::parse(*step, nullptr, false);
  ctx.params = nlohmann::json::parse(*params, nullptr, false);
  absl::Status s = kind->RunTask(ctx);
  if (!s.ok()) {
    // The runner contract: a failing task leaves its reason in output/failure.
    (void)WriteFileAtomic(ctx.workdir + "/output/failure", std::string(s.message()), false);
    return Fail(s);
  }
  return kExitOk;
}

}  // namespace

void RegisterTaskCommand(CLI::App& app, GlobalOptions&, int& rc) {
  auto kind = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("task", "Run one built-in task (started by the scheduler)");
  cmd->add_option("--kind", *kind, "The step kind")->required();
  cmd->group("");  // internal: hidden from the help listing
  cmd->callback([&rc, kind] { rc = TaskMain(*kind); });
}

}  // namespace ferry::cli
