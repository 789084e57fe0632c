// Drift statistics against scipy/numpy: every case of tests/reference/drift_reference.json
// (written by tests/reference/drift_reference.py) checked to the tolerances of docs/drift.md,
// CompareToProfile on a profiled table against the same binned statistics computed by the
// script, and the undefined cases.

#include "ferry/data/drift.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace ferry::data {
namespace {

// docs/drift.md: the exact statistics to 1e-9 relative, p-values to 1e-9 absolute (scipy's own
// p-values are computed in doubles with different operation orders).
constexpr double kRel = 1e-9;
constexpr double kPAbs = 1e-9;

const nlohmann::json& Reference() {
  static const nlohmann::json* json = [] {
    std::ifstream in(std::string(FERRY_SOURCE_DIR) + "/tests/reference/drift_reference.json");
    std::stringstream s;
    s << in.rdbuf();
    return new nlohmann::json(nlohmann::json::parse(s.str(), nullptr, /*allow_exceptions=*/false));
  }();
  return *json;
}

void ExpectRel(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, kRel * std::max(1.0, std::abs(expected))) << what;
}

std::vector<double> Values(const nlohmann::json& case_json, const std::string& key) {
  std::vector<double> out;
  if (case_json.contains(key)) {
    for (const nlohmann::json& v : case_json[key]) {
      out.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
    }
  } else {
    for (const nlohmann::json& run : case_json[key + "_runs"]) {
      out.insert(out.end(), run[1].get<size_t>(), run[0].get<double>());
    }
  }
  return out;
}

TEST(DriftReferenceTest, FileIsThere) {
  ASSERT_TRUE(Reference().is_object())
      << "tests/reference/drift_reference.json is missing or malformed; regenerate it with "
         "tests/reference/drift_reference.py";
  EXPECT_EQ(Reference()["samples"].size(), 11u);
  EXPECT_EQ(Reference()["psi_epsilon"].get<double>(), kPsiEpsilon);
}

TEST(DriftReferenceTest, KsTwoSampleMatchesScipy) {
  for (const nlohmann::json& c : Reference()["samples"]) {
    std::string name = c["name"];
    KsResult r = KsTwoSample(Values(c, "a"), Values(c, "b"));
    ExpectRel(r.statistic, c["ks"].get<double>(), name + " statistic");
    EXPECT_NEAR(r.pvalue, c["ks_pvalue"].get<double>(), kPAbs) << name;
    // Small p-values are also close relative to their size (the exact paths).
    if (c["ks_pvalue"].get<double>() > 1e-12) {
      EXPECT_NEAR(r.pvalue / c["ks_pvalue"].get<double>(), 1.0, 1e-6) << name;
    }
  }
}

TEST(DriftReferenceTest, Wasserstein1MatchesScipy) {
  for (const nlohmann::json& c : Reference()["samples"]) {
    ExpectRel(Wasserstein1(Values(c, "a"), Values(c, "b")), c["wasserstein"].get<double>(),
              c["name"].get<std::string>());
  }
  for (const nlohmann::json& c : Reference()["wasserstein_weighted"]) {
    double w = Wasserstein1Weighted(
        c["u"].get<std::vector<double>>(), c["u_weights"].get<std::vector<double>>(),
        c["v"].get<std::vector<double>>(), c["v_weights"].get<std::vector<double>>());
    ExpectRel(w, c["wasserstein"].get<double>(), c["name"].get<std::string>());
  }
}

TEST(DriftReferenceTest, KolmogorovSfMatchesScipyInEveryRegion) {
  size_t checked = 0;
  for (const nlohmann::json& c : Reference()["kolmogorov_sf"]) {
    int64_t n = c["n"];
    double d = c["d"], sf = c["sf"];
    EXPECT_NEAR(KolmogorovSf(n, d), sf, kPAbs) << "n=" << n << " d=" << d;
    ++checked;
  }
  EXPECT_GT(checked, 150u);
}

