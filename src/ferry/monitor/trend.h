#pragma once
// Trend: the degradation rate of a model — an ordinary least-squares line through a metric's
// daily values, with a 95% confidence interval for its slope (docs/monitoring.md). Pure
// functions: thread-safe.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(Trend t, FitTrend({0, 1, 2, 3}, {0.91, 0.90, 0.88, 0.87}));
//   // t.slope_per_day ~ -0.014, t.ci_low < t.slope_per_day < t.ci_high

#include <vector>

#include "absl/status/statusor.h"

namespace ferry::monitor {

struct Trend {
  double slope_per_day = 0, ci_low = 0, ci_high = 0, intercept = 0, r2 = 0;
  int days = 0;
};

// Ordinary least squares of `values` on `days` (day index 0, 1, ...; gaps allowed), with a 95%
// confidence interval for the slope from Student's t with days-2 degrees of freedom:
// slope +- t(0.975, n-2) * sqrt(SSE / (n-2) / Sxx). With a perfect fit the interval is the slope
// itself; r2 is 1 when the values are constant (nothing left to explain).
// InvalidArgument when the sizes differ or a value is not finite; FailedPrecondition with fewer
// than 3 days or when every day is the same (no slope).
absl::StatusOr<Trend> FitTrend(const std::vector<double>& days, const std::vector<double>& values);

}  // namespace ferry::monitor
