#include "ferry/model/gates.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::model {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

Gate One(const json& gates) {
  absl::StatusOr<std::vector<Gate>> g = ParseGates(gates);
  EXPECT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->size(), 1u);
  return g->front();
}

TEST(ParseGates, ThresholdsChampionAndToleranceForms) {
  Gate auc = One({{"auc", ">= 0.75"}});
  EXPECT_EQ(auc.kind, Gate::Kind::kMetric);
  EXPECT_EQ(auc.op, ">=");
  EXPECT_FALSE(auc.vs_champion);
  EXPECT_DOUBLE_EQ(auc.number, 0.75);

  Gate ll = One({{"logloss", "<= champion * 1.02"}});
  EXPECT_TRUE(ll.vs_champion);
  EXPECT_EQ(ll.champion_op, '*');
  EXPECT_DOUBLE_EQ(ll.number, 1.02);

  Gate minus = One({{"accuracy", ">champion - 0.01"}});
  EXPECT_EQ(minus.op, ">");
  EXPECT_EQ(minus.champion_op, '-');
  EXPECT_DOUBLE_EQ(minus.number, 0.01);

  Gate plain = One({{"f1", ">= champion"}});
  EXPECT_TRUE(plain.vs_champion);
  EXPECT_EQ(plain.champion_op, 0);

  Gate ws = One({{"weight_shift", "<= 0.25"}});
  EXPECT_EQ(ws.kind, Gate::Kind::kWeightShift);

  Gate rep = One({{"reproducible", true}});
  EXPECT_EQ(rep.kind, Gate::Kind::kReproducible);
  EXPECT_TRUE(rep.enabled);
  EXPECT_DOUBLE_EQ(rep.tolerance, 1e-9);

  Gate parity = One({{"serving_parity", {{"tolerance", 1e-6}}}});
  EXPECT_EQ(parity.kind, Gate::Kind::kServingParity);
  EXPECT_DOUBLE_EQ(parity.tolerance, 1e-6);

  EXPECT_FALSE(One({{"reproducible", false}}).enabled);
}

TEST(ParseGates, ReportsEveryBadEntryWithItsName) {
  absl::StatusOr<std::vector<Gate>> g = ParseGates({{"aucc", ">= 0.7"},
                                                    {"auc", "0.7"},
                                                    {"logloss", "<= champion / 2"},
                                                    {"weight_shift", "<= champion"},
                                                    {"reproducible", "yes"},
                                                    {"rmse", 3}});
  ASSERT_FALSE(g.ok());
  const std::string m(g.status().message());
  EXPECT_THAT(m, HasSubstr("gates.aucc: unknown gate"));
  EXPECT_THAT(m, HasSubstr("gates.auc: '0.7' has no comparison operator"));
  EXPECT_THAT(m, HasSubstr("gates.logloss: '<= champion / 2': after 'champion' write"));
  EXPECT_THAT(m, HasSubstr("gates.weight_shift: '<= champion': this gate compares with a number"));
  EXPECT_THAT(m, HasSubstr("gates.reproducible: expected true, false or {tolerance"));
  EXPECT_THAT(m, HasSubstr("gates.rmse: expected a quoted comparison, got 3"));
  EXPECT_FALSE(ParseGates(json::array()).ok());
  EXPECT_TRUE(ParseGates(nullptr)->empty());
}

TEST(Decide, ComparesWithANumberOrTheChampion) {
  GateResult pass = Decide(One({{"auc", ">= 0.75"}}), 0.8);
  EXPECT_TRUE(pass.passed);
  EXPECT_DOUBLE_EQ(*pass.threshold, 0.75);
  GateResult fail = Decide(One({{"auc", ">= 0.75"}}), 0.7);
  EXPECT_FALSE(fail.passed);
  EXPECT_DOUBLE_EQ(*fail.value, 0.7);

  Gate ll = One({{"logloss", "<= champion * 1.02"}});
  GateResult worse = Decide(ll, 0.52, 0.5);
  EXPECT_FALSE(worse.passed);
  EXPECT_DOUBLE_EQ(*worse.threshold, 0.51);
  EXPECT_TRUE(Decide(ll, 0.505, 0.5).passed);

  GateResult first = Decide(ll, 9.0, std::nullopt);
  EXPECT_TRUE(first.passed);
  EXPECT_EQ(first.detail, "no champion yet: nothing to compare with");
  EXPECT_FALSE(first.threshold.has_value());

  EXPECT_FALSE(Decide(One({{"auc", ">= 0.5"}}), std::nan("")).passed);
  EXPECT_TRUE(Decide(One({{"r2", "> champion + 0.01"}}), 0.62, 0.6).passed);
  EXPECT_FALSE(Decide(One({{"r2", "> champion + 0.01"}}), 0.61, 0.6).passed);
}

