#pragma once
// Bundle: a trained model as it travels from the `train` step to the registry and to serving — a
// folder laid out as the lake's models/<name>/<version>/ (docs/models.md):
//
//   model/          the model's own files (Model::Save, or what a Python model saved)
//   model.json      ferry's metadata: type, task, target, features and their types, the input
//                   schema a request carries, the transform state, the training dataset version,
//                   git commit, hyperparameters, seed, training metrics, weight summary
//   profile.json    the baseline profile of the training features (drift monitoring)
//   metrics.json    the evaluation metrics and gate results (written by `evaluate`)
//
// The serving code path lives here too, so that the evaluate step's serving-parity gate runs
// exactly what an endpoint runs: JSON instances -> Table (InstancesToTable) -> the bundled
// transform (PrepareFeatures) -> Predict -> JSON (PredictionsToJson). All functions are pure
// apart from reading `dir`; a loaded Bundle is immutable and safe to share between threads.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(Bundle b, LoadBundle("models/churn/7"));
//   FERRY_ASSIGN_OR_RETURN(nlohmann::json out,
//                          ScoreInstances(b, json::parse(R"({"instances": [{"tenure": 3}]})")));

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/data/table.h"
#include "ferry/model/model.h"
#include "nlohmann/json.hpp"

namespace ferry::model {

inline constexpr char kBundleMeta[] = "model.json";
inline constexpr char kBundleModelDir[] = "model";
inline constexpr char kBundleProfile[] = "profile.json";
inline constexpr char kBundleMetrics[] = "metrics.json";

// The model.json of a built-in model fitted on `train` with `target`: type, task, target, classes,
// features [{name, type}], input_schema (the transform's input columns but the target when
// `transform_state` is an object, else the features), transform, weights (model.Describe()). The
// caller adds dataset, git commit, metrics, ....
nlohmann::json BundleMeta(const Model& model, const data::Table& train, const std::string& target,
                          const nlohmann::json& transform_state);

struct Bundle {
  std::string dir;
  nlohmann::json meta;           // model.json
  std::unique_ptr<Model> model;  // null for a type that does not run in-process ("python")
};

// Reads dir/model.json and, for a built-in type, loads dir/model/. InvalidArgument naming the
// file when model.json is missing or malformed.
absl::StatusOr<Bundle> LoadBundle(const std::string& dir);

// The rows of a request as a Table typed by `schema` ([{name, type}], model.json's
// input_schema). `instances` is a JSON array of objects ({"tenure": 3, "plan": "pro"}). A
// missing key or null is a null; keys not in the schema are ignored; a value of the wrong type is
// InvalidArgument naming it ("instances[3].tenure: expected a number (int64), got \"x\"").
// Numbers are accepted for float64 (and for int64 when whole), true/false for bool, strings for
// string and for timestamp (ISO 8601).
absl::StatusOr<data::Table> InstancesToTable(const nlohmann::json& instances,
                                             const nlohmann::json& schema);

// input_schema read once, for callers that convert many requests (serving): the same
// conversion without re-reading the schema's names and type names at every call.
struct InputColumn {
  std::string name;
  data::ColumnType type;
};
absl::StatusOr<std::vector<InputColumn>> ParseInputSchema(const nlohmann::json& schema);
absl::StatusOr<data::Table> InstancesToTable(const nlohmann::json& instances,
                                             const std::vector<InputColumn>& schema);

// One value of a request row, whichever JSON parser read it (InstancesToTable reads nlohmann's
// documents, the serving path parses bodies straight into columns): the one place that decides
// which JSON values a column type takes.
struct RowValue {
  enum class Kind { kNull, kInt, kUint, kDouble, kBool, kString, kOther };
  Kind kind = Kind::kNull;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  bool b = false;
  std::string_view s;  // kString: the decoded text, valid for the call
};
// Appends `v` to `col` and returns null, or, when col's type does not take it, appends nothing and
// returns what the type takes ("a whole number") for RowValueError.
const char* AppendRowValue(data::Column& col, const RowValue& v);
// InvalidArgument "instances[3].tenure: expected a whole number (int64), got \"x\"", where `got`
// is the value as JSON text.
absl::Status RowValueError(size_t row, const data::Column& col, std::string_view expected,
                           std::string_view got);

// The columns of input_schema a request may leave out: those the bundled transform drops before
// any other op reads them (an id, a signup date). Serving and `ferry predict` accept rows without
// them (the transform's drop skips an absent column); every other input column is required.
std::vector<std::string> OptionalInputs(const nlohmann::json& meta);

// Applies the bundle's transform (when it has one) to raw rows, the target being optional, and
// returns the table the model predicts on.
absl::StatusOr<data::Table> PrepareFeatures(const nlohmann::json& meta, data::Table raw);

// Predictions as the serving response carries them, one object per row:
//   classification: {"label": "1", "probabilities": {"0": 0.12, "1": 0.88}}
//   regression:     {"value": 41.5}
nlohmann::json PredictionsToJson(const Predictions& p);
// The same objects as JSON text, one string per row, written without building a document (the
// request path of serving): numbers in shortest round-trip form, NaN and infinities as null.
std::vector<std::string> PredictionTexts(const Predictions& p);

// The serving code path: {"instances": [...]} -> {"predictions": [...]} (PredictionsToJson).
// InvalidArgument for a request that is not an object with an "instances" array, or rows that
// do not fit the input schema; FailedPrecondition for a bundle without an in-process model.
absl::StatusOr<nlohmann::json> ScoreInstances(const Bundle& bundle, const nlohmann::json& request);

// The rows of `table` as JSON instances (the inverse of InstancesToTable: numbers, strings,
// booleans, timestamps as ISO 8601 text, nulls as null), for building requests.
nlohmann::json TableToInstances(const data::Table& table);

}  // namespace ferry::model
