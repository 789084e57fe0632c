#pragma once
// The runner contract (docs/contract.md): the working folder a task's process gets, laid out like
// SageMaker's /opt/ml, and the environment variables that point into it.
//
//   <task dir>/input/config/hyperparameters.json   parameters, values as strings (SageMaker)
//   <task dir>/input/config/params.json            the same, with their JSON types
//   <task dir>/input/data/<upstream>/              one channel per `needs` entry: the upstream
//                                                  task's output/data (a symlink)
//   <task dir>/model/                              SM_MODEL_DIR: the model to save
//   <task dir>/output/data/                        SM_OUTPUT_DATA_DIR: data for downstream tasks
//   <task dir>/output/failure                      a message the task writes when it fails
//   <task dir>/logs/<attempt>.log                  stdout and stderr
//
// Stateless functions; thread-safe.

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "ferry/pipeline/resolve.h"
#include "nlohmann/json.hpp"

namespace ferry::pipeline {

// The run's parameters as SageMaker hyperparameters: every value a string (a JSON string's
// value as is, any other value as its JSON text).
nlohmann::json HyperparametersOf(const nlohmann::json& params);

// Lays out the folder for an attempt: empties model/ and output/ (a retry starts clean), links
// each channel (upstream name -> that upstream task's local folder) and gives it the parameters.
//
// The parameter files are hard links to the run's own params.json and hyperparameters.json
// (`run_files`, local paths; the runner writes them before any task starts): the run's tasks
// share one copy, and a task's folder costs two fewer new files. Where no link can be made (a
// file system without hard links, a run folder without the files) the task gets its own copy.
struct RunFiles {
  std::string params;           // runs/<pipeline>/<run-id>/params.json
  std::string hyperparameters;  // runs/<pipeline>/<run-id>/hyperparameters.json
};
absl::Status LayOutWorkdir(const ResolvedPipeline& p, const ResolvedStep& step,
                           const RunFiles& run_files, const std::string& task_dir,
                           const std::map<std::string, std::string>& channels);

// The process's environment for an attempt in a folder laid out by LayOutWorkdir: SM_* and
// FERRY_* variables plus the step's `env`.
std::map<std::string, std::string> WorkdirEnvironment(
    const ResolvedPipeline& p, const ResolvedStep& step, int attempt, const std::string& task_dir,
    const std::map<std::string, std::string>& channels, const std::string& lake_uri);

// The failure message a task left in output/failure (first 4 KiB), or "" when none.
std::string ReadFailureMessage(const std::string& task_dir);

}  // namespace ferry::pipeline