TEST(DriftReferenceTest, BinnedStatisticsMatchScipy) {
  for (const nlohmann::json& c : Reference()["binned"]) {
    std::string name = c["name"];
    auto r = c["reference"].get<std::vector<int64_t>>();
    auto q = c["current"].get<std::vector<int64_t>>();
    ExpectRel(Psi(r, q), c["psi"].get<double>(), name + " psi");
    ExpectRel(JensenShannon(r, q), c["js"].get<double>(), name + " js");
    Chi2Result chi = ChiSquared(r, q);
    ExpectRel(chi.statistic, c["chi2"]["statistic"].get<double>(), name + " chi2");
    EXPECT_NEAR(chi.pvalue, c["chi2"]["pvalue"].get<double>(), kPAbs) << name;
    EXPECT_EQ(chi.dof, c["chi2"]["dof"].get<int>()) << name;
  }
}

TEST(CompareToProfileTest, NumericColumnMatchesTheScriptsBinnedStatistics) {
  const nlohmann::json& c = Reference()["numeric_profile"];
  Table ref, cur;
  Column& r = ref.AddColumn("x", ColumnType::kFloat64);
  for (double v : Values(c, "reference")) r.AppendDouble(v);
  Column& k = cur.AddColumn("x", ColumnType::kFloat64);
  for (double v : Values(c, "current")) k.AppendDouble(v);
  k.AppendNull();  // nulls are not values
  Profile p = ComputeProfile(ref, {.bins = 20});
  ColumnDrift d = CompareToProfile(p.columns[0], cur.column("x"));
  EXPECT_EQ(d.name, "x");
  EXPECT_FALSE(d.categorical);
  ASSERT_EQ(d.edges.size(), 21u);
  for (size_t i = 0; i < d.edges.size(); ++i) ExpectRel(d.edges[i], c["edges"][i], "edge");
  EXPECT_EQ(d.reference_counts, c["reference_counts"].get<std::vector<int64_t>>());
  EXPECT_EQ(d.current_counts, c["current_counts"].get<std::vector<int64_t>>());
  ASSERT_TRUE(d.scores.psi && d.scores.js && d.scores.ks && d.scores.ks_pvalue &&
              d.scores.wasserstein);
  ExpectRel(*d.scores.psi, c["psi"], "psi");
  ExpectRel(*d.scores.js, c["js"], "js");
  ExpectRel(*d.scores.ks, c["ks"], "ks");
  EXPECT_NEAR(*d.scores.ks_pvalue, c["ks_pvalue"].get<double>(), kPAbs);
  ExpectRel(*d.scores.wasserstein, c["wasserstein"], "wasserstein");
  EXPECT_FALSE(d.scores.chi2.has_value());
  EXPECT_GT(*d.scores.psi, 0.25);  // the shift of 4 (0.4 sd) is a major one

  // The binned KS is close to the exact sample statistic (docs/drift.md: within a bin's mass).
  KsResult exact = KsTwoSample(Values(c, "reference"), Values(c, "current"));
  EXPECT_NEAR(*d.scores.ks, exact.statistic, 0.05);

  nlohmann::json j = ColumnDriftToJson(d);
  EXPECT_EQ(j["psi"].get<double>(), *d.scores.psi);
  EXPECT_TRUE(j["chi2"].is_null());
  EXPECT_TRUE(j["chi2_pvalue"].is_null());
  EXPECT_EQ(j["edges"].size(), 21u);
}

