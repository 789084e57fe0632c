#include "ferry/model/bundle.h"

#include <stdlib.h>

#include <filesystem>
#include <random>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/data/transform.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::model {
namespace {

using data::ColumnType;
using json = nlohmann::json;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "bundle_test.XXXXXX";
    FERRY_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Raw customer rows: a text plan, a tenure with nulls, charges, a 0/1 target that depends on them.
data::Table RawRows(int n) {
  data::Table t;
  t.AddColumn("plan", ColumnType::kString);
  t.AddColumn("tenure", ColumnType::kInt64);
  t.AddColumn("charges", ColumnType::kFloat64);
  t.AddColumn("churned", ColumnType::kInt64);
  data::Column& plan = t.mutable_column(0);
  data::Column& tenure = t.mutable_column(1);
  data::Column& charges = t.mutable_column(2);
  data::Column& churned = t.mutable_column(3);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  const char* plans[] = {"basic", "pro", "team"};
  for (int i = 0; i < n; ++i) {
    int p = static_cast<int>(rng() % 3);
    plan.AppendString(plans[p]);
    int64_t months = static_cast<int64_t>(rng() % 72);
    if (i % 17 == 0) {
      tenure.AppendNull();
    } else {
      tenure.AppendInt(months);
    }
    double c = 20 + 80 * u(rng);
    charges.AppendDouble(c);
    double score = 1.5 - 0.05 * static_cast<double>(months) + 0.02 * c - 0.8 * p + u(rng);
    churned.AppendInt(score > 1.0 ? 1 : 0);
  }
  return t;
}

struct Trained {
  data::TransformResult fitted;
  std::unique_ptr<Model> model;
  std::vector<size_t> test_rows;
};

Trained Train(const data::Table& raw, const std::string& type) {
  absl::StatusOr<std::vector<data::TransformOp>> ops = data::ParseOps(json::parse(R"([
      {"impute": {"tenure": "median"}}, {"one_hot": ["plan"]},
      {"standardize": ["tenure", "charges"]},
      {"split": {"test": 0.25, "seed": 3, "stratify": "churned"}}])"));
  FERRY_CHECK(ops.ok());
  absl::StatusOr<data::TransformResult> fitted = data::FitTransform(*ops, raw);
  if (!fitted.ok()) ADD_FAILURE() << fitted.status();
  FERRY_CHECK(fitted.ok());
  absl::StatusOr<std::unique_ptr<Model>> m =
      FindModelType(type)->Fit(fitted->train, {.target = "churned", .seed = 5, .threads = 1});
  FERRY_CHECK(m.ok());
  return Trained{std::move(*fitted), std::move(*m), {}};
}

// Writes the bundle folder the train step writes: model/ and model.json.
std::string WriteBundle(const TempDir& dir, const Trained& t) {
  const std::string b = dir.path() + "/bundle";
  FERRY_CHECK(MakeDirs(b + "/model").ok());
  FERRY_CHECK(t.model->Save(b + "/model").ok());
  json meta = BundleMeta(*t.model, t.fitted.train, "churned", t.fitted.state);
  FERRY_CHECK(WriteFileAtomic(b + "/model.json", meta.dump()).ok());
  return b;
}

TEST(BundleMeta, DescribesFeaturesInputSchemaAndWeights) {
  Trained t = Train(RawRows(400), "logistic_regression");
  json meta = BundleMeta(*t.model, t.fitted.train, "churned", t.fitted.state);
  EXPECT_EQ(meta["type"], "logistic_regression");
  EXPECT_EQ(meta["task"], "binary");
  EXPECT_EQ(meta["target"], "churned");
  // one_hot replaces plan where it stood.
  EXPECT_EQ(meta["features"], json::parse(R"([{"name": "plan=basic", "type": "float64"},
      {"name": "plan=pro", "type": "float64"}, {"name": "plan=team", "type": "float64"},
      {"name": "tenure", "type": "float64"}, {"name": "charges", "type": "float64"}])"));
  // A request carries the raw columns, without the target.
  EXPECT_EQ(meta["input_schema"], json::parse(R"([{"name": "plan", "type": "string"},
      {"name": "tenure", "type": "int64"}, {"name": "charges", "type": "float64"}])"));
  EXPECT_EQ(meta["weights"]["kind"], "coefficients");
  EXPECT_EQ(meta["transform"], t.fitted.state);
}

// The serving path (JSON rows of raw columns -> transform -> model) gives the offline
// predictions on the transformed test part exactly: the serving-parity property.
TEST(ScoreInstances, RawRowsThroughTheBundleEqualOfflinePredictions) {
  for (const std::string type : {"logistic_regression", "xgboost"}) {
    SCOPED_TRACE(type);
    data::Table raw = RawRows(400);
    Trained t = Train(raw, type);
    TempDir dir;
    absl::StatusOr<Bundle> b = LoadBundle(WriteBundle(dir, t));
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_NE(b->model, nullptr);
    data::Table raw_test = raw.Take(t.fitted.test_input_rows);
    raw_test.RemoveColumn("churned");
    json request = {{"instances", TableToInstances(raw_test)}};
    absl::StatusOr<json> served = ScoreInstances(*b, json::parse(request.dump()));
    ASSERT_TRUE(served.ok()) << served.status();
    absl::StatusOr<Predictions> offline = t.model->Predict(*t.fitted.test);
    ASSERT_TRUE(offline.ok());
    ASSERT_EQ((*served)["predictions"].size(), offline->rows);
    for (size_t r = 0; r < offline->rows; ++r) {
      const json& row = (*served)["predictions"][r];
      EXPECT_EQ(row["probabilities"]["1"].get<double>(), offline->Probability(r, 1)) << r;
      EXPECT_EQ(row["label"], offline->classes[offline->ArgMax(r)]);
    }
  }
}

TEST(OptionalInputs, TheColumnsTheTransformDropsFirst) {
  EXPECT_TRUE(OptionalInputs(json::object()).empty());
  EXPECT_TRUE(OptionalInputs(json{{"transform", nullptr}}).empty());
  const json meta = {
      {"transform",
       {{"ops", json::array({json{{"drop", {"id", "signup"}}}, json{{"drop", {"note"}}},
                             json{{"rename", {{"a", "b"}}}}, json{{"drop", {"b"}}}})}}}};
  // Drops after another op (here a rename) may name a renamed column: not optional.
  EXPECT_EQ(OptionalInputs(meta), (std::vector<std::string>{"id", "signup", "note"}));
}

TEST(InstancesToTable, TypesNullsAndErrors) {
  json schema = json::parse(R"([{"name": "n", "type": "int64"}, {"name": "x", "type": "float64"},
      {"name": "s", "type": "string"}, {"name": "b", "type": "bool"},
      {"name": "t", "type": "timestamp"}])");
  absl::StatusOr<data::Table> t = InstancesToTable(
      json::parse(
          R"([{"n": 3, "x": 2, "s": "a", "b": true, "t": "2024-01-02T03:04:05Z", "extra": 1},
                      {"n": 4.0, "x": null}])"),
      schema);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->num_rows(), 2u);
  EXPECT_EQ(t->column("n").int_at(0), 3);
  EXPECT_EQ(t->column("n").int_at(1), 4);
  EXPECT_EQ(t->column("x").float_at(0), 2.0);
  EXPECT_TRUE(t->column("x").is_null(1));
  EXPECT_TRUE(t->column("s").is_null(1));
  EXPECT_EQ(t->column("s").string_at(0), "a");
  EXPECT_EQ(t->column("b").int_at(0), 1);
  EXPECT_EQ(t->column("t").ToText(0), "2024-01-02T03:04:05Z");
  EXPECT_EQ(t->Find("extra"), nullptr);
  // Round trip.
  EXPECT_EQ(TableToInstances(*t)[0]["t"], "2024-01-02T03:04:05Z");
  EXPECT_EQ(TableToInstances(*t)[1]["x"], nullptr);

  absl::StatusOr<data::Table> bad =
      InstancesToTable(json::parse(R"([{"n": 1}, {"n": "seven"}])"), schema);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "instances[1].n: expected a whole number (int64), got \"seven\"");
  EXPECT_THAT(InstancesToTable(json::parse(R"([{"n": 1.5}])"), schema).status().message(),
              HasSubstr("instances[0].n: expected a whole number"));
  EXPECT_THAT(InstancesToTable(json::parse("[3]"), schema).status().message(),
              HasSubstr("instances[0]: expected an object"));
  EXPECT_THAT(InstancesToTable(json::object(), schema).status().message(),
              HasSubstr("must be an array"));
}

