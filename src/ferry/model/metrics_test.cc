#include "ferry/model/metrics.h"

#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ferry/common/status.h"
#include "gtest/gtest.h"

namespace ferry::model {
namespace {

// Whether a status message mentions `text`, printing the message when not.
::testing::AssertionResult MessageHas(const absl::Status& status, std::string_view text) {
  const std::string message(status.message());
  if (message.find(text) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << message << "' lacks '" << text << "'";
}

std::string ReferencePath() {
  return std::string(FERRY_SOURCE_DIR) + "/tests/fixtures/model/metrics_reference.json";
}

nlohmann::json LoadReference() {
  std::ifstream in(ReferencePath());
  EXPECT_TRUE(in.good()) << ReferencePath();
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

// Within 1e-9 of sklearn's value, relative for values above 1 (MAPE with a zero target is
// ~1e13, where 1e-9 absolute is below a double's resolution). null means NaN.
void ExpectMatches(double actual, const nlohmann::json& expected, const std::string& what) {
  if (expected.is_null()) {
    EXPECT_TRUE(std::isnan(actual)) << what << " = " << actual << ", sklearn: undefined";
    return;
  }
  const double e = expected.get<double>();
  EXPECT_NEAR(actual, e, 1e-9 * std::max(1.0, std::abs(e))) << what;
}

Predictions Binary(const std::vector<double>& p1) {
  Predictions p{.task = Task::kBinary, .rows = p1.size(), .classes = {"0", "1"}};
  for (double v : p1) {
    p.values.push_back(1 - v);
    p.values.push_back(v);
  }
  return p;
}

Predictions Regression(const std::vector<double>& values) {
  return {.task = Task::kRegression, .rows = values.size(), .values = values};
}

TEST(MetricsReferenceTest, EqualsScikitLearn) {
  const nlohmann::json ref = LoadReference();
  ASSERT_EQ(ref["cases"].size(), 8u);
  for (const nlohmann::json& c : ref["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const nlohmann::json& e = c["expected"];
    if (c["task"] == "regression") {
      auto m = Regress(c["y_true"].get<std::vector<double>>(),
                       Regression(c["values"].get<std::vector<double>>()));
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_EQ(m->rows, e["rows"].get<int64_t>());
      ExpectMatches(m->rmse, e["rmse"], "rmse");
      ExpectMatches(m->mae, e["mae"], "mae");
      ExpectMatches(m->r2, e["r2"], "r2");
      ExpectMatches(m->mape, e["mape"], "mape");
      continue;
    }
    Predictions p{.task = c["task"] == "binary" ? Task::kBinary : Task::kMulticlass,
                  .classes = c["classes"].get<std::vector<std::string>>(),
                  .values = c["proba"].get<std::vector<double>>()};
    p.rows = p.values.size() / p.classes.size();
    auto m = Classify(c["y_true"].get<std::vector<int>>(), p, c["threshold"].get<double>());
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->rows, e["rows"].get<int64_t>());
    ExpectMatches(m->accuracy, e["accuracy"], "accuracy");
    ExpectMatches(m->precision, e["precision"], "precision");
    ExpectMatches(m->recall, e["recall"], "recall");
    ExpectMatches(m->f1, e["f1"], "f1");
    ExpectMatches(m->roc_auc, e["roc_auc"], "roc_auc");
    ExpectMatches(m->pr_auc, e["pr_auc"], "pr_auc");
    ExpectMatches(m->log_loss, e["log_loss"], "log_loss");
    EXPECT_EQ(m->confusion, e["confusion"].get<std::vector<std::vector<int64_t>>>());
    if (p.task != Task::kBinary) {
      EXPECT_TRUE(m->calibration.empty());
      continue;
    }
    ASSERT_EQ(m->calibration.size(), e["calibration"].size());
    for (size_t b = 0; b < m->calibration.size(); ++b) {
      const CalibrationBin& got = m->calibration[b];
      const nlohmann::json& want = e["calibration"][b];
      SCOPED_TRACE(fmt::format("calibration bin {}", b));
      EXPECT_EQ(got.lower, want["lower"].get<double>());
      EXPECT_EQ(got.upper, want["upper"].get<double>());
      EXPECT_EQ(got.count, want["count"].get<int64_t>());
      ExpectMatches(got.mean_predicted, want["mean_predicted"], "mean_predicted");
      ExpectMatches(got.fraction_positive, want["fraction_positive"], "fraction_positive");
    }
    // The JSON form carries the same values, with null where sklearn has none.
    const nlohmann::json j = ToJson(*m);
    EXPECT_EQ(j["roc_auc"].is_null(), e["roc_auc"].is_null());
    EXPECT_EQ(j["calibration"].size(), 10u);
  }
}

TEST(ClassifyTest, HandComputedBinary) {
  // Sorted by score: 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-). Of the 4 positive-negative pairs, the
  // positive scores higher in 3: AUC 3/4. Average precision: recall 1/2 at precision 1, then
  // recall 1 at precision 2/3: 1/2 + 1/3.
  auto m = Classify({0, 0, 1, 1}, Binary({0.1, 0.4, 0.35, 0.8}));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->roc_auc, 0.75);
  EXPECT_DOUBLE_EQ(m->pr_auc, 0.5 + 1.0 / 3);
  // At 0.5 only 0.8 is positive: TP 1, FP 0, FN 1, TN 2.
  EXPECT_EQ(m->confusion, (std::vector<std::vector<int64_t>>{{2, 0}, {1, 1}}));
  EXPECT_DOUBLE_EQ(m->accuracy, 0.75);
  EXPECT_DOUBLE_EQ(m->precision, 1.0);
  EXPECT_DOUBLE_EQ(m->recall, 0.5);
  EXPECT_DOUBLE_EQ(m->f1, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m->log_loss,
                   -(std::log(0.9) + std::log(0.6) + std::log(0.35) + std::log(0.8)) / 4);
  EXPECT_EQ(m->rows, 4);
}

TEST(ClassifyTest, TiesCountHalf) {
  auto m = Classify({0, 1, 0, 1}, Binary({0.5, 0.5, 0.5, 0.5}));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->roc_auc, 0.5);
  EXPECT_DOUBLE_EQ(m->pr_auc, 0.5);  // one threshold: precision 1/2 at recall 1
  // p1 >= threshold is positive: everything is predicted positive.
  EXPECT_DOUBLE_EQ(m->precision, 0.5);
  EXPECT_DOUBLE_EQ(m->recall, 1.0);

  // One positive tied with one of two negatives, above the other: (1 + 1/2) / 2.
  m = Classify({1, 0, 0}, Binary({0.7, 0.7, 0.2}));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->roc_auc, 0.75);
}

TEST(ClassifyTest, ThresholdMovesPrecisionAndRecallNotRanking) {
  const std::vector<int> y = {0, 0, 1, 1};
  const Predictions p = Binary({0.1, 0.4, 0.35, 0.8});
  auto low = Classify(y, p, 0.3);  // predicts 0, 1, 1, 1
  ASSERT_TRUE(low.ok()) << low.status();
  EXPECT_DOUBLE_EQ(low->precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(low->recall, 1.0);
  EXPECT_DOUBLE_EQ(low->accuracy, 0.75);
  EXPECT_EQ(low->confusion, (std::vector<std::vector<int64_t>>{{1, 1}, {0, 2}}));
  auto high = Classify(y, p, 0.9);  // predicts nothing positive: 0/0 precision is 0
  ASSERT_TRUE(high.ok()) << high.status();
  EXPECT_EQ(high->precision, 0.0);
  EXPECT_EQ(high->recall, 0.0);
  EXPECT_EQ(high->f1, 0.0);
  EXPECT_DOUBLE_EQ(high->accuracy, 0.5);
  EXPECT_EQ(low->roc_auc, high->roc_auc);
  EXPECT_EQ(low->log_loss, high->log_loss);
  EXPECT_EQ(ToJson(*low)["threshold"], 0.3);
}

TEST(ClassifyTest, HandComputedMulticlass) {
  Predictions p{.task = Task::kMulticlass,
                .rows = 4,
                .classes = {"a", "b", "c"},
                .values = {0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.1, 0.3, 0.6, 0.3, 0.4, 0.3}};
  auto m = Classify({0, 1, 2, 2}, p, /*threshold=*/0.99);  // argmax: the threshold is unused
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->confusion, (std::vector<std::vector<int64_t>>{{1, 0, 0}, {0, 1, 0}, {0, 1, 1}}));
  EXPECT_DOUBLE_EQ(m->accuracy, 0.75);
  EXPECT_DOUBLE_EQ(m->precision, (1 + 0.5 + 1) / 3);
  EXPECT_DOUBLE_EQ(m->recall, (1 + 1 + 0.5) / 3);
  EXPECT_DOUBLE_EQ(m->f1, (1 + 2.0 / 3 + 2.0 / 3) / 3);
  // One-vs-rest: a and b rank their row first (1); c: 0.6 beats 0.1 and 0.3, 0.3 beats 0.1 and
  // ties 0.3: 3.5 / 4.
  EXPECT_DOUBLE_EQ(m->roc_auc, (1 + 1 + 0.875) / 3);
  EXPECT_DOUBLE_EQ(m->log_loss,
                   -(std::log(0.7) + std::log(0.5) + std::log(0.6) + std::log(0.3)) / 4);
  EXPECT_TRUE(m->calibration.empty());
  const nlohmann::json j = ToJson(*m);
  EXPECT_EQ(j["task"], "multiclass");
  EXPECT_EQ(j["classes"], nlohmann::json({"a", "b", "c"}));
  EXPECT_FALSE(j.contains("calibration"));

  // A class absent from y_true: its one-vs-rest AUC is undefined, so is the macro mean.
  m = Classify({0, 1, 1, 0}, p);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(std::isnan(m->roc_auc));
  EXPECT_TRUE(std::isnan(m->pr_auc));
}

TEST(ClassifyTest, SingleClassHasNoAucs) {
  auto m = Classify({1, 1, 1}, Binary({0.2, 0.9, 0.6}));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(std::isnan(m->roc_auc));
  EXPECT_TRUE(std::isnan(m->pr_auc));
  EXPECT_DOUBLE_EQ(m->accuracy, 2.0 / 3);
  const nlohmann::json j = ToJson(*m);
  EXPECT_TRUE(j["roc_auc"].is_null());
  EXPECT_TRUE(j["pr_auc"].is_null());
  EXPECT_EQ(j.dump().find("NaN"), std::string::npos);
  auto auc = MetricValue(j, "auc");
  EXPECT_EQ(auc.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MessageHas(auc.status(), "undefined"));
}

TEST(ClassifyTest, CalibrationBinsFollowNumpyEdges) {
  // Bins are (lower, upper], bin 0 also holds 0; edges are i * 0.1, so 3 * 0.1 (just above 0.3)
  // closes bin 2 and the literal 0.3 falls in it too.
  auto m = Classify({0, 1, 1, 0, 1, 1, 0}, Binary({0.0, 0.1, 0.15, 0.3, 3 * 0.1, 1.0, 0.95}));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->calibration.size(), 10u);
  std::vector<int64_t> counts;
  for (const CalibrationBin& b : m->calibration) counts.push_back(b.count);
  EXPECT_EQ(counts, (std::vector<int64_t>{2, 1, 2, 0, 0, 0, 0, 0, 0, 2}));
  EXPECT_DOUBLE_EQ(m->calibration[0].mean_predicted, 0.05);
  EXPECT_DOUBLE_EQ(m->calibration[0].fraction_positive, 0.5);
  EXPECT_DOUBLE_EQ(m->calibration[9].mean_predicted, 0.975);
  EXPECT_DOUBLE_EQ(m->calibration[9].fraction_positive, 0.5);
  EXPECT_TRUE(std::isnan(m->calibration[5].mean_predicted));
  EXPECT_EQ(m->calibration[2].lower, 0.2);
  EXPECT_EQ(m->calibration[2].upper, 3 * 0.1);
  EXPECT_EQ(m->calibration[9].upper, 1.0);
  EXPECT_TRUE(ToJson(*m)["calibration"][5]["mean_predicted"].is_null());
}

