#pragma once
// LinearModel: the fitted state and the predictor shared by linear_regression and
// logistic_regression — a matrix of coefficients (one row for regression and binary models, one
// per class for multiclass ones) and an intercept per row, applied to the features by name.
// Also the hyperparameter readers and the row-block parallelism both fits use. Immutable once
// built: Predict, Save and Describe are safe from several threads at once.
//
// Example:
//   LinearParams p{.type = "linear_regression", .task = Task::kRegression, .features = {"x"},
//                  .target = "y", .coefficients = {{2.0}}, .intercept = {1.0}};
//   LinearModel m(std::move(p));
//   m.Predict(table);  // 2 x + 1

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/model/model.h"
#include "nlohmann/json.hpp"

namespace ferry::model::internal {

struct LinearParams {
  std::string type;  // "linear_regression" | "logistic_regression"
  Task task = Task::kRegression;
  std::vector<std::string> features;
  std::string target;
  std::vector<std::string> classes;  // classification only, sorted
  // Rows: 1 (regression; binary: the last class's log-odds) or classes.size() (multiclass:
  // softmax); columns: features.
  std::vector<std::vector<double>> coefficients;
  std::vector<double> intercept;                              // one per row of coefficients
  nlohmann::json hyperparameters = nlohmann::json::object();  // every one, defaults filled in
  int iterations = 0;
  bool converged = true;
};

class LinearModel final : public Model {
 public:
  explicit LinearModel(LinearParams params) : p_(std::move(params)) {}

  std::string type() const override { return p_.type; }
  Task task() const override { return p_.task; }
  const std::vector<std::string>& features() const override { return p_.features; }
  absl::StatusOr<Predictions> Predict(const data::Table& table) const override;
  // Writes `dir`/model.json (doubles with 17 significant digits: Load gives back the same bits).
  absl::Status Save(const std::string& dir) const override;
  // Regression and binary: {"kind": "coefficients", "values": {feature: w}, "intercept": b}
  // (binary: the log-odds of the last class). Multiclass: {"kind": "coefficients", "classes":
  // [...], "values": {class: {feature: w}}, "intercept": {class: b}}.
  nlohmann::json Describe() const override;

  const LinearParams& params() const { return p_; }

 private:
  LinearParams p_;
};

// Reads `dir`/model.json written by LinearModel::Save for a model of type `type`.
absl::StatusOr<std::unique_ptr<Model>> LoadLinearModel(const std::string& dir,
                                                       std::string_view type);

// The feature columns `names` of `table` for a fit, without copying float64 columns: a pointer
// per feature to its `rows` doubles, valid while `table` and this struct live (int64 and bool
// columns are converted into `owned`). The same checks and messages as ToFeatureMatrix; a fit
// reads a row block of every column, so no row-major copy of the whole table is needed.
// (features.cc)
struct FeatureColumns {
  size_t rows = 0;
  std::vector<const double*> columns;
  std::vector<std::vector<double>> owned;
};
absl::StatusOr<FeatureColumns> ToFeatureColumns(const data::Table& table,
                                                const std::vector<std::string>& names, int threads);

// Hyperparameters: `hp` must be an object whose keys are all in `known` (InvalidArgument names
// the unknown key, with a did-you-mean hint). The getters return `fallback` when the key is
// absent or null, and InvalidArgument naming the key and the accepted values otherwise.
absl::Status CheckHyperparameterKeys(std::string_view type, const nlohmann::json& hp,
                                     const std::vector<std::string>& known);
absl::StatusOr<double> GetNumber(std::string_view type, const nlohmann::json& hp,
                                 const std::string& key, double fallback, double min,
                                 bool min_inclusive);
absl::StatusOr<int> GetInt(std::string_view type, const nlohmann::json& hp, const std::string& key,
                           int fallback, int min);
absl::StatusOr<bool> GetBool(std::string_view type, const nlohmann::json& hp,
                             const std::string& key, bool fallback);

// Row blocks for the fits' sums: how `rows` are cut depends only on `rows` and `width` (the
// size of one block's partial result), never on the thread count, and partials are added in
// block order, so a fit gives the same bits on any machine. `fn(block, begin, end)` runs for
// every block, on min(threads, blocks) threads (threads <= 0: one per core).
size_t NumRowBlocks(size_t rows, size_t width);
void ForEachRowBlock(size_t rows, size_t blocks, int threads,
                     const std::function<void(size_t block, size_t begin, size_t end)>& fn);

}  // namespace ferry::model::internal
