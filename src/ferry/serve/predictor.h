#pragma once
// Predictor: one model version loaded for serving, and the parsing of request bodies into rows.
//
// A Predictor answers rows (a JSON array of objects keyed by the model's input features, already
// checked by ParseJsonTable / ParseCsvRows / ParseV2Rows) with one prediction object per row, in
// the form of model::PredictionsToJson: {"label": "1", "probabilities": {"0": 0.12, "1": 0.88}}
// or {"value": 41.5}. Built-in models score in-process through the same code path as the
// evaluate step's serving-parity gate (model/bundle.h), and also take the rows as a typed table
// (PredictTable), so that a JSON request builds no document; external (Python) models are served
// by worker processes (worker_pool.h). Implementations are thread-safe: Predict is called
// concurrently from every event loop.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto loaded, LoadServedModel(store, lake, "churn", 7));
//   FERRY_ASSIGN_OR_RETURN(TypedRows rows,
//                          ParseJsonTable(R"({"instances": [{"tenure": 3}]})", *loaded));
//   FERRY_ASSIGN_OR_RETURN(model::Predictions p,
//                          loaded->predictor->PredictTable(std::move(rows.table)));

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

class Predictor {
 public:
  virtual ~Predictor() = default;
  // InvalidArgument when the rows do not fit the model (a 4xx for the client); Unavailable when
  // no worker can take the request now (503); anything else is the model failing (500).
  virtual absl::StatusOr<nlohmann::json> Predict(const nlohmann::json& rows) = 0;
  virtual bool Ready() const = 0;

  // In-process models also score a table of their input columns (ParseJsonTable's) with the
  // errors of Predict; the others say false and answer Unimplemented.
  virtual bool ScoresTables() const { return false; }
  virtual absl::StatusOr<model::Predictions> PredictTable(data::Table raw);
};

// The columns a request is read into (model.json's input_schema, read once when the model loads).
struct TypedInput {
  std::vector<model::InputColumn> columns;  // input_schema's order
  std::vector<bool> required;               // false for the optional inputs
  std::vector<std::string> quoted_names;    // each name as a JSON string, for echoed rows
};
// InvalidArgument when input_schema names an unknown type or a column twice.
absl::StatusOr<TypedInput> ReadTypedInput(const nlohmann::json& meta);

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
  TypedInput typed;  // the same input_schema, typed
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

// --- Request bodies -> rows (a JSON array of objects with exactly the model's inputs) ---
//
// Errors are InvalidArgument naming the field: "instances[2]: unknown feature 'plann'; the
// model's inputs are tenure, plan, charges", "instances[0]: missing feature 'plan'",
// "instances[1]: expected 3 values in the model's input order (tenure, plan, charges), got 2",
// "instances: empty batch". Value types are checked as a JSON body is read, and when the rows of
// the other formats are scored (model/bundle.h).

// Parses a JSON body without throwing: InvalidArgument with the parser's message (byte offset).
absl::StatusOr<nlohmann::json> ParseJsonBody(std::string_view body);

// SageMaker-style JSON: {"instances": [row, ...]} or a bare [row, ...]; a row is an object keyed
// by feature name or an array in input order. {"instances": row} (one object) is one row. The
// rows are read straight into model.typed's columns (simdjson, no document), each value typed as
// model::InstancesToTable types it; optional inputs left out are nulls; a feature given twice in
// a row is refused. `inputs` holds each row as a JSON object by feature name (an object row as
// sent, minified), for the echoed inputs, the inference log and predictors that take documents.
struct TypedRows {
  data::Table table;
  std::vector<std::string> inputs;
};
absl::StatusOr<TypedRows> ParseJsonTable(std::string_view body, const ServedModel& model);

// text/csv: one row per line in input order, no header (a first line equal to the input names is
// skipped); empty fields are nulls; values are typed by the inputs.
absl::StatusOr<nlohmann::json> ParseCsvRows(std::string_view body, const ServedModel& model);
// Open Inference Protocol v2 request: {"id": "...", "inputs": [{"name", "shape", "datatype",
// "data"}]}: one input tensor per feature (shape [N] or [N, 1]), or one tensor of shape [N, F]
// with the features in input order.
absl::StatusOr<nlohmann::json> ParseV2Rows(const nlohmann::json& request, const ServedModel& model);

}  // namespace ferry::serve
