// `ferry render PIPELINE [--step S] [--param k=v]`: the fully resolved spec as a run would see
// it: parameters, resource templates merged, environment, argv. Nothing runs.

#include "ferry/cli/cli_common.h"
#include "ferry/common/clock.h"
#include "ferry/pipeline/resolve.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

struct RenderOptions {
  std::string pipeline_file;
  std::string step;
  std::vector<std::string> params;
};

int RenderMain(const GlobalOptions& g, const RenderOptions& o) {
  if (absl::Status s = CheckPipelineFile(o.pipeline_file); !s.ok()) return Fail(s);
  absl::StatusOr<Project> project = OpenProject(g, o.pipeline_file);
  if (!project.ok()) return Fail(project.status());
  const auto& kinds = pipeline::StepKindRegistry::Default();
  auto spec = pipeline::LoadAndValidate(o.pipeline_file, project->config, kinds);
  if (!spec.ok()) return Fail(spec.status());
  auto params = ParseParams(o.params);
  if (!params.ok()) return Fail(params.status());
  // A placeholder run id: {{ run.id }} renders as RUN_ID.
  auto resolved = pipeline::Resolve(*spec, project->config, kinds, *params, "RUN_ID",
                                    SystemClock::Get().Now(), SelfExe());
  if (!resolved.ok()) return Fail(resolved.status());
  nlohmann::json j = resolved->ToJson();
  if (!o.step.empty()) {
    const pipeline::ResolvedStep* s = resolved->FindStep(o.step);
    if (s == nullptr) {
      return Fail(absl::NotFoundError(
          fmt::format("pipeline '{}' has no step '{}'", resolved->name, o.step)));
    }
    nlohmann::json steps = j["steps"];
    j.erase("steps");
    for (const auto& st : steps) {
      if (st["name"] == o.step) j["step"] = st;
    }
  }
  fmt::print("{}\n", j.dump(2));
  return kExitOk;
}

}  // namespace

void RegisterRenderCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<RenderOptions>();
  CLI::App* cmd = app.add_subcommand("render", "Print the resolved spec of a pipeline or a step");
  cmd->add_option("pipeline", o->pipeline_file, "Pipeline YAML file")->required();
  cmd->add_option("-s,--step", o->step, "Only this step");
  cmd->add_option("-p,--param", o->params, "Set a parameter: NAME=VALUE (repeatable)")
      ->allow_extra_args(false);
  cmd->callback([&g, &rc, o] { rc = RenderMain(g, *o); });
}

}  // namespace ferry::cli
