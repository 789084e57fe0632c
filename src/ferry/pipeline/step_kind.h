#pragma once
// StepKind: one kind of pipeline step (command, sql, validate, transform, train, evaluate,
// register).
// Each kind lives in one file (`<kind>_step.cc`) and is added to the registry in one line of
// StepKindRegistry::Default() (step_kind.cc); the parser learns its keys from the registry, and
// the scheduler asks it for the process to launch. Built-in kinds run as `ferry task --kind K` in
// the task's folder (FERRY_WORKDIR), so that a container or a cluster node runs them exactly as a
// laptop does; RunTask is that process's body.
// Kinds are stateless and thread-safe.
//
// Example (a new kind):
//   class EchoStep final : public StepKind {
//     std::string name() const override { return "echo"; }
//     ...
//   };
//   // step_kind.cc, StepKindRegistry::Default(): r->Add(MakeEchoStep());

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/config/pipeline_spec.h"
#include "nlohmann/json.hpp"

namespace ferry::pipeline {

struct ResolvedStep;

// What a built-in kind's task process sees (the runner contract's folders, see workdir.h).
struct TaskContext {
  std::string workdir;      // runs/<pipeline>/<run>/<task> in the lake, as a local folder
  nlohmann::json step;      // the ResolvedStep as JSON
  nlohmann::json params;    // the frozen parameters
  std::string project_dir;  // FERRY_PROJECT_DIR: where ferry.yaml and the step's files are
  std::string lake_uri;     // FERRY_LAKE
  std::string run_id;       // FERRY_RUN_ID
  std::string pipeline;     // FERRY_PIPELINE
  std::string task;         // FERRY_TASK
  std::string run_ts;       // FERRY_RUN_TS: the run's start, "now" for checks of freshness
};

class StepKind {
 public:
  virtual ~StepKind() = default;
  // The kind key in YAML ("command").
  virtual std::string name() const = 0;
  // Keys besides the kind key that this kind accepts in a step.
  virtual std::set<std::string> extra_keys() const { return {}; }
  // Whether the kind key's value names an upstream step (`validate: extract`); it then becomes a
  // need of the step.
  virtual bool value_is_step() const { return false; }
  // Extra keys whose value also names an upstream step (evaluate's `on: features.test`).
  virtual std::set<std::string> step_keys() const { return {}; }
  // Whether a step of this kind may be a cache hit when the pipeline does not say (`cache:`).
  // False for kinds that read the outside world (a database may change under the same SQL).
  virtual bool DefaultCache() const { return true; }
  // Project-relative files the step reads (its .sql, its rules): hashed into the cache key.
  virtual std::vector<std::string> Files(const ResolvedStep&) const { return {}; }
  // Checks the kind's own fields (step.fields), adding an error per problem.
  // `project` gives the connections and the project folder (files the step names must exist).
  virtual void Validate(const config::StepSpec& step, const config::ProjectConfig& project,
                        config::Diagnostics* diags) const = 0;
  // The process of a resolved step. `self_exe` is the running ferry binary, for built-in kinds.
  virtual absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep& step,
                                                        const std::string& self_exe) const = 0;
  // The body of `ferry task` for built-in kinds; command-like kinds never get here.
  virtual absl::Status RunTask(const TaskContext& ctx) const;
};

class StepKindRegistry {
 public:
  void Add(std::unique_ptr<StepKind> kind);
  const StepKind* Find(const std::string& name) const;
  config::StepKindSchemas Schemas() const;
  // Every kind built into this binary.
  static const StepKindRegistry& Default();

 private:
  std::vector<std::unique_ptr<StepKind>> kinds_;
};

// Factories, one per kind file.
std::unique_ptr<StepKind> MakeCommandStep();
std::unique_ptr<StepKind> MakeSqlStep();
std::unique_ptr<StepKind> MakeValidateStep();
std::unique_ptr<StepKind> MakeTransformStep();
std::unique_ptr<StepKind> MakeTrainStep();
std::unique_ptr<StepKind> MakeEvaluateStep();
std::unique_ptr<StepKind> MakeRegisterStep();
std::unique_ptr<StepKind> MakeBatchStep();
std::unique_ptr<StepKind> MakeMonitorStep();
std::unique_ptr<StepKind> MakeInferenceLogStep();

// Parses and validates a pipeline file with the kinds of `registry`: config checks plus each
// kind's own checks, all errors reported at once.
absl::StatusOr<config::PipelineSpec> LoadAndValidate(const std::string& path,
                                                     const config::ProjectConfig& project,
                                                     const StepKindRegistry& registry,
                                                     config::Diagnostics* diags = nullptr);

}  // namespace ferry::pipeline