TEST(CompareToProfileTest, CategoricalColumnListsUnseenValuesAfterOther) {
  const nlohmann::json& c = Reference()["categorical_profile"];
  Table ref, cur;
  Column& r = ref.AddColumn("plan", ColumnType::kString);
  for (const nlohmann::json& v : c["reference_values"]) r.AppendString(v.get<std::string>());
  Column& k = cur.AddColumn("plan", ColumnType::kString);
  for (const nlohmann::json& v : c["current_values"]) k.AppendString(v.get<std::string>());
  Profile p = ComputeProfile(ref);
  ColumnDrift d = CompareToProfile(p.columns[0], cur.column("plan"));
  EXPECT_TRUE(d.categorical);
  EXPECT_EQ(d.categories, c["categories"].get<std::vector<std::string>>());
  EXPECT_EQ(d.reference_counts, c["reference"].get<std::vector<int64_t>>());
  EXPECT_EQ(d.current_counts, c["current"].get<std::vector<int64_t>>());
  ASSERT_TRUE(d.scores.psi && d.scores.js && d.scores.chi2 && d.scores.chi2_pvalue);
  ExpectRel(*d.scores.psi, c["psi"], "psi");
  ExpectRel(*d.scores.js, c["js"], "js");
  ExpectRel(*d.scores.chi2, c["chi2"]["statistic"], "chi2");
  EXPECT_NEAR(*d.scores.chi2_pvalue, c["chi2"]["pvalue"].get<double>(), kPAbs);
  EXPECT_FALSE(d.scores.ks.has_value());
  EXPECT_FALSE(d.scores.wasserstein.has_value());
}

TEST(CompareToProfileTest, ValuesOutsideAnIncompleteTopCountAsOther) {
  ColumnProfile ref;
  ref.name = "city";
  ref.type = ColumnType::kString;
  ref.count = 100;
  ref.distinct = 5;  // the top below holds 2 of the 5
  ref.top = {{"paris", 50}, {"rome", 30}};
  Column cur("city", ColumnType::kString);
  for (const char* v : {"paris", "oslo", "oslo", "rome", "lima"}) cur.AppendString(v);
  ColumnDrift d = CompareToProfile(ref, cur);
  EXPECT_EQ(d.categories, (std::vector<std::string>{"paris", "rome", "__other__"}));
  EXPECT_EQ(d.reference_counts, (std::vector<int64_t>{50, 30, 20}));
  EXPECT_EQ(d.current_counts, (std::vector<int64_t>{1, 1, 3}));
}

TEST(CompareToProfileTest, BoolColumnIsCategorical) {
  Table ref, cur;
  Column& r = ref.AddColumn("active", ColumnType::kBool);
  for (int i = 0; i < 10; ++i) r.AppendBool(i < 7);
  Column& k = cur.AddColumn("active", ColumnType::kBool);
  for (int i = 0; i < 10; ++i) k.AppendBool(i < 3);
  Profile p = ComputeProfile(ref);
  ColumnDrift d = CompareToProfile(p.columns[0], cur.column("active"));
  EXPECT_TRUE(d.categorical);
  EXPECT_EQ(d.categories, (std::vector<std::string>{"true", "false", "__other__"}));
  EXPECT_EQ(d.reference_counts, (std::vector<int64_t>{7, 3, 0}));
  EXPECT_EQ(d.current_counts, (std::vector<int64_t>{3, 7, 0}));
  ASSERT_TRUE(d.scores.chi2.has_value());
  EXPECT_NEAR(*d.scores.chi2, 3.2, 1e-12);  // 2x2 table: N (ad - bc)^2 / (row and column totals)
}

TEST(CompareToProfileTest, EmptyCurrentLeavesEveryScoreEmpty) {
  Table ref;
  Column& r = ref.AddColumn("x", ColumnType::kInt64);
  for (int i = 0; i < 50; ++i) r.AppendInt(i);
  Column cur("x", ColumnType::kInt64);
  cur.AppendNull();
  Profile p = ComputeProfile(ref);
  ColumnDrift d = CompareToProfile(p.columns[0], cur);
  EXPECT_EQ(d.current_counts, std::vector<int64_t>(20, 0));
  EXPECT_FALSE(d.scores.psi || d.scores.ks || d.scores.ks_pvalue || d.scores.wasserstein ||
               d.scores.js || d.scores.chi2 || d.scores.chi2_pvalue);
  nlohmann::json j = ColumnDriftToJson(d);
  for (const char* key : {"psi", "ks", "ks_pvalue", "wasserstein", "js", "chi2", "chi2_pvalue"}) {
    EXPECT_TRUE(j[key].is_null()) << key;
  }
}

