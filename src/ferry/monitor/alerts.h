#pragma once
// Alert rules of a monitor: "metric op threshold" comparisons evaluated against a report's
// values (drift per feature, data quality, performance level and trend). Pure functions:
// thread-safe.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto rules, ParseAlertRules("psi>0.2, missing_rate>0.05"));
//   rules[0].Crossed(0.31);   // true

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::monitor {

struct AlertRule {
  std::string metric;
  std::string op;  // ">", ">=", "<", "<="
  double threshold = 0;
  std::string text;  // "psi > 0.2"
  // True when `value op threshold` holds.
  bool Crossed(double value) const;
};

// "psi>0.2,missing_rate>0.05" or a YAML/JSON map {psi: "> 0.2"} (flow style "{psi: '> 0.2'}"
// included); metrics: psi, ks, ks_pvalue, wasserstein, js, chi2_pvalue, missing_rate,
// type_errors, unseen_categories, new_columns, missing_columns, stale_hours, rows, and any
// performance metric (accuracy, auc, log_loss, rmse, mae) plus slope_per_day; ops > >= < <=.
// InvalidArgument naming the bad part and listing what is accepted. An empty text is no rules.
absl::StatusOr<std::vector<AlertRule>> ParseAlertRules(std::string_view text);

// The metrics ParseAlertRules accepts, in a fixed order.
const std::vector<std::string>& AlertMetrics();

// The rules used when a monitor names none: psi > 0.2, missing_rate > 0.05.
std::vector<AlertRule> DefaultAlertRules();

}  // namespace ferry::monitor
