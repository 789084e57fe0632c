#pragma once
// PipelineSpec: the typed form of a pipeline YAML file, and its validation. Parsing checks the
// structure (unknown keys, bad types, unknown `needs`, cycles, unknown templates, template
// expressions that name nothing) and reports every error with file:line:column in one go.
// Resolution of parameters and templates happens later, once, when a run starts (pipeline/).
//
// Example (pipelines/train.yaml):
//   name: train                       # default: the file's stem
//   description: nightly churn model
//   params: { since: "{{ run.date }}", n: 10 }
//   max_parallel: 4                   # default: ferry.yaml executor.max_parallel
//   steps:
//     prepare:
//       command: python3 steps/prepare.py --since {{ params.since }}
//       files: [steps/prepare.py]     # their content is part of the cache key
//       template: small
//       retries: 2
//     train:
//       needs: [prepare]
//       command: ["python3", "steps/train.py"]
//       timeout: 30m
//
// A step has exactly one *kind key* (command, and later sql, validate, transform, train, ...);
// the step kinds known to the binary are passed in as a StepKindSchemas so that config/ does not
// depend on the modules that implement them. Not thread-safe; immutable after parsing.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/config/diagnostics.h"
#include "ferry/config/project.h"
#include "ferry/config/resources.h"
#include "nlohmann/json.hpp"

namespace ferry::config {

// What the parser knows of a step kind.
struct StepKindSchema {
  std::set<std::string> keys;  // the keys it accepts besides its kind key
  // The kind key's value names an upstream step (`validate: extract`, or `train: features.train`
  // with a part after the dot): the parser adds it to the step's needs and checks it like one.
  bool value_is_step = false;
  // Other keys whose value names an upstream step the same way (`on: features.test`).
  std::set<std::string> step_keys;
};
// For each step kind, by its kind key (also the kind's name).
using StepKindSchemas = std::map<std::string, StepKindSchema>;

struct ParamSpec {
  std::string name;
  nlohmann::json default_value;  // scalar: string, integer, float or bool (strings may template)
  SourceLoc loc;
};

struct StepSpec {
  std::string name;
  SourceLoc loc;                   // of the step's name
  std::string kind;                // "command", ...
  std::vector<std::string> needs;  // upstream steps
  std::string template_name;       // empty = none
  ResourceSpec overrides;          // the step's own resource fields
  std::vector<std::string> files;  // project-relative files hashed into the cache key
  std::optional<bool> cache;       // false: never a cache hit; unset: the kind's default
  std::string description;
  // The kind key's value and the kind's other keys, as JSON (e.g. {"command": "echo hi"} or
  // {"command": ["python3", "x.py"]}), and where each was written.
  nlohmann::json fields = nlohmann::json::object();
  std::map<std::string, SourceLoc> field_locs;
};

struct PipelineSpec {
  std::string file;  // as given
  std::string name;
  std::string description;
  std::vector<ParamSpec> params;  // in file order
  int max_parallel = 0;           // 0 = the project's executor setting
  std::vector<StepSpec> steps;    // in file order
  const StepSpec* FindStep(const std::string& name) const;
};

// Parses and validates `path`. On errors, returns InvalidArgument whose message lists them all
// (Diagnostics::ToString); `diags`, when given, receives them as structured items.
// The same, returning what could be parsed even when there are errors (added to `diags`), so
// that later checks (of the step kinds) can report theirs in the same pass.
PipelineSpec ParsePipeline(const std::string& path, const ProjectConfig& project,
                           const StepKindSchemas& kinds, Diagnostics* diags);
absl::StatusOr<PipelineSpec> LoadPipeline(const std::string& path, const ProjectConfig& project,
                                          const StepKindSchemas& kinds,
                                          Diagnostics* diags = nullptr);

// Step names in an order where every step comes after its needs (stable: file order on ties).
std::vector<std::string> TopologicalOrder(const PipelineSpec& spec);

}  // namespace ferry::config
