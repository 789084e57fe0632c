#pragma once
// Resolution: turns a validated PipelineSpec into the frozen, fully rendered form a run executes.
// It happens once, when a run starts: parameters (pipeline defaults < ferry.yaml `params` <
// --param), templates (`{{ params.x }}`, `{{ run.date }}`, ...), resource templates merged with
// the step's own fields, and the argv of each step. The result is stored with the run as JSON,
// so that `--resume` runs exactly what the first start decided: no task reads the clock or the
// config again. Stateless functions; thread-safe.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(ResolvedPipeline p,
//       Resolve(spec, project, registry, {{"n", "5"}}, run_id, clock.Now(), self_exe));
//   std::string frozen = p.ToJson().dump();

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/config/pipeline_spec.h"
#include "ferry/config/project.h"
#include "ferry/config/resources.h"
#include "ferry/pipeline/step_kind.h"
#include "nlohmann/json.hpp"

namespace ferry::pipeline {

struct ResolvedStep {
  std::string name;
  std::string kind;
  std::vector<std::string> needs;
  config::Resources resources;
  nlohmann::json fields = nlohmann::json::object();  // rendered
  std::vector<std::string> files;                    // project-relative, rendered
  bool cache = true;
  std::vector<std::string> argv;
};

struct ResolvedPipeline {
  std::string name;
  std::string file;         // absolute path of the YAML
  std::string project_dir;  // absolute
  std::string run_id;
  std::string executor;  // executor kind
  int max_parallel = 1;
  absl::Duration kill_grace = absl::Seconds(10);
  nlohmann::json params = nlohmann::json::object();
  std::map<std::string, std::string> vars;  // run.id, run.date, run.ts, run.pipeline, today
  std::vector<ResolvedStep> steps;          // topological order

  const ResolvedStep* FindStep(const std::string& name) const;
  nlohmann::json ToJson() const;
  static absl::StatusOr<ResolvedPipeline> FromJson(const nlohmann::json& j);
};

// `overrides` are --param NAME=VALUE pairs: each NAME must be declared by the pipeline (else
// InvalidArgument listing the declared ones) and VALUE is converted to the type of the default
// (InvalidArgument when it does not fit).
absl::StatusOr<ResolvedPipeline> Resolve(
    const config::PipelineSpec& spec, const config::ProjectConfig& project,
    const StepKindRegistry& registry,
    const std::vector<std::pair<std::string, std::string>>& overrides, const std::string& run_id,
    absl::Time start, const std::string& self_exe);

nlohmann::json ResourcesToJson(const config::Resources& r);
nlohmann::json StepToJson(const ResolvedStep& s);

}  // namespace ferry::pipeline