TEST(ClassifyTest, LogLossClipsCertainMistakes) {
  // p(true) = 0 is clipped to 1e-15 and the row renormalized: a finite, large loss.
  auto m = Classify({1}, Binary({0.0}));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->log_loss, -std::log(1e-15 / (1e-15 + (1 - 1e-15))));
}

TEST(ClassifyTest, RejectsBadInput) {
  auto m = Classify({0, 1, 0}, Binary({0.1, 0.9}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(m.status(), "y_true has 3 rows"));
  EXPECT_TRUE(MessageHas(m.status(), "have 2"));

  m = Classify({}, Binary({}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  m = Classify({0, 2}, Binary({0.1, 0.9}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(m.status(), "row 1"));
  m = Classify({0, 1}, Binary({0.1, NAN}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(m.status(), "not a number in [0, 1]"));
  m = Classify({0, 1}, Binary({0.1, 0.9}), NAN);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  m = Classify({0, 1}, Regression({0.1, 0.9}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(m.status(), "use Regress"));
}

TEST(RegressTest, HandComputed) {
  // Errors -0.5, 0, 1, -1; mean(y) = 2.5, SS_tot = 5, SS_res = 2.25.
  auto m = Regress({1, 2, 3, 4}, Regression({1.5, 2, 2, 5}));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->rmse, 0.75);
  EXPECT_DOUBLE_EQ(m->mae, 0.625);
  EXPECT_DOUBLE_EQ(m->r2, 1 - 2.25 / 5);
  EXPECT_DOUBLE_EQ(m->mape, (0.5 + 0 + 1.0 / 3 + 0.25) / 4);
  EXPECT_EQ(m->rows, 4);
  EXPECT_EQ(ToJson(*m), nlohmann::json({{"task", "regression"},
                                        {"rows", 4},
                                        {"rmse", m->rmse},
                                        {"mae", m->mae},
                                        {"r2", m->r2},
                                        {"mape", m->mape}}));
}

TEST(RegressTest, EdgeCasesAsScikitLearn) {
  auto m = Regress({2, 2, 2}, Regression({2, 2, 2}));  // constant target, perfect: 1
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->r2, 1.0);
  m = Regress({2, 2, 2}, Regression({2, 2, 3}));  // constant target, imperfect: 0
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->r2, 0.0);
  m = Regress({0}, Regression({1}));  // one row: R² undefined; a zero target divides by eps
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(std::isnan(m->r2));
  EXPECT_DOUBLE_EQ(m->mape, 1 / DBL_EPSILON);
  EXPECT_TRUE(ToJson(*m)["r2"].is_null());
}

TEST(RegressTest, RejectsBadInput) {
  auto m = Regress({1, 2}, Regression({1, 2, 3}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(m.status(), "y_true has 2 rows"));
  m = Regress({}, Regression({}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  m = Regress({1, NAN}, Regression({1, 2}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(m.status(), "row 1"));
  m = Regress({0, 1}, Binary({0.1, 0.9}));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(m.status(), "use Classify"));
}

TEST(MetricsBySegmentTest, StringSegmentsSortedNullLast) {
  data::Column plan("plan", data::ColumnType::kString);
  for (const char* v : {"pro", "basic", "pro", "", "basic", "pro"}) {
    if (*v == '\0') {
      plan.AppendNull();
    } else {
      plan.AppendString(v);
    }
  }
  const std::vector<int> y = {1, 0, 0, 1, 1, 1};
  const Predictions p = Binary({0.9, 0.2, 0.6, 0.4, 0.3, 0.7});
  auto j = MetricsBySegment(y, p, plan);
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["column"], "plan");
  EXPECT_EQ((*j)["all"], ToJson(*Classify(y, p)));
  const nlohmann::json& s = (*j)["segments"];
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0]["segment"], "basic");
  EXPECT_EQ(s[1]["segment"], "pro");
  EXPECT_EQ(s[2]["segment"], "null");
  EXPECT_TRUE(s[2]["value"].is_null());
  // basic: rows 1, 4 (y 0, 1; p1 0.2, 0.3): both predicted negative, AUC 1.
  EXPECT_EQ(s[0]["metrics"]["rows"], 2);
  EXPECT_EQ(s[0]["metrics"]["accuracy"], 0.5);
  EXPECT_EQ(s[0]["metrics"]["roc_auc"], 1.0);
  // pro: rows 0, 2, 5 (y 1, 0, 1; p1 0.9, 0.6, 0.7): row 2 is a false positive.
  EXPECT_EQ(s[1]["metrics"]["rows"], 3);
  EXPECT_DOUBLE_EQ(s[1]["metrics"]["precision"].get<double>(), 2.0 / 3);
  EXPECT_EQ(s[1]["metrics"]["roc_auc"], 1.0);
  // null: row 3 alone, one class: no AUC.
  EXPECT_EQ(s[2]["metrics"]["rows"], 1);
  EXPECT_TRUE(s[2]["metrics"]["roc_auc"].is_null());
  // Gates read "all" of a breakdown.
  EXPECT_EQ(*MetricValue(*j, "accuracy"), (*j)["all"]["accuracy"].get<double>());
}

TEST(MetricsBySegmentTest, IntAndBoolSegmentsSortByValue) {
  data::Column region("region", data::ColumnType::kInt64);
  for (int64_t v : {10, 9, 10, 100}) region.AppendInt(v);
  const std::vector<double> y = {1, 2, 3, 4};
  const Predictions p = Regression({1, 2, 5, 4});
  auto j = MetricsBySegment(y, p, region);
  ASSERT_TRUE(j.ok()) << j.status();
  const nlohmann::json& s = (*j)["segments"];
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0]["value"], 9);  // numerically, not "10" < "100" < "9"
  EXPECT_EQ(s[1]["value"], 10);
  EXPECT_EQ(s[1]["segment"], "10");
  EXPECT_EQ(s[2]["value"], 100);
  EXPECT_EQ(s[1]["metrics"]["mae"], 1.0);  // rows 0, 2: errors 0 and 2
  EXPECT_EQ(s[0]["metrics"]["mae"], 0.0);

  data::Column churned("churned", data::ColumnType::kBool);
  for (bool v : {true, false, true, true}) churned.AppendBool(v);
  j = MetricsBySegment(y, p, churned);
  ASSERT_TRUE(j.ok()) << j.status();
  ASSERT_EQ((*j)["segments"].size(), 2u);
  EXPECT_EQ((*j)["segments"][0]["segment"], "false");
  EXPECT_EQ((*j)["segments"][0]["value"], false);
  EXPECT_EQ((*j)["segments"][1]["metrics"]["rows"], 3);
}

TEST(MetricsBySegmentTest, RejectsFloatColumnsAndOtherLengths) {
  data::Column score("score", data::ColumnType::kFloat64);
  for (double v : {1.0, 2.0}) score.AppendDouble(v);
  auto j = MetricsBySegment(std::vector<int>{0, 1}, Binary({0.2, 0.8}), score);
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(j.status(), "'score' is float64"));

  data::Column plan("plan", data::ColumnType::kString);
  plan.AppendString("a");
  j = MetricsBySegment(std::vector<int>{0, 1}, Binary({0.2, 0.8}), plan);
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageHas(j.status(), "has 1 rows"));
}

