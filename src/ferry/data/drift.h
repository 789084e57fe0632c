#pragma once
// Drift statistics: how far the distribution of a column in a current window (serving traffic, a
// new dataset version) has moved from a reference (the training data), used by validation,
// monitoring and the UI. All functions are pure and thread-safe; nothing here throws.
//
// Two levels (docs/drift.md has every formula, what is exact, what is binned, the tolerances):
//   - sample level, exact, as scipy computes them: KsTwoSample (statistic and p-value, scipy's
//     method "auto": exact below 10,001 values per side, else the asymptotic path with the
//     Kolmogorov distribution of n_eff values), Wasserstein1;
//   - binned, on two count vectors over the same bins or categories: Psi, JensenShannon,
//     ChiSquared.
// CompareToProfile combines them for one column against a stored ColumnProfile, so that drift
// needs only the training profile, never the training data again.
//
// Undefined cases (a side with no values or no counts) give NaN from the free functions and an
// empty optional from CompareToProfile; they never abort.
//
// Example:
//   KsResult ks = KsTwoSample(train_values, current_values);   // ks.statistic, ks.pvalue
//   ColumnDrift d = CompareToProfile(*profile.Find("tenure"), table.column("tenure"));
//   if (d.scores.psi && *d.scores.psi > 0.25) { ... major shift ... }
//   nlohmann::json j = ColumnDriftToJson(d);

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ferry/data/profile.h"
#include "ferry/data/table.h"
#include "nlohmann/json.hpp"

namespace ferry::data {

struct KsResult {
  double statistic;  // sup |F_a - F_b|, in [0, 1]
  double pvalue;     // two-sided
};

// = scipy.stats.ks_2samp(a, b) (two-sided, method "auto"). NaNs are dropped first; when a side
// is then empty both fields are NaN. Sorts with a radix sort on the IEEE bits.
KsResult KsTwoSample(std::vector<double> a, std::vector<double> b);
// The same on inputs already sorted ascending without NaN (SortedWithoutNaN), for callers that
// sort once and reuse the order (quantiles, several statistics).
KsResult KsTwoSampleSorted(const std::vector<double>& a, const std::vector<double>& b);
// = scipy.stats.kstwo.sf(d, n): P(D_n >= d) of the two-sided one-sample Kolmogorov statistic of
// n values (Simard & L'Ecuyer's choice of method per region). The asymptotic KS p-values use it
// with n = round(n_a * n_b / (n_a + n_b)), as scipy does.
double KolmogorovSf(int64_t n, double d);

// = scipy.stats.wasserstein_distance(a, b): the area between the two empirical CDFs. NaNs are
// dropped first; NaN when a side is then empty.
double Wasserstein1(std::vector<double> a, std::vector<double> b);
// The weighted form, = scipy.stats.wasserstein_distance(u, v, u_weights, v_weights). Weights are
// non-negative; NaN when a side's weights sum to 0 or sizes differ.
double Wasserstein1Weighted(const std::vector<double>& u, const std::vector<double>& u_weights,
                            const std::vector<double>& v, const std::vector<double>& v_weights);

// Population stability index over the same bins: sum_i (c_i - r_i) * ln(c_i / r_i) where r_i,
// c_i are the proportions of each side, each floored at kPsiEpsilon (an empty bin would make the
// log infinite; the floored proportions are not renormalised). NaN when a side has no counts or
// the sizes differ. Readings: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
inline constexpr double kPsiEpsilon = 1e-4;
double Psi(const std::vector<int64_t>& reference, const std::vector<int64_t>& current);

// = scipy.spatial.distance.jensenshannon(p, q, base=2): the Jensen-Shannon *distance* (the square
// root of the divergence) in bits, in [0, 1]; 0 = same distribution. NaN when a side has no
// counts or the sizes differ.
double JensenShannon(const std::vector<int64_t>& p, const std::vector<int64_t>& q);

struct Chi2Result {
  double statistic;
  double pvalue;
  int dof;
};
// = scipy.stats.chi2_contingency([reference, current], correction=False) over the categories
// whose total is non-zero (Pearson's statistic, dof = categories - 1; one category gives 0, 1.0,
// 0 as scipy). NaN statistic and p-value when a side has no counts or the sizes differ.
Chi2Result ChiSquared(const std::vector<int64_t>& reference, const std::vector<int64_t>& current);

// Sorting and quantiles shared by the statistics and their benchmark.
// The values without NaN, ascending (-inf first), by an LSD radix sort on the IEEE bits.
std::vector<double> SortedWithoutNaN(std::vector<double> values);
// = numpy.quantile(values, q) (method "linear") of ascending, NaN-free values; NaN when empty.
double QuantileOfSorted(const std::vector<double>& sorted, double q);

struct DriftScores {
  std::optional<double> psi, ks, ks_pvalue, wasserstein, js, chi2, chi2_pvalue;
};

// One column's comparison. Numeric: `edges` are the reference histogram's, the counts are per
// bin (current values outside the edges go to the first / last bin). Categorical (string and
// bool columns): `categories` are the reference's top values, then "__other__", then the current
// values the reference never had, most frequent first (only listed when the reference's top holds
// all its distinct values; otherwise a value outside the top may be a tail value, and it counts
// as "__other__").
struct ColumnDrift {
  std::string name;
  bool categorical = false;
  std::vector<double> edges;
  std::vector<int64_t> reference_counts, current_counts;
  std::vector<std::string> categories;
  DriftScores scores;
};

// Numeric: PSI and JS on the bins; KS = max |CDF_ref - CDF_cur| at the bin edges with the
// asymptotic p-value KolmogorovSf(round(n*m/(n+m)), ks); Wasserstein-1 between the bin centres
// weighted by each side's counts. Categorical: PSI, JS and chi-squared on the categories. A
// statistic that does not apply (or a side without values) is left empty.
ColumnDrift CompareToProfile(const ColumnProfile& reference, const Column& current);
// Every column of `current` that the profile has, in the profile's order, in parallel
// (threads: 0 = one per core). Columns missing from `current` are skipped.
std::vector<ColumnDrift> CompareTableToProfile(const Profile& reference, const Table& current,
                                               int threads = 0);

// {"name", "categorical", "edges"?, "categories"?, "reference_counts", "current_counts",
//  "psi", "ks", "ks_pvalue", "wasserstein", "js", "chi2", "chi2_pvalue"} (null when empty).
nlohmann::json ColumnDriftToJson(const ColumnDrift& drift);

}  // namespace ferry::data
