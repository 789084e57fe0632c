#pragma once
// Gates: the checks an `evaluate` step makes before a model may be registered — the article's
// "detect problems before exporting models". A gate is one entry of the step's `gates:` map
// (docs/models.md, "Gates"):
//
//   auc: ">= 0.75"                 a metric against a number (MetricValue's names)
//   logloss: "<= champion * 1.02"  a metric against the current champion's value on the same rows:
//   auc: ">= champion - 0.01"      `champion`, `champion * k`, `champion + k`, `champion - k`
//   weight_shift: "<= 0.25"        the distance between this model's weights and the previous
//                                  version's (WeightShift below)
//   reproducible: true             retrain with the same data and seed: predictions within 1e-9
//   reproducible: {tolerance: 1e-6}
//   serving_parity: true           predictions through the serving path equal the offline ones
//   serving_parity: {tolerance: 1e-6}
//
// Operators: >=, <=, >, <, ==. This file parses gates and decides them from values the evaluate
// step measures; it does no I/O. Pure functions: thread-safe.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace ferry::model {

struct Gate {
  std::string name;  // the key: a metric name, "weight_shift", "reproducible", "serving_parity"
  std::string text;  // the value as written (">= champion * 1.02", "true")
  enum class Kind { kMetric, kWeightShift, kReproducible, kServingParity } kind = Kind::kMetric;
  std::string op;            // ">=", "<=", ">", "<", "=="
  bool vs_champion = false;  // the right-hand side involves the champion's value
  char champion_op = 0;      // '*', '+', '-', or 0 for `champion` alone
  double number = 0;         // the threshold, or the champion's factor / offset
  double tolerance = 1e-9;   // reproducible, serving_parity: the largest absolute difference
  bool enabled = true;       // reproducible: false / serving_parity: false turn the gate off
};

// Parses a `gates:` JSON object. InvalidArgument listing every bad entry, one a line, each as
// "gates.<name>: ..." with the accepted forms. Metric names are checked against MetricValue's.
absl::StatusOr<std::vector<Gate>> ParseGates(const nlohmann::json& gates);

// Whether `gate` needs the champion / the previous version / a retrain / the serving path.
bool NeedsChampion(const std::vector<Gate>& gates);

struct GateResult {
  std::string name;
  std::string text;
  bool passed = false;
  std::optional<double> value;      // what was measured
  std::optional<double> threshold;  // what it was compared with (after applying the champion)
  std::string detail;               // e.g. "champion churn:3 logloss 0.41", "no champion yet"
};

// Decides a comparison gate (metric or weight_shift): `value` op threshold, the threshold being
// gate.number or, for a champion gate, the champion's value combined with it. A champion gate
// without a champion value passes (there is nothing to beat yet) and says so in detail.
GateResult Decide(const Gate& gate, double value, std::optional<double> champion_value = {},
                  const std::string& detail = "");
// Decides a tolerance gate (reproducible, serving_parity) from the largest absolute difference.
GateResult DecideTolerance(const Gate& gate, double max_abs_diff, const std::string& detail = "");
// A gate that could not be measured: fails, with `why` as its detail.
GateResult Unmeasured(const Gate& gate, const std::string& why);

// The weight-shift distance between two Model::Describe() summaries (docs/models.md):
//   coefficients: ||w_new - w_old||_2 / ||w_old||_2 over the union of (class, feature) keys
//                 (a missing key counts 0; the intercept is left out); 0 when both are all zero
//                 and 1 when only the old ones are;
//   importance:   each normalised to sum 1, then the total variation distance
//                 0.5 * sum |p_new - p_old|, in [0, 1].
// FailedPrecondition when the kinds differ (a linear model against a tree model).
absl::StatusOr<double> WeightShift(const nlohmann::json& now, const nlohmann::json& before);

// {"passed": bool, "gates": [{"name", "gate", "passed", "value", "threshold", "detail"}]}.
nlohmann::json GatesToJson(const std::vector<GateResult>& results);
// One line per gate: "PASS auc 0.8123 >= 0.75" / "FAIL logloss 0.52 <= 0.4284 (champion ...)".
std::string GatesToText(const std::vector<GateResult>& results);

// Whether a larger value of the metric is better (auc, accuracy, f1, ...; not log_loss, rmse).
// NotFound for an unknown metric name.
absl::StatusOr<bool> HigherIsBetter(const std::string& metric);

}  // namespace ferry::model
