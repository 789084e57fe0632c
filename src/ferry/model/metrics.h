#pragma once
// Evaluation metrics of a model's Predictions against the true labels: what the `evaluate` step
// writes to metrics.json, what gates compare and what experiment tracking records. Every
// definition equals scikit-learn 1.2's (tests/fixtures/model/metrics_reference.py generates the
// reference values the tests compare with, to 1e-9). Pure functions of their inputs: thread-safe.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(Labels labels, ToLabels(test, "churned"));
//   FERRY_ASSIGN_OR_RETURN(Predictions p, model.Predict(test));
//   FERRY_ASSIGN_OR_RETURN(ClassificationMetrics m, Classify(labels.index, p));
//   nlohmann::json j = ToJson(m);                        // {"roc_auc": 0.83, ...}
//   FERRY_ASSIGN_OR_RETURN(double auc, MetricValue(j, "auc"));
//   FERRY_ASSIGN_OR_RETURN(nlohmann::json by_plan,
//                          MetricsBySegment(labels.index, p, test.column("plan")));
//
// Definitions (n rows; binary: the positive class is the last one, p1 its probability):
//   accuracy   fraction of rows whose predicted class is the true class. Binary: predicted
//              positive when p1 >= threshold. Multiclass: the most probable class (the first
//              one on ties, like numpy's argmax); the threshold does not apply.
//   precision  binary: TP / (TP + FP) of the positive class; 0 when nothing is predicted
//              positive (sklearn zero_division=0).
//   recall     binary: TP / (TP + FN); 0 when y_true has no positive.
//   f1         binary: 2PR / (P + R); 0 when P + R = 0.
//              Multiclass, all three: the unweighted mean of the per-class values over the
//              classes that occur in y_true or in the predictions (sklearn average="macro",
//              zero_division=0: a class present in y_true but never predicted counts with
//              precision 0; a class in neither does not count).
//   roc_auc    binary: the Mann-Whitney U statistic / (n_pos * n_neg), ties counting one half
//              (= the area under the ROC curve with tied scores on one segment; sklearn
//              roc_auc_score). Multiclass: the mean over classes of the one-vs-rest AUC of that
//              class's probability (sklearn multi_class="ovr", average="macro"). NaN (JSON null)
//              when y_true has a single class, and for multiclass when any class is absent from
//              y_true (sklearn raises there). O(n log n).
//   pr_auc     average precision (sklearn average_precision_score): sum over the distinct
//              score thresholds, from high to low, of (R_k - R_k-1) * P_k — a step function, not
//              the trapezoidal area. Multiclass: the one-vs-rest macro mean. NaN (null) when
//              y_true has a single class / lacks a class (sklearn warns and returns 0 or 1 there;
//              neither means anything).
//   log_loss   mean of -ln(p_true) with each probability first clipped to [1e-15, 1 - 1e-15]
//              and each row then renormalized to sum 1 (sklearn log_loss with eps=1e-15).
//   confusion  counts, rows: true class, columns: predicted class (classes order).
//   calibration  binary only: 10 bins of p1 with edges 0, 0.1, ..., 1; bin i holds the rows with
//              edge_i < p1 <= edge_i+1 (bin 0 also holds p1 = 0), as sklearn calibration_curve(
//              n_bins=10, strategy="uniform"). Empty bins are kept, with NaN (null) means.
//   rmse       sqrt(mean((y - p)^2))                 (sklearn mean_squared_error, squared=False)
//   mae        mean(|y - p|)                         (sklearn mean_absolute_error)
//   r2         1 - SS_res / SS_tot with SS_tot about the mean of y; when SS_tot = 0: 1 if
//              SS_res = 0, else 0 (sklearn r2_score, force_finite=True); NaN with one row.
//   mape       mean(|y - p| / max(|y|, DBL_EPSILON)), a fraction (0.05 = 5%), not a percentage;
//              huge (~1e15 x error) when a target is 0 (sklearn mean_absolute_percentage_error).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/data/table.h"
#include "ferry/model/model.h"
#include "nlohmann/json.hpp"

