#pragma once
// Model: a trained model in memory — the article's "model class": fit, save/load (artifact
// serialization), predict, and a summary of its weights for the gates. A ModelType fits and
// loads one kind of model (linear_regression, logistic_regression, xgboost, ...); the types
// built into the binary are listed by ModelTypes(). A Model is immutable once fitted or loaded:
// Predict and Describe are safe to call from several threads at once.
//
// Inputs are Tables of numeric columns (int64, float64, bool; the transform step's one-hot
// columns are float64): a string column is an error telling to one-hot encode it. A model keeps
// the names of its feature columns, in order, and Predict looks them up by name in the table it
// is given (extra columns are ignored, missing ones are an error naming them).
//
// Example:
//   const ModelType* type = FindModelType("logistic_regression");
//   FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Model> m,
//       type->Fit(train, {.target = "churned", .hyperparameters = {{"C", 1.0}}, .seed = 7}));
//   FERRY_ASSIGN_OR_RETURN(Predictions p, m->Predict(test));   // p.Probability(row, "1")
//   FERRY_RETURN_IF_ERROR(m->Save(dir));                        // later: type->Load(dir)

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/data/table.h"
#include "nlohmann/json.hpp"

namespace ferry::model {

enum class Task { kBinary, kMulticlass, kRegression };
std::string_view TaskName(Task t);  // "binary", "multiclass", "regression"
// The inverse of TaskName; nullopt for any other text.
std::optional<Task> ParseTaskName(std::string_view name);

struct Predictions {
  Task task = Task::kRegression;
  size_t rows = 0;
  // Classification: the class labels, as text ("0"/"1", "false"/"true", "basic"/...), sorted as
  // the target's values sort (numerically for numeric targets); probabilities are
  // rows x classes.size(), row-major. Regression: classes is empty and values has one per row.
  std::vector<std::string> classes;
  std::vector<double> values;

  // The probability of the positive (last) class for binary models, the value for regression.
  double Score(size_t row) const;
  double Probability(size_t row, size_t class_index) const;
  // The most probable class (index into classes).
  size_t ArgMax(size_t row) const;
};

struct FitOptions {
  std::string target;                                         // the label column
  nlohmann::json hyperparameters = nlohmann::json::object();  // per type, docs/models.md
  uint64_t seed = 0;
  int threads = 0;  // 0 = one per core
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string type() const = 0;
  virtual Task task() const = 0;
  virtual const std::vector<std::string>& features() const = 0;
  virtual absl::StatusOr<Predictions> Predict(const data::Table& table) const = 0;
  // Writes the model's files into the existing folder `dir` (e.g. model.json, xgboost.json).
  virtual absl::Status Save(const std::string& dir) const = 0;
  // The weight / parameter summary the weight-shift gate compares:
  //   {"kind": "coefficients" | "importance", "values": {"<feature>": number, ...},
  //    "intercept": ... (linear models), ...type-specific extras}
  virtual nlohmann::json Describe() const = 0;
};

class ModelType {
 public:
  virtual ~ModelType() = default;
  virtual std::string name() const = 0;
  // Fits on `train` (every column but the target is a feature, in table order). InvalidArgument
  // for a bad hyperparameter (naming it and the accepted values), a non-numeric feature, a
  // target with the wrong number of classes, an empty table.
  virtual absl::StatusOr<std::unique_ptr<Model>> Fit(const data::Table& train,
                                                     const FitOptions& opts) const = 0;
  // Loads what Save wrote.
  virtual absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir) const = 0;
};

// The built-in types, by name; nullptr when unknown.
const ModelType* FindModelType(std::string_view name);
std::vector<std::string> ModelTypeNames();

// Shared by the built-ins: the feature columns of `table` (all but `target`, in order) as a dense
// row-major matrix of doubles (bool 0/1; nulls are an error naming the column: impute first).
struct FeatureMatrix {
  std::vector<std::string> names;
  size_t rows = 0;
  std::vector<double> values;  // rows x names.size(), row-major
};
absl::StatusOr<FeatureMatrix> ToFeatureMatrix(const data::Table& table,
                                              const std::vector<std::string>& names);
std::vector<std::string> FeatureNames(const data::Table& table, const std::string& target);

// The classes of a classification target (sorted; numeric targets numerically) and each row's
// class index. InvalidArgument for nulls in the target.
struct Labels {
  std::vector<std::string> classes;
  std::vector<int> index;  // per row
};
absl::StatusOr<Labels> ToLabels(const data::Table& table, const std::string& target);

}  // namespace ferry::model