TEST(DecideTolerance, LargestDifferenceAgainstTheTolerance) {
  Gate g = One({{"serving_parity", {{"tolerance", 1e-6}}}});
  EXPECT_TRUE(DecideTolerance(g, 5e-7).passed);
  GateResult r = DecideTolerance(g, 2e-6, "100 rows");
  EXPECT_FALSE(r.passed);
  EXPECT_DOUBLE_EQ(*r.value, 2e-6);
  EXPECT_DOUBLE_EQ(*r.threshold, 1e-6);
  EXPECT_FALSE(DecideTolerance(g, INFINITY).passed);
  EXPECT_FALSE(Unmeasured(g, "why").passed);
}

TEST(WeightShift, RelativeL2ForCoefficients) {
  json before = {{"kind", "coefficients"}, {"values", {{"a", 3.0}, {"b", 4.0}}}, {"intercept", 9}};
  json now = {{"kind", "coefficients"}, {"values", {{"a", 3.0}, {"b", 4.0}, {"c", 1.0}}}};
  EXPECT_DOUBLE_EQ(*WeightShift(now, before), 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(*WeightShift(before, before), 0.0);
  json zero = {{"kind", "coefficients"}, {"values", {{"a", 0.0}}}};
  EXPECT_DOUBLE_EQ(*WeightShift(now, zero), 1.0);
  EXPECT_DOUBLE_EQ(*WeightShift(zero, zero), 0.0);
  // Multiclass: per-class maps are flattened into (class, feature) keys.
  json m1 = {{"kind", "coefficients"}, {"values", {{"x", {{"a", 1.0}}}, {"y", {{"a", 0.0}}}}}};
  json m2 = {{"kind", "coefficients"}, {"values", {{"x", {{"a", 1.0}}}, {"y", {{"a", 1.0}}}}}};
  EXPECT_DOUBLE_EQ(*WeightShift(m2, m1), 1.0);
}

TEST(WeightShift, TotalVariationForImportance) {
  json before = {{"kind", "importance"}, {"values", {{"a", 2.0}, {"b", 2.0}}}};
  json now = {{"kind", "importance"}, {"values", {{"a", 3.0}, {"b", 1.0}}}};
  EXPECT_DOUBLE_EQ(*WeightShift(now, before), 0.25);
  json disjoint = {{"kind", "importance"}, {"values", {{"c", 1.0}}}};
  EXPECT_DOUBLE_EQ(*WeightShift(disjoint, before), 1.0);
  absl::StatusOr<double> mixed =
      WeightShift(now, {{"kind", "coefficients"}, {"values", {{"a", 1.0}}}});
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mixed.status().message(), HasSubstr("cannot compare importance with coefficients"));
}

TEST(GatesReport, JsonAndText) {
  std::vector<GateResult> results = {Decide(One({{"auc", ">= 0.75"}}), 0.8),
                                     Decide(One({{"logloss", "<= 0.4"}}), 0.5)};
  json j = GatesToJson(results);
  EXPECT_EQ(j["passed"], false);
  ASSERT_EQ(j["gates"].size(), 2u);
  EXPECT_EQ(j["gates"][0]["name"], "auc");
  EXPECT_EQ(j["gates"][0]["passed"], true);
  EXPECT_EQ(j["gates"][1]["threshold"], 0.4);
  EXPECT_EQ(GatesToText(results),
            "PASS auc 0.8 (gate: >= 0.75; threshold 0.75)\n"
            "FAIL logloss 0.5 (gate: <= 0.4; threshold 0.4)\n");
}

TEST(HigherIsBetter, KnowsTheDirectionOfEveryMetric) {
  EXPECT_TRUE(*HigherIsBetter("auc"));
  EXPECT_TRUE(*HigherIsBetter("r2"));
  EXPECT_FALSE(*HigherIsBetter("logloss"));
  EXPECT_FALSE(*HigherIsBetter("rmse"));
  EXPECT_EQ(HigherIsBetter("speed").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry::model