TEST(MetricValueTest, NamesAndAliases) {
  auto c = Classify({0, 0, 1, 1}, Binary({0.1, 0.4, 0.35, 0.8}));
  ASSERT_TRUE(c.ok()) << c.status();
  const nlohmann::json cj = ToJson(*c);
  EXPECT_EQ(*MetricValue(cj, "auc"), c->roc_auc);
  EXPECT_EQ(*MetricValue(cj, "roc_auc"), c->roc_auc);
  EXPECT_EQ(*MetricValue(cj, "AUC"), c->roc_auc);
  EXPECT_EQ(*MetricValue(cj, "accuracy"), c->accuracy);
  EXPECT_EQ(*MetricValue(cj, "logloss"), c->log_loss);
  EXPECT_EQ(*MetricValue(cj, "log_loss"), c->log_loss);
  EXPECT_EQ(*MetricValue(cj, "f1"), c->f1);
  EXPECT_EQ(*MetricValue(cj, "precision"), c->precision);
  EXPECT_EQ(*MetricValue(cj, "recall"), c->recall);
  EXPECT_EQ(*MetricValue(cj, "pr_auc"), c->pr_auc);

  auto r = Regress({1, 2, 3, 4}, Regression({1.5, 2, 2, 5}));
  ASSERT_TRUE(r.ok()) << r.status();
  const nlohmann::json rj = ToJson(*r);
  EXPECT_EQ(*MetricValue(rj, "rmse"), r->rmse);
  EXPECT_EQ(*MetricValue(rj, "mae"), r->mae);
  EXPECT_EQ(*MetricValue(rj, "r2"), r->r2);
  EXPECT_EQ(*MetricValue(rj, "mape"), r->mape);
}

