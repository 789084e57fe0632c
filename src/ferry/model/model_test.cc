// Tests of the built-in linear models (linear_regression, logistic_regression) and the shared
// feature/label conversions, against scikit-learn reference values stored in
// tests/fixtures/model/ (regenerate them with tests/fixtures/model/make_reference.py).

#include "ferry/model/model.h"

#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <random>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "gtest/gtest.h"

namespace ferry::model {
namespace {

using data::ColumnType;
using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "model_test.XXXXXX";
    FERRY_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Fixture(std::string_view name) {
  return fmt::format("{}/tests/fixtures/model/{}", FERRY_SOURCE_DIR, name);
}

json ReadJson(std::string_view name) {
  absl::StatusOr<std::string> text = ReadFile(Fixture(name));
  FERRY_CHECK(text.ok());
  return json::parse(*text);
}

data::Table ReadTable(std::string_view name) {
  absl::StatusOr<data::CsvReadResult> r = data::ReadCsvFile(Fixture(name));
  FERRY_CHECK(r.ok());
  return std::move(r->table);
}

const ModelType& Type(std::string_view name) {
  const ModelType* t = FindModelType(name);
  FERRY_CHECK(t != nullptr);
  return *t;
}

std::unique_ptr<Model> MustFit(std::string_view type, const data::Table& t, FitOptions opts) {
  absl::StatusOr<std::unique_ptr<Model>> m = Type(type).Fit(t, opts);
  EXPECT_TRUE(m.ok()) << m.status();
  FERRY_CHECK(m.ok());
  return std::move(*m);
}

Predictions MustPredict(const Model& m, const data::Table& t) {
  absl::StatusOr<Predictions> p = m.Predict(t);
  EXPECT_TRUE(p.ok()) << p.status();
  FERRY_CHECK(p.ok());
  return std::move(*p);
}

std::string FitError(std::string_view type, const data::Table& t, FitOptions opts) {
  absl::StatusOr<std::unique_ptr<Model>> m = Type(type).Fit(t, opts);
  EXPECT_FALSE(m.ok());
  if (m.ok()) return "";
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  return std::string(m.status().message());
}

// Columns of doubles named as given, plus an int64 target "y".
data::Table MakeTable(const std::vector<std::string>& names,
                      const std::vector<std::vector<double>>& cols, const std::vector<int64_t>& y) {
  data::Table t;
  for (size_t j = 0; j < names.size(); ++j) {
    data::Column& c = t.AddColumn(names[j], ColumnType::kFloat64);
    for (double v : cols[j]) c.AppendDouble(v);
  }
  data::Column& target = t.AddColumn("y", ColumnType::kInt64);
  for (int64_t v : y) target.AppendInt(v);
  return t;
}

// A binary problem with `n` rows and `d` features from a fixed seed.
data::Table Synthetic(size_t n, size_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform;
  std::vector<std::vector<double>> cols(d, std::vector<double>(n));
  std::vector<int64_t> y(n);
  for (size_t i = 0; i < n; ++i) {
    double z = -0.5;
    for (size_t j = 0; j < d; ++j) {
      cols[j][i] = normal(rng);
      z += (j % 3 == 0 ? 0.8 : -0.3) * cols[j][i];
    }
    y[i] = uniform(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1 : 0;
  }
  std::vector<std::string> names;
  for (size_t j = 0; j < d; ++j) names.push_back(fmt::format("f{}", j));
  return MakeTable(names, cols, y);
}

void ExpectRelNear(double got, double want, double rel, const std::string& what) {
  EXPECT_NEAR(got, want, rel * std::max(1.0, std::fabs(want))) << what;
}

TEST(ModelTypesTest, BuiltInsAreRegistered) {
  EXPECT_NE(FindModelType("linear_regression"), nullptr);
  EXPECT_NE(FindModelType("logistic_regression"), nullptr);
  EXPECT_EQ(FindModelType("linear"), nullptr);
}

// ---- linear_regression ----

TEST(LinearRegressionTest, MatchesScikitLearn) {
  json ref = ReadJson("linear_reference.json");
  data::Table t = ReadTable(ref["data"].get<std::string>());
  ASSERT_EQ(ref["cases"].size(), 3u);
  for (const auto& [name, c] : ref["cases"].items()) {
    SCOPED_TRACE(name);
    auto m =
        MustFit("linear_regression", t, {.target = "y", .hyperparameters = c["hyperparameters"]});
    EXPECT_EQ(m->task(), Task::kRegression);
    EXPECT_EQ(m->features(), ref["features"].get<std::vector<std::string>>());
    json desc = m->Describe();
    EXPECT_EQ(desc["kind"], "coefficients");
    for (size_t j = 0; j < m->features().size(); ++j) {
      // An exact solve: far tighter than the 1e-4 an iterative fit gets.
      ExpectRelNear(desc["values"][m->features()[j]].get<double>(),
                    c["coefficients"][0][j].get<double>(), 1e-9, m->features()[j]);
    }
    ExpectRelNear(desc["intercept"].get<double>(), c["intercept"][0].get<double>(), 1e-9,
                  "intercept");
    Predictions p = MustPredict(*m, t);
    ASSERT_EQ(p.rows, 300u);
    EXPECT_TRUE(p.classes.empty());
    for (size_t i = 0; i < c["predictions"].size(); ++i) {
      ExpectRelNear(p.Score(i), c["predictions"][i].get<double>(), 1e-9, fmt::format("row {}", i));
    }
  }
}

TEST(LinearRegressionTest, CollinearFeaturesGiveTheMinimumNormSolution) {
  // y = 1 + 2 a exactly; a column duplicated: least squares has many solutions, the minimum-norm
  // one splits the weight evenly (as scikit-learn's LinearRegression does).
  std::vector<double> a = {0, 1, 2, 3, 4, 5}, b = {1, -1, 2, 0, 3, 1};
  std::vector<int64_t> y;
  for (double v : a) y.push_back(static_cast<int64_t>(1 + 2 * v));
  data::Table t = MakeTable({"a", "a_copy", "b"}, {a, a, b}, y);
  auto m = MustFit("linear_regression", t, {.target = "y"});
  json desc = m->Describe();
  EXPECT_NEAR(desc["values"]["a"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(desc["values"]["a_copy"].get<double>(), 1.0, 1e-9);
  EXPECT_NEAR(desc["values"]["b"].get<double>(), 0.0, 1e-9);
  EXPECT_NEAR(desc["intercept"].get<double>(), 1.0, 1e-9);
}

TEST(LinearRegressionTest, FeaturesInVeryDifferentUnitsAndConstantOnes) {
  // y = 1 + 2e4 small + 3e-5 big, with small ~ 1e-4 and big ~ 1e5; a constant column carries no
  // information and gets no weight (the minimum-norm solution).
  data::Table t;
  data::Column& small = t.AddColumn("small", ColumnType::kFloat64);
  for (int i = 0; i < 8; ++i) small.AppendDouble(1e-4 * ((i * 5) % 8));
  data::Column& big = t.AddColumn("big", ColumnType::kFloat64);
  for (int i = 0; i < 8; ++i) big.AppendDouble(1e5 * ((i * 3) % 7));
  data::Column& constant = t.AddColumn("constant", ColumnType::kInt64);
  for (int i = 0; i < 8; ++i) constant.AppendInt(7);
  data::Column& y = t.AddColumn("y", ColumnType::kFloat64);
  for (int i = 0; i < 8; ++i) {
    y.AppendDouble(1 + 2e4 * t.column("small").float_at(i) + 3e-5 * t.column("big").float_at(i));
  }
  auto m = MustFit("linear_regression", t, {.target = "y"});
  json desc = m->Describe();
  EXPECT_NEAR(desc["values"]["small"].get<double>(), 2e4, 2e4 * 1e-9);
  EXPECT_NEAR(desc["values"]["big"].get<double>(), 3e-5, 3e-5 * 1e-9);
  EXPECT_EQ(desc["values"]["constant"].get<double>(), 0.0);
  EXPECT_NEAR(desc["intercept"].get<double>(), 1.0, 1e-9);
}

TEST(LinearRegressionTest, RejectsATextTarget) {
  data::Table t = MakeTable({"x"}, {{1, 2, 3}}, {1, 2, 3});
  data::Column& s = t.AddColumn("label", ColumnType::kString);
  for (const char* v : {"a", "b", "a"}) s.AppendString(v);
  t.RemoveColumn("y");
  EXPECT_EQ(FitError("linear_regression", t, {.target = "label"}),
            "linear_regression: target column 'label' is string; a regression target must be a "
            "number (for classes, use logistic_regression or xgboost)");
}

// ---- logistic_regression ----

TEST(LogisticRegressionTest, MatchesScikitLearn) {
  json ref = ReadJson("logistic_reference.json");
  ASSERT_EQ(ref["cases"].size(), 5u);
  for (const auto& [name, c] : ref["cases"].items()) {
    SCOPED_TRACE(name);
    data::Table t = ReadTable(c["data"].get<std::string>());
    const std::string target = c["target"];
    auto m = MustFit("logistic_regression", t,
                     {.target = target, .hyperparameters = c["hyperparameters"]});
    const auto classes = c["classes"].get<std::vector<std::string>>();
    EXPECT_EQ(m->task(), classes.size() == 2 ? Task::kBinary : Task::kMulticlass);
    json desc = m->Describe();
    const std::vector<std::string>& f = m->features();
    for (size_t row = 0; row < c["coefficients"].size(); ++row) {
      // Multiclass: a row per class; binary: the one row of the positive class.
      const json& values = classes.size() == 2 ? desc["values"] : desc["values"][classes[row]];
      const json& b = classes.size() == 2 ? desc["intercept"] : desc["intercept"][classes[row]];
      for (size_t j = 0; j < f.size(); ++j) {
        ExpectRelNear(values[f[j]].get<double>(), c["coefficients"][row][j].get<double>(), 1e-4,
                      fmt::format("class row {} {}", row, f[j]));
      }
      ExpectRelNear(b.get<double>(), c["intercept"][row].get<double>(), 1e-4, "intercept");
    }
    Predictions p = MustPredict(*m, t);
    EXPECT_EQ(p.classes, classes);
    ASSERT_EQ(p.rows, 300u);
    for (size_t i = 0; i < c["probabilities"].size(); ++i) {
      for (size_t k = 0; k < classes.size(); ++k) {
        EXPECT_NEAR(p.Probability(i, k), c["probabilities"][i][k].get<double>(), 1e-6)
            << "row " << i << " class " << classes[k];
        EXPECT_NEAR(p.Probability(i, k), c["sklearn_probabilities"][i][k].get<double>(), 1e-4)
            << "row " << i << " class " << classes[k];
      }
    }
  }
}

TEST(LogisticRegressionTest, DescribesMulticlassPerClass) {
  data::Table t = ReadTable("multiclass.csv");
  auto m = MustFit("logistic_regression", t, {.target = "plan"});
  json desc = m->Describe();
  EXPECT_EQ(desc["kind"], "coefficients");
  EXPECT_EQ(desc["classes"], json({"basic", "plus", "pro"}));
  ASSERT_TRUE(desc["values"].contains("pro"));
  EXPECT_EQ(desc["values"]["pro"].size(), 5u);
  double sum = 0;
  for (const auto& [cls, b] : desc["intercept"].items()) sum += b.get<double>();
  EXPECT_NEAR(sum, 0.0, 1e-12);  // softmax intercepts are centred
}

TEST(LogisticRegressionTest, MaxIterStopsAndSaysNotConverged) {
  data::Table t = ReadTable("binary.csv");
  TempDir dir;
  auto m = MustFit("logistic_regression", t,
                   {.target = "churned", .hyperparameters = {{"max_iter", 2}}});
  ASSERT_TRUE(m->Save(dir.path()).ok());
  json saved = json::parse(*ReadFile(dir.path() + "/model.json"));
  EXPECT_EQ(saved["iterations"], 2);
  EXPECT_EQ(saved["converged"], false);
}

TEST(LogisticRegressionTest, FitDoesNotDependOnTheThreadCount) {
  data::Table t = Synthetic(60000, 5, 11);  // big enough to be cut into row blocks
  auto one = MustFit("logistic_regression", t, {.target = "y", .threads = 1});
  auto two = MustFit("logistic_regression", t, {.target = "y", .threads = 2});
  auto three = MustFit("logistic_regression", t, {.target = "y", .threads = 3});
  EXPECT_EQ(one->Describe(), two->Describe());
  EXPECT_EQ(one->Describe(), three->Describe());
  // And the fit is right: the generating weights are 0.8 / -0.3.
  EXPECT_NEAR(one->Describe()["values"]["f0"].get<double>(), 0.8, 0.05);
  EXPECT_NEAR(one->Describe()["values"]["f1"].get<double>(), -0.3, 0.05);
}

TEST(LogisticRegressionTest, BoolTargetClassesAreFalseTrue) {
  data::Table t = MakeTable({"x"}, {{-2, -1, 0, 1, 2, 3}}, {0, 0, 1, 0, 1, 1});
  data::Column& b = t.AddColumn("won", ColumnType::kBool);
  for (bool v : {false, false, true, false, true, true}) b.AppendBool(v);
  t.RemoveColumn("y");
  auto m = MustFit("logistic_regression", t, {.target = "won"});
  Predictions p = MustPredict(*m, t);
  EXPECT_EQ(p.classes, (std::vector<std::string>{"false", "true"}));
  EXPECT_GT(p.Score(5), p.Score(0));  // the last class is the positive one
  EXPECT_DOUBLE_EQ(p.Probability(0, 0) + p.Probability(0, 1), 1.0);
}

// ---- Save / Load ----

TEST(SaveLoadTest, RoundTripPredictsBitIdentically) {
  struct Case {
    std::string type, data, target;
  };
  for (const Case& c : {Case{"linear_regression", "regression.csv", "y"},
                        Case{"logistic_regression", "binary.csv", "churned"},
                        Case{"logistic_regression", "multiclass.csv", "plan"}}) {
    SCOPED_TRACE(c.data);
    data::Table t = ReadTable(c.data);
    auto m = MustFit(c.type, t, {.target = c.target});
    TempDir dir;
    ASSERT_TRUE(m->Save(dir.path()).ok());
    absl::StatusOr<std::unique_ptr<Model>> loaded = Type(c.type).Load(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->type(), c.type);
    EXPECT_EQ((*loaded)->task(), m->task());
    EXPECT_EQ((*loaded)->features(), m->features());
    EXPECT_EQ((*loaded)->Describe(), m->Describe());
    Predictions a = MustPredict(*m, t), b = MustPredict(**loaded, t);
    EXPECT_EQ(a.classes, b.classes);
    EXPECT_EQ(a.values, b.values);  // exact: doubles are written with 17 digits

    json saved = json::parse(*ReadFile(dir.path() + "/model.json"));
    EXPECT_EQ(saved["type"], c.type);
    EXPECT_EQ(saved["target"], c.target);
    EXPECT_EQ(saved["converged"], true);
    EXPECT_TRUE(saved["hyperparameters"].contains(c.type == "linear_regression" ? "alpha" : "C"));
  }
}

TEST(SaveLoadTest, SavedHyperparametersHaveTheDefaults) {
  data::Table t = ReadTable("binary.csv");
  auto m = MustFit("logistic_regression", t, {.target = "churned"});
  TempDir dir;
  ASSERT_TRUE(m->Save(dir.path()).ok());
  json saved = json::parse(*ReadFile(dir.path() + "/model.json"));
  EXPECT_EQ(saved["hyperparameters"], json({{"C", 1.0},
                                            {"max_iter", 100},
                                            {"tol", 1e-4},
                                            {"fit_intercept", true},
                                            {"class_weight", nullptr}}));
  EXPECT_EQ(saved["classes"], json({"0", "1"}));
  EXPECT_EQ(saved["task"], "binary");
}

TEST(SaveLoadTest, LoadRejectsAnotherTypesModel) {
  data::Table t = ReadTable("regression.csv");
  auto m = MustFit("linear_regression", t, {.target = "y"});
  TempDir dir;
  ASSERT_TRUE(m->Save(dir.path()).ok());
  absl::StatusOr<std::unique_ptr<Model>> loaded = Type("logistic_regression").Load(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message(),
            dir.path() +
                "/model.json: its type is 'linear_regression'; it was not written by "
                "logistic_regression (re-save the model)");
  EXPECT_EQ(Type("linear_regression").Load(dir.path() + "/nope").status().code(),
            absl::StatusCode::kNotFound);
}

// ---- Errors ----

TEST(HyperparameterTest, UnknownKeySuggestsTheClosest) {
  data::Table t = ReadTable("regression.csv");
  EXPECT_EQ(FitError("linear_regression", t, {.target = "y", .hyperparameters = {{"alpah", 1}}}),
            "linear_regression: unknown hyperparameter 'alpah'; did you mean 'alpha'?");
  data::Table b = ReadTable("binary.csv");
  EXPECT_EQ(
      FitError("logistic_regression", b, {.target = "churned", .hyperparameters = {{"c", 1}}}),
      "logistic_regression: unknown hyperparameter 'c'; did you mean 'C'?");
  EXPECT_EQ(FitError("logistic_regression", b,
                     {.target = "churned", .hyperparameters = {{"penalty", "l1"}}}),
            "logistic_regression: unknown hyperparameter 'penalty'; expected one of: C, max_iter, "
            "tol, fit_intercept, class_weight");
}

TEST(HyperparameterTest, BadValuesNameTheAcceptedOnes) {
  data::Table b = ReadTable("binary.csv");
  auto err = [&](json hp) {
    return FitError("logistic_regression", b, {.target = "churned", .hyperparameters = hp});
  };
  EXPECT_EQ(err({{"C", 0}}), "logistic_regression: hyperparameter 'C' must be a number > 0, got 0");
  EXPECT_EQ(err({{"C", -1.5}}),
            "logistic_regression: hyperparameter 'C' must be a number > 0, got -1.5");
  EXPECT_EQ(err({{"C", "big"}}),
            "logistic_regression: hyperparameter 'C' must be a number > 0, got \"big\"");
  EXPECT_EQ(err({{"max_iter", 2.5}}),
            "logistic_regression: hyperparameter 'max_iter' must be an integer >= 1, got 2.5");
  EXPECT_EQ(err({{"fit_intercept", "yes"}}),
            "logistic_regression: hyperparameter 'fit_intercept' must be true or false, got "
            "\"yes\"");
  EXPECT_EQ(err({{"class_weight", "auto"}}),
            "logistic_regression: hyperparameter 'class_weight' must be null or \"balanced\", got "
            "\"auto\"");
  data::Table r = ReadTable("regression.csv");
  EXPECT_EQ(FitError("linear_regression", r, {.target = "y", .hyperparameters = {{"alpha", -1}}}),
            "linear_regression: hyperparameter 'alpha' must be a number >= 0, got -1");
}

TEST(FeatureErrorTest, TextFeatureMustBeOneHotEncoded) {
  data::Table t = MakeTable({"x"}, {{1, 2, 3}}, {0, 1, 0});
  data::Column& s = t.AddColumn("plan", ColumnType::kString);
  for (const char* v : {"basic", "pro", "basic"}) s.AppendString(v);
  for (const char* type : {"linear_regression", "logistic_regression"}) {
    EXPECT_EQ(FitError(type, t, {.target = "y"}),
              "column 'plan' is text; one-hot encode it first (transform: one_hot)");
  }
}

TEST(FeatureErrorTest, NullFeatureMustBeImputed) {
  data::Table t = MakeTable({}, {}, {0, 1, 0});
  data::Column& x = t.AddColumn("x", ColumnType::kInt64);
  x.AppendInt(1);
  x.AppendNull();
  x.AppendNull();
  EXPECT_EQ(FitError("logistic_regression", t, {.target = "y"}),
            "column 'x' has 2 nulls; impute it first (transform: impute)");
}

TEST(FeatureErrorTest, SingleClassTargetIsRejected) {
  data::Table t = MakeTable({"x"}, {{1, 2, 3}}, {1, 1, 1});
  EXPECT_EQ(FitError("logistic_regression", t, {.target = "y"}),
            "logistic_regression: target column 'y' has a single class ('1'); a classifier needs "
            "at least two");
}

TEST(FeatureErrorTest, EmptyTableAndMissingTarget) {
  data::Table t = MakeTable({"x"}, {{}}, {});
  EXPECT_EQ(FitError("linear_regression", t, {.target = "y"}),
            "linear_regression: the training table is empty");
  EXPECT_EQ(FitError("logistic_regression", t, {.target = "label"}),
            "logistic_regression: no target column 'label' in the table (columns: x, y)");
}

TEST(PredictTest, MissingColumnIsNamed) {
  data::Table t = ReadTable("regression.csv");
  auto m = MustFit("linear_regression", t, {.target = "y"});
  t.RemoveColumn("x2");
  absl::StatusOr<Predictions> p = m->Predict(t);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "missing feature column 'x2'; the model uses 'x0', 'x1', 'x2', 'x3', 'x4'");
}

TEST(PredictTest, FeaturesAreTakenByNameAndExtraColumnsIgnored) {
  data::Table t = ReadTable("multiclass.csv");
  auto m = MustFit("logistic_regression", t, {.target = "plan"});
  Predictions want = MustPredict(*m, t);
  // The same rows with the columns reversed, the target gone and an extra text column.
  data::Table shuffled;
  for (size_t j = t.num_columns(); j-- > 0;) {
    if (t.column(j).name() != "plan") shuffled.AddColumn(t.column(j));
  }
  data::Column& extra = shuffled.AddColumn("note", ColumnType::kString);
  for (size_t i = 0; i < t.num_rows(); ++i) extra.AppendString("hello");
  Predictions got = MustPredict(*m, shuffled);
  EXPECT_EQ(got.values, want.values);
}

// ---- ToLabels ----

TEST(ToLabelsTest, NumericTargetsSortNumerically) {
  data::Table t = MakeTable({}, {}, {10, 9, -1, 10});
  absl::StatusOr<Labels> l = ToLabels(t, "y");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->classes, (std::vector<std::string>{"-1", "9", "10"}));
  EXPECT_EQ(l->index, (std::vector<int>{2, 1, 0, 2}));
}

TEST(ToLabelsTest, IntegralFloatsAreClassesOthersAreNot) {
  data::Table t;
  data::Column& f = t.AddColumn("y", ColumnType::kFloat64);
  for (double v : {1.0, 0.0, 2.0}) f.AppendDouble(v);
  absl::StatusOr<Labels> l = ToLabels(t, "y");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->classes, (std::vector<std::string>{"0", "1", "2"}));
  t.mutable_column(0).AppendDouble(0.5);
  EXPECT_EQ(ToLabels(t, "y").status().message(),
            "target column 'y' has the non-integral value 0.5 (row 4); a classification target "
            "needs classes: integers, booleans or strings (or use a regression model)");
}

TEST(ToLabelsTest, StringsSortAndNullsAreAnError) {
  data::Table t;
  data::Column& s = t.AddColumn("plan", ColumnType::kString);
  for (const char* v : {"pro", "basic", "pro", "plus"}) s.AppendString(v);
  absl::StatusOr<Labels> l = ToLabels(t, "plan");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->classes, (std::vector<std::string>{"basic", "plus", "pro"}));
  EXPECT_EQ(l->index, (std::vector<int>{2, 0, 2, 1}));
  t.mutable_column(0).AppendNull();
  EXPECT_EQ(ToLabels(t, "plan").status().message(),
            "target column 'plan' has 1 null; drop those rows first (transform: filter)");
}

TEST(FeatureMatrixTest, RowMajorWithBoolsAsZeroOne) {
  data::Table t;
  data::Column& a = t.AddColumn("a", ColumnType::kInt64);
  a.AppendInt(3);
  a.AppendInt(-4);
  data::Column& b = t.AddColumn("b", ColumnType::kBool);
  b.AppendBool(true);
  b.AppendBool(false);
  EXPECT_EQ(FeatureNames(t, "a"), (std::vector<std::string>{"b"}));
  absl::StatusOr<FeatureMatrix> m = ToFeatureMatrix(t, {"b", "a"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->rows, 2u);
  EXPECT_EQ(m->values, (std::vector<double>{1, 3, 0, -4}));
}

// Run by hand: model_test --gtest_also_run_disabled_tests --gtest_filter='*Million*'
TEST(LogisticRegressionBench, DISABLED_FitMillionRowsTwentyFeatures) {
  data::Table t = Synthetic(1000000, 20, 5);
  json first;
  for (int threads : {0, 1}) {
    auto start = std::chrono::steady_clock::now();
    std::clock_t cpu_start = std::clock();
    auto m = MustFit("logistic_regression", t, {.target = "y", .threads = threads});
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    start = std::chrono::steady_clock::now();
    Predictions p = MustPredict(*m, t);
    double predict =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    TempDir dir;
    ASSERT_TRUE(m->Save(dir.path()).ok());
    json saved = json::parse(*ReadFile(dir.path() + "/model.json"));
    fmt::print(
        "1,000,000 x 20 binary fit, threads={}: {:.3f} s wall, {:.3f} s CPU, {} iterations, "
        "converged {}; predict {:.3f} s\n",
        threads, wall, cpu, saved["iterations"].get<int>(), saved["converged"].get<bool>(),
        predict);
    EXPECT_TRUE(saved["converged"].get<bool>());
    EXPECT_EQ(p.rows, 1000000u);
    if (first.is_null()) first = m->Describe();
    EXPECT_EQ(m->Describe(), first);  // the same bits on any number of threads
  }
}

}  // namespace
}  // namespace ferry::model