namespace ferry::model {

struct CalibrationBin {
  double lower = 0;
  double upper = 0;
  int64_t count = 0;
  double mean_predicted = 0;     // mean p1 of the bin's rows; NaN when count = 0
  double fraction_positive = 0;  // fraction of the bin's rows that are positive; NaN when empty
};

struct ClassificationMetrics {
  Task task = Task::kBinary;         // kBinary or kMulticlass, as the Predictions
  std::vector<std::string> classes;  // as the Predictions: the confusion matrix's order
  double threshold = 0.5;            // binary only
  double accuracy = 0;
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  double roc_auc = 0;  // NaN when undefined (see above)
  double pr_auc = 0;   // NaN when undefined
  double log_loss = 0;
  std::vector<std::vector<int64_t>> confusion;  // rows: true class, columns: predicted class
  std::vector<CalibrationBin> calibration;      // binary: 10 bins; multiclass: empty
  int64_t rows = 0;
};

struct RegressionMetrics {
  double rmse = 0;
  double mae = 0;
  double r2 = 0;
  double mape = 0;
  int64_t rows = 0;
};

// `y_true[i]` is row i's class index into p.classes (as Labels::index). InvalidArgument when the
// lengths differ, there are no rows, p is a regression, a class index is out of range, a
// probability is not a number in [0, 1], or the threshold is not finite.
absl::StatusOr<ClassificationMetrics> Classify(const std::vector<int>& y_true, const Predictions& p,
                                               double threshold = 0.5);
// InvalidArgument when the lengths differ, there are no rows, p is a classification, or a value
// is not finite.
absl::StatusOr<RegressionMetrics> Regress(const std::vector<double>& y_true, const Predictions& p);

// {"task": "binary", "rows": n, "accuracy": ..., "precision", "recall", "f1", "roc_auc",
//  "pr_auc", "log_loss", "threshold", "classes": [...], "confusion": [[...]],
//  "calibration": [{"lower", "upper", "count", "mean_predicted", "fraction_positive"}]}.
// Undefined values (NaN) are null.
nlohmann::json ToJson(const ClassificationMetrics& m);
// {"task": "regression", "rows": n, "rmse": ..., "mae": ..., "r2": ..., "mape": ...}.
nlohmann::json ToJson(const RegressionMetrics& m);

// The metrics of each value of `segment` (the same rows as y_true and p: a string, int64 or bool
// column of the evaluation table), showing where a model's errors are concentrated:
//   {"column": "plan", "all": {...metrics of every row...},
//    "segments": [{"segment": "basic", "value": "basic", "metrics": {...}}, ...]}
// "segment" is the value as text ("null" for the null rows, "true"/"false" for bools), "value"
// the JSON value (null for the null rows). Segments are sorted by value (strings bytewise, ints
// numerically, false before true), the null segment last. A segment whose rows hold one class
// has null AUCs. InvalidArgument for another column type (bin a float column first), a column
// of another length, or what Classify / Regress reject.
absl::StatusOr<nlohmann::json> MetricsBySegment(const std::vector<int>& y_true,
                                                const Predictions& p, const data::Column& segment,
                                                double threshold = 0.5);
absl::StatusOr<nlohmann::json> MetricsBySegment(const std::vector<double>& y_true,
                                                const Predictions& p, const data::Column& segment);

// A named metric of ToJson's output (or of MetricsBySegment's: its "all"), for gates:
// "auc"/"roc_auc", "accuracy", "logloss"/"log_loss", "f1", "precision", "recall", "pr_auc",
// "rmse", "mae", "r2", "mape". NotFound for a name these metrics do not have, listing the ones
// they have; FailedPrecondition when the metric is undefined here (null, e.g. the AUC of a
// single class), so that a gate never passes or fails on a NaN silently.
absl::StatusOr<double> MetricValue(const nlohmann::json& metrics, std::string_view name);

// The names MetricValue accepts, in a fixed order.
std::vector<std::string> MetricNames();

}  // namespace ferry::model
