#pragma once
// A private copy of serve::HistogramQuantileMs (serve/metrics.h, written on another branch),
// until the branches merge: the rollout reconciler then uses the shared one and this file goes.
// Pure functions; thread-safe.

#include <cstdint>
#include <limits>
#include <vector>

namespace ferry::controller::internal {

// Upper bounds of the serving latency histogram, in milliseconds; a last bucket is +Inf.
inline const std::vector<double> kLatencyBoundsMs = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

// The q-quantile (0..1) of a histogram given as non-cumulative counts per bound of
// kLatencyBoundsMs plus +Inf (kLatencyBoundsMs.size() + 1 entries), interpolated linearly inside
// its bucket as Prometheus's histogram_quantile does; the +Inf bucket answers the last bound.
// NaN when there are no counts or the vector has the wrong size.
inline double HistogramQuantileMs(const std::vector<int64_t>& counts, double q) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (counts.size() != kLatencyBoundsMs.size() + 1) return nan;
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (total <= 0) return nan;
  const double rank = q * static_cast<double>(total);
  int64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > 0 && static_cast<double>(below + counts[i]) >= rank) {
      if (i == kLatencyBoundsMs.size()) return kLatencyBoundsMs.back();
      const double lo = i == 0 ? 0.0 : kLatencyBoundsMs[i - 1];
      const double hi = kLatencyBoundsMs[i];
      const double into = (rank - static_cast<double>(below)) / static_cast<double>(counts[i]);
      return lo + (hi - lo) * (into < 0 ? 0 : into);
    }
    below += counts[i];
  }
  return kLatencyBoundsMs.back();
}

}  // namespace ferry::controller::internal