TEST(CompareToProfileTest, TableComparisonSkipsMissingColumnsInProfileOrder) {
  Table ref, cur;
  Column a("a", ColumnType::kFloat64), b("b", ColumnType::kString);
  for (int i = 0; i < 30; ++i) {
    a.AppendDouble(i);
    b.AppendString(i % 2 == 0 ? "x" : "y");
  }
  ref.AddColumn(std::move(a));
  ref.AddColumn(std::move(b));
  Column& ca = cur.AddColumn("a", ColumnType::kFloat64);
  for (int i = 0; i < 30; ++i) ca.AppendDouble(i);
  std::vector<ColumnDrift> d = CompareTableToProfile(ComputeProfile(ref), cur, 2);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].name, "a");
  ASSERT_TRUE(d[0].scores.psi.has_value());
  EXPECT_EQ(*d[0].scores.psi, 0.0);
  EXPECT_EQ(*d[0].scores.ks, 0.0);
  EXPECT_EQ(*d[0].scores.ks_pvalue, 1.0);
  EXPECT_EQ(*d[0].scores.wasserstein, 0.0);
}

TEST(DriftTest, UndefinedInputsGiveNaN) {
  EXPECT_TRUE(std::isnan(KsTwoSample({}, {1.0}).statistic));
  EXPECT_TRUE(std::isnan(KsTwoSample({std::nan("")}, {1.0}).pvalue));
  EXPECT_TRUE(std::isnan(Wasserstein1({1.0}, {})));
  EXPECT_TRUE(std::isnan(Psi({0, 0}, {1, 2})));
  EXPECT_TRUE(std::isnan(Psi({1, 2, 3}, {1, 2})));
  EXPECT_TRUE(std::isnan(JensenShannon({1}, {0})));
  EXPECT_TRUE(std::isnan(ChiSquared({1, 2}, {0, 0}).statistic));
  EXPECT_TRUE(std::isnan(KolmogorovSf(0, 0.5)));
}

TEST(DriftTest, SortedWithoutNaNOrdersSignedValuesAndInfinities) {
  std::vector<double> v;
  for (int i = 0; i < 1000; ++i) v.push_back(std::sin(i) * 1e3 * (i % 7 == 0 ? 1e-300 : 1));
  v.push_back(-std::numeric_limits<double>::infinity());
  v.push_back(std::numeric_limits<double>::infinity());
  v.push_back(std::nan(""));
  v.push_back(-0.0);
  std::vector<double> expected;
  for (double x : v) {
    if (!std::isnan(x)) expected.push_back(x);
  }
  std::sort(expected.begin(), expected.end());
  std::vector<double> got = SortedWithoutNaN(v);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected[i]) << i;
}

TEST(DriftTest, QuantileOfSortedIsNumpyLinear) {
  std::vector<double> v = {1, 2, 4, 8, 16};
  EXPECT_EQ(QuantileOfSorted(v, 0.0), 1);
  EXPECT_EQ(QuantileOfSorted(v, 1.0), 16);
  EXPECT_EQ(QuantileOfSorted(v, 0.5), 4);
  EXPECT_EQ(QuantileOfSorted(v, 0.1), 1.4);   // numpy.quantile([1,2,4,8,16], 0.1)
  EXPECT_EQ(QuantileOfSorted(v, 0.9), 12.8);  // numpy.quantile([1,2,4,8,16], 0.9)
  EXPECT_TRUE(std::isnan(QuantileOfSorted({}, 0.5)));
}

}  // namespace
}  // namespace ferry::data
