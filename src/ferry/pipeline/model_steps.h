#pragma once
// What the model step kinds (train, evaluate, register) share: the registry (the project's state
// store), folder copies, the `model:` field, and running a Python model's command under the
// runner contract (docs/python-models.md). Stateless functions; thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/config/diagnostics.h"
#include "ferry/config/pipeline_spec.h"
#include "ferry/data/table.h"
#include "ferry/model/model.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::pipeline::model_steps {

// The state store of the task's project (ferry.yaml in FERRY_PROJECT_DIR).
absl::StatusOr<std::unique_ptr<state::StateStore>> OpenStore(const TaskContext& ctx);

// Hard links every file under `from` into `to` (created), keeping sub-folders; copies when a link
// is not possible (another file system).
absl::Status LinkTree(const std::string& from, const std::string& to);

// The local folder of an artifact URI of `lake` (a registered version's artifact_uri); an
// absolute file:// URI of another lake root (a copied project) is read where it is.
absl::StatusOr<std::string> ArtifactFolder(storage::ArtifactStore& lake, const std::string& uri);

// Whether a config value is a template ("{{ params.days }}"): such values are checked once
// resolved, when the task runs.
bool Templated(const nlohmann::json& value);

// Checks the `endpoint:` (required, a valid name) and `window:` (optional, a positive duration)
// keys of a monitoring step's map (monitor, inference_log), calling `error` once per problem.
// `purpose` completes "name the endpoint whose inference log to ..."; `example_window` is shown
// in the window's error ("7d").
void CheckEndpointAndWindow(const nlohmann::json& m, std::string_view purpose,
                            std::string_view example_window,
                            const std::function<void(const std::string&)>& error);

// Checks a train step's `model:` map: either `type:` (a built-in) or `command:` (a Python model),
// `target:`, optional `hyperparameters:` (a map). Adds one error per problem.
void CheckModelField(const config::StepSpec& step, config::Diagnostics* diags);

// Runs `<command> <args...>` through /bin/sh in `cwd` with the task's environment plus `env`
// (overriding), its output going to the task's log. FailedPrecondition naming the command and
// exit status when it fails.
absl::Status RunModelCommand(const std::string& command, const std::vector<std::string>& args,
                             const std::string& cwd, const std::map<std::string, std::string>& env);

// SM_HPS for a Python model's `train`: the run's parameters overlaid with the step's
// model.hyperparameters, every value as a string (SageMaker's convention).
std::string PythonHyperparameters(const nlohmann::json& params, const nlohmann::json& hps);

// A Python model's offline predictions: runs `<meta.command> predict` in `cwd` (with `env`
// added) on `input` (a dataset folder and its `part`, or a .csv / .json file with part "") and
// parses its output ({"predictions": [...]}, see PredictionsFromJson) as Predictions of the
// bundle's task and classes. The model's own output goes to stderr; `scratch` holds the
// predictions file. InvalidArgument when the count differs from `expected_rows` (when > 0).
absl::StatusOr<model::Predictions> PythonPredict(const nlohmann::json& meta,
                                                 const std::string& model_dir,
                                                 const std::string& input, const std::string& part,
                                                 const std::string& scratch, const std::string& cwd,
                                                 const std::map<std::string, std::string>& env,
                                                 size_t expected_rows = 0);

// The response document of a prediction (bundle.h PredictionsToJson's form) as Predictions.
absl::StatusOr<model::Predictions> PredictionsFromJson(const nlohmann::json& predictions,
                                                       model::Task task,
                                                       const std::vector<std::string>& classes);

// Classification metrics (with the per-class labels of `table`'s `target`) or regression
// metrics of `p` against `table`: the ToJson form of metrics.h.
absl::StatusOr<nlohmann::json> Score(const data::Table& table, const std::string& target,
                                     const model::Predictions& p);

// The largest absolute difference between two predictions of the same rows (probabilities or
// values); +inf when their shapes differ.
double MaxAbsDiff(const model::Predictions& a, const model::Predictions& b);

}  // namespace ferry::pipeline::model_steps
