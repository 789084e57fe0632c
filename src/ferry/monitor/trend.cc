#include "ferry/monitor/trend.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "boost/math/distributions/students_t.hpp"
#include "fmt/format.h"

namespace ferry::monitor {

absl::StatusOr<Trend> FitTrend(const std::vector<double>& days, const std::vector<double>& values) {
  if (days.size() != values.size()) {
    return absl::InvalidArgumentError(fmt::format(
        "FitTrend: {} days but {} values; pass one value per day", days.size(), values.size()));
  }
  for (size_t i = 0; i < days.size(); ++i) {
    if (!std::isfinite(days[i]) || !std::isfinite(values[i])) {
      return absl::InvalidArgumentError(fmt::format(
          "FitTrend: point {} (day {}, value {}) is not finite; leave undefined days out", i,
          days[i], values[i]));
    }
  }
  const size_t n = days.size();
  if (n < 3) {
    return absl::FailedPreconditionError(fmt::format(
        "FitTrend: {} day(s) with a value; a trend needs at least 3 (widen the window or wait "
        "for more labelled traffic)",
        n));
  }
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += days[i];
    my += values[i];
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = days[i] - mx, dy = values[i] - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx <= 0) {
    return absl::FailedPreconditionError(
        "FitTrend: every value is on the same day; a trend needs at least 3 distinct days");
  }
  Trend t;
  t.days = static_cast<int>(n);
  t.slope_per_day = sxy / sxx;
  t.intercept = my - t.slope_per_day * mx;
  double sse = 0;  // residual sum of squares, summed directly (no cancellation)
  for (size_t i = 0; i < n; ++i) {
    const double r = values[i] - (t.intercept + t.slope_per_day * days[i]);
    sse += r * r;
  }
  t.r2 = syy > 0 ? std::max(0.0, 1.0 - sse / syy) : 1.0;
  const double dof = static_cast<double>(n - 2);
  const double se = std::sqrt(sse / dof / sxx);
  const boost::math::students_t dist(dof);
  const double tq = boost::math::quantile(boost::math::complement(dist, 0.025));
  t.ci_low = t.slope_per_day - tq * se;
  t.ci_high = t.slope_per_day + tq * se;
  return t;
}

}  // namespace ferry::monitor