TEST(ScoreInstances, RejectsBadRequestsAndMissingBundles) {
  Trained t = Train(RawRows(200), "logistic_regression");
  TempDir dir;
  absl::StatusOr<Bundle> b = LoadBundle(WriteBundle(dir, t));
  ASSERT_TRUE(b.ok());
  EXPECT_THAT(ScoreInstances(*b, json::array()).status().message(),
              HasSubstr("{\"instances\": [{column: value, ...}, ...]}"));
  absl::StatusOr<json> missing =
      ScoreInstances(*b, json::parse(R"({"instances": [{"plan": "pro"}]})"));
  // tenure is imputed; charges has no imputation, so its null reaches the model.
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("charges"));
  absl::StatusOr<Bundle> none = LoadBundle(dir.path() + "/nothing");
  EXPECT_FALSE(none.ok());
  FERRY_CHECK(WriteFileAtomic(dir.path() + "/model.json", "[]").ok());
  EXPECT_THAT(LoadBundle(dir.path()).status().message(),
              HasSubstr("not a model bundle's metadata"));
}

TEST(PredictionTexts, AreThePredictionsToJsonObjectsAsText) {
  Predictions c;
  c.task = Task::kBinary;
  c.rows = 3;
  c.classes = {"no", "ye\"s"};  // a label that needs escaping
  c.values = {0.25, 0.75, 1.0, 0.0, 0.5, 0.5};
  const std::vector<std::string> texts = PredictionTexts(c);
  const json docs = PredictionsToJson(c);
  ASSERT_EQ(texts.size(), 3u);
  for (size_t r = 0; r < 3; ++r) EXPECT_EQ(json::parse(texts[r]), docs[r]) << texts[r];
  EXPECT_EQ(texts[0], R"({"label":"ye\"s","probabilities":{"no":0.25,"ye\"s":0.75}})");
  // Whole numbers stay floats, as nlohmann writes them.
  EXPECT_EQ(texts[1], R"({"label":"no","probabilities":{"no":1.0,"ye\"s":0.0}})");

  Predictions r;
  r.task = Task::kRegression;
  r.rows = 3;
  r.values = {41.5, 1e-7, std::nan("")};
  EXPECT_EQ(PredictionTexts(r), (std::vector<std::string>{R"({"value":41.5})", R"({"value":1e-07})",
                                                          R"({"value":null})"}));
}

}  // namespace
}  // namespace ferry::model
