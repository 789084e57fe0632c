#pragma once
// Predictor: one model version loaded for serving, and the parsing of request bodies into rows.
//
// A Predictor answers rows (a JSON array of objects keyed by the model's input features, already
// checked by ParseRows*) with one prediction object per row, in the form of
// model::PredictionsToJson: {"label": "1", "probabilities": {"0": 0.12, "1": 0.88}} or
// {"value": 41.5}. Built-in models score in-process through the same code path as the evaluate
// step's serving-parity gate (model/bundle.h); external (Python) models are served by worker
// processes (worker_pool.h). Implementations are thread-safe: Predict is called concurrently
// from every event loop.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto loaded, LoadServedModel(store, lake, "churn", 7));
//   FERRY_ASSIGN_OR_RETURN(nlohmann::json rows,
//                          ParseJsonRows(R"({"instances": [{"tenure": 3}]})", *loaded));
//   FERRY_ASSIGN_OR_RETURN(nlohmann::json predictions, loaded->predictor->Predict(rows));

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/data/table.h"
#include "ferry/model/bundle.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {

// The columns an in-process model reads a request into (model.json's input_schema, read once),
// for the typed request path (ParseJsonTable).
struct TypedInput {
  std::vector<model::InputColumn> columns;  // input_schema's order
  std::vector<bool> required;               // false for the optional inputs
  std::vector<std::string> quoted_names;    // each name as a JSON string, for echoed rows
};

class Predictor {
 public:
  virtual ~Predictor() = default;
  // InvalidArgument when the rows do not fit the model (a 4xx for the client); Unavailable when
  // no worker can take the request now (503); anything else is the model failing (500).
  virtual absl::StatusOr<nlohmann::json> Predict(const nlohmann::json& rows) = 0;
  virtual bool Ready() const = 0;

  // The typed path, for models that score in-process: their input columns, and the scoring of a
  // table of them (a ParseJsonTable result) with the errors of Predict. A request on this path
  // builds no JSON document. Null and Unimplemented for the others (external workers).
  virtual const TypedInput* typed_input() const { return nullptr; }
  virtual absl::StatusOr<model::Predictions> PredictTable(data::Table raw);
};

// One input feature of a model, as a request carries it (model.json's input_schema).
struct InputFeature {
  std::string name;
  std::string type;  // "float64", "int64", "string", "bool", "timestamp"
};

struct ServedModel {
  std::string model;
  int64_t version = 0;
  std::string type;     // "logistic_regression", "xgboost", "python", ...
  nlohmann::json meta;  // model.json
  std::string folder;   // the bundle's local folder
  // What a request must carry, in input order (arrays, CSV and the v2 metadata use this order).
  std::vector<InputFeature> inputs;
  // Columns of the input schema that the bundled transform drops first (an id, a date): a
  // request may carry them (they are ignored) or leave them out.
  std::vector<std::string> optional_inputs;
  std::shared_ptr<Predictor> predictor;
};

// Makes the predictor of a model that does not run in-process (type "python"); see
// worker_pool.h. Null means such models cannot be served (Unimplemented).
using ExternalPredictorFactory =
    std::function<absl::StatusOr<std::shared_ptr<Predictor>>(const ServedModel& model)>;

// Loads model:version from the registry and the lake. NotFound for an unknown version or a
// version without an artifact; InvalidArgument for a bundle that cannot be read.
absl::StatusOr<std::shared_ptr<const ServedModel>> LoadServedModel(
    state::StateStore& store, storage::ArtifactStore& lake, const std::string& model,
    int64_t version, const ExternalPredictorFactory& external);

// The in-process predictor of a loaded bundle folder (built-in types).
absl::StatusOr<std::shared_ptr<Predictor>> NewBundlePredictor(const std::string& folder);

// --- Request bodies -> rows (a JSON array of objects with exactly the model's inputs) ---
//
// Errors are InvalidArgument naming the field: "instances[2]: unknown feature 'plann'; the
// model's inputs are tenure, plan, charges", "instances[0]: missing feature 'plan'",
// "instances[1]: expected 3 values in the model's input order (tenure, plan, charges), got 2",
// "instances: empty batch". Value types are checked when the rows are scored (model/bundle.h).

// The rows of a SageMaker-style JSON body (as ParseJsonRows takes it, with its errors, and a
// feature given twice in a row refused) read straight into `typed`'s columns, each value typed
// as model::InstancesToTable types it; optional inputs left out are nulls. `inputs` holds each
// row as a JSON object by feature name, for the echoed inputs and the inference log.
struct TypedRows {
  data::Table table;
  std::vector<std::string> inputs;
};
absl::StatusOr<TypedRows> ParseJsonTable(std::string_view body, const ServedModel& model,
                                         const TypedInput& typed);

// Parses a JSON body without throwing: InvalidArgument with the parser's message (byte offset).
absl::StatusOr<nlohmann::json> ParseJsonBody(std::string_view body);

// SageMaker-style JSON: {"instances": [row, ...]} or a bare [row, ...]; a row is an object keyed
// by feature name or an array in input order. {"instances": row} (one object) is one row.
absl::StatusOr<nlohmann::json> ParseJsonRows(std::string_view body, const ServedModel& model);
// text/csv: one row per line in input order, no header (a first line equal to the input names is
// skipped); empty fields are nulls; values are typed by the inputs.
absl::StatusOr<nlohmann::json> ParseCsvRows(std::string_view body, const ServedModel& model);
// Open Inference Protocol v2 request: {"id": "...", "inputs": [{"name", "shape", "datatype",
// "data"}]}: one input tensor per feature (shape [N] or [N, 1]), or one tensor of shape [N, F]
// with the features in input order.
absl::StatusOr<nlohmann::json> ParseV2Rows(const nlohmann::json& request, const ServedModel& model);

}  // namespace ferry::serve