TEST(MetricValueTest, UnknownNameListsTheAvailableOnes) {
  auto c = Classify({0, 0, 1, 1}, Binary({0.1, 0.4, 0.35, 0.8}));
  ASSERT_TRUE(c.ok()) << c.status();
  auto v = MetricValue(ToJson(*c), "auroc");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(v.status().message()),
            "no metric 'auroc' in these binary metrics; the available names: accuracy, auc, "
            "roc_auc, pr_auc, f1, precision, recall, logloss, log_loss");
  // A regression name on classification metrics is not there either.
  v = MetricValue(ToJson(*c), "rmse");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  auto r = Regress({1, 2}, Regression({1, 3}));
  ASSERT_TRUE(r.ok()) << r.status();
  v = MetricValue(ToJson(*r), "auc");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(MessageHas(v.status(), "available names: rmse, mae, r2, mape"));
  EXPECT_EQ(MetricValue(nlohmann::json::array(), "auc").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// 1,000,000 rows on 1,000 distinct scores (heavy ties): the AUC must equal the one counted per
// score bucket, and the whole evaluation stays fast (it sorts once per class).
TEST(ClassifyTest, MillionRowsAucMatchesBucketCount) {
  constexpr size_t kRows = 1000000;
  constexpr int kBuckets = 1000;
  std::vector<int> y(kRows);
  std::vector<double> p1(kRows);
  std::vector<int64_t> pos(kBuckets, 0), neg(kBuckets, 0);
  uint64_t state = 12345;
  for (size_t i = 0; i < kRows; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;  // an LCG: reproducible
    const int bucket = static_cast<int>((state >> 33) % kBuckets);
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    // Positive with probability rising with the bucket: a useful but imperfect score.
    const bool positive = static_cast<int>((state >> 33) % (2 * kBuckets)) < bucket + kBuckets / 2;
    p1[i] = bucket / static_cast<double>(kBuckets);
    y[i] = positive ? 1 : 0;
    ++(positive ? pos : neg)[bucket];
  }
  // U = sum over buckets of positives x (negatives below + half the negatives alongside).
  double u = 0, n_pos = 0, n_neg = 0, neg_below = 0;
  for (int b = 0; b < kBuckets; ++b) {
    u += pos[b] * (neg_below + 0.5 * neg[b]);
    neg_below += neg[b];
    n_pos += pos[b];
    n_neg += neg[b];
  }
  const Predictions p = Binary(p1);
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  auto m = Classify(y, p);
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(m->roc_auc, u / (n_pos * n_neg), 1e-12);
  EXPECT_GT(m->roc_auc, 0.6);
  std::printf("Classify, 1,000,000 binary rows: %.3f s wall, %.3f s CPU\n", seconds, cpu_seconds);
  RecordProperty("classify_1m_seconds", std::to_string(seconds));
}

}  // namespace
}  // namespace ferry::model
