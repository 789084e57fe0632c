#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/model/model.h"
#include "gtest/gtest.h"

namespace ferry::model {
namespace {

using nlohmann::json;

// Ferry and Python's xgboost call the same Debian libxgboost (1.7.4) on the same float32 inputs
// with one thread: predictions and importances agreed exactly (checked once with tolerance 0).
// The margin keeps the tests meaningful should the two Debian packages ever drift apart.
constexpr double kTolerance = 1e-6;
constexpr size_t kReferenceRows = 20;

// gtest without gmock: a substring check that prints the whole message when it fails.
::testing::AssertionResult Contains(absl::string_view text, const std::string& part) {
  if (std::string_view(text.data(), text.size()).find(part) != std::string_view::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "'" << std::string(text) << "' lacks '" << part << "'";
}

std::string Fixture(const std::string& name) {
  return std::string(FERRY_SOURCE_DIR) + "/tests/fixtures/model/" + name;
}

data::Table ReadFixture(const std::string& task) {
  auto r = data::ReadCsvFile(Fixture("xgboost_" + task + ".csv"));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(r->table) : data::Table();
}

const json& Reference() {
  static const json* ref = [] {
    auto text = ReadFile(Fixture("xgboost_reference.json"));
    FERRY_CHECK(text.ok());
    return new json(json::parse(*text));
  }();
  return *ref;
}

// The options the reference script trains Python's xgboost with.
FitOptions ReferenceOptions(const std::string& task) {
  FitOptions opts{.target = "y",
                  .hyperparameters = {{"n_estimators", 20}, {"max_depth", 3}},
                  .seed = 0,
                  .threads = 1};
  if (task == "binary") {
    opts.hyperparameters["subsample"] = 0.8;
    opts.hyperparameters["colsample_bytree"] = 0.8;
  }
  return opts;
}

std::unique_ptr<Model> FitOrDie(const data::Table& t, const FitOptions& opts) {
  auto m = FindModelType("xgboost")->Fit(t, opts);
  EXPECT_TRUE(m.ok()) << m.status();
  FERRY_CHECK(m.ok());
  return std::move(m).value();
}

absl::Status FitStatus(const data::Table& t, const FitOptions& opts) {
  return FindModelType("xgboost")->Fit(t, opts).status();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    tmpl += "/ferry_xgb_XXXXXX";
    FERRY_CHECK(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { (void)RemoveAll(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Ferry's predictions for the first rows, flattened as Python prints them: p1 per row for
// binary models, the class probabilities for multiclass ones, the value for regression.
std::vector<double> Flatten(const Predictions& p, size_t rows) {
  std::vector<double> out;
  for (size_t r = 0; r < rows; ++r) {
    if (p.task == Task::kBinary) {
      out.push_back(p.Probability(r, 1));
    } else if (p.task == Task::kMulticlass) {
      for (size_t c = 0; c < p.classes.size(); ++c) out.push_back(p.Probability(r, c));
    } else {
      out.push_back(p.values[r]);
    }
  }
  return out;
}

std::vector<double> ReferencePredictions(const std::string& task) {
  std::vector<double> out;
  for (const json& row : Reference()[task]["predictions"]) {
    for (const json& v : row) out.push_back(v.get<double>());
  }
  return out;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], kTolerance) << "at " << i;
}

void CheckAgainstReference(const std::string& task, Task expected_task) {
  data::Table t = ReadFixture(task);
  ASSERT_EQ(t.num_rows(), 300u);
  std::unique_ptr<Model> m = FitOrDie(t, ReferenceOptions(task));
  EXPECT_EQ(m->type(), "xgboost");
  EXPECT_EQ(m->task(), expected_task);
  EXPECT_EQ(m->features(), (std::vector<std::string>{"f0", "f1", "f2", "f3", "f4"}));
  auto p = m->Predict(t);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->rows, 300u);
  if (Reference()[task].contains("classes")) {
    EXPECT_EQ(p->classes, Reference()[task]["classes"].get<std::vector<std::string>>());
  } else {
    EXPECT_TRUE(p->classes.empty());
  }
  ExpectNear(Flatten(*p, kReferenceRows), ReferencePredictions(task));

  json d = m->Describe();
  EXPECT_EQ(d["kind"], "importance");
  EXPECT_EQ(d["importance_type"], "total_gain");
  double sum = 0;
  for (const auto& [f, share] : Reference()[task]["importance"].items()) {
    ASSERT_TRUE(d["values"].contains(f)) << f;
    EXPECT_NEAR(d["values"][f].get<double>(), share.get<double>(), kTolerance) << f;
    sum += d["values"][f].get<double>();
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

TEST(XgboostModel, IsRegistered) {
  ASSERT_NE(FindModelType("xgboost"), nullptr);
  EXPECT_EQ(FindModelType("xgboost")->name(), "xgboost");
}

TEST(XgboostModel, FixturesComeFromTheSameXgboostVersion) {
  // The reference was produced by python3-xgboost; if Debian upgrades one side only, the
  // bit-for-bit comparisons below may need a looser tolerance: this says why.
  int major = 0, minor = 0, patch = 0;
  FitOptions opts = ReferenceOptions("regression");
  std::unique_ptr<Model> m = FitOrDie(ReadFixture("regression"), opts);
  TempDir dir;
  ASSERT_TRUE(m->Save(dir.path()).ok());
  json meta = json::parse(*ReadFile(dir.path() + "/model.json"));
  ASSERT_EQ(std::sscanf(meta["xgboost_version"].get<std::string>().c_str(), "%d.%d.%d", &major,
                        &minor, &patch),
            3);
  EXPECT_EQ(meta["xgboost_version"], Reference()["xgboost_version"]);
}

TEST(XgboostModel, BinaryMatchesPythonReference) { CheckAgainstReference("binary", Task::kBinary); }

TEST(XgboostModel, RegressionMatchesPythonReference) {
  CheckAgainstReference("regression", Task::kRegression);
}

TEST(XgboostModel, MulticlassMatchesPythonReference) {
  CheckAgainstReference("multiclass", Task::kMulticlass);
}

TEST(XgboostModel, BinaryProbabilitiesSumToOne) {
  std::unique_ptr<Model> m = FitOrDie(ReadFixture("binary"), ReferenceOptions("binary"));
  auto p = m->Predict(ReadFixture("binary"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->classes, (std::vector<std::string>{"0", "1"}));
  for (size_t r = 0; r < p->rows; ++r) {
    EXPECT_NEAR(p->Probability(r, 0) + p->Probability(r, 1), 1.0, 1e-12);
    EXPECT_EQ(p->Score(r), p->Probability(r, 1));
  }
}

// Runs Python's xgboost on each saved booster (model folder, CSV) and the CSV's first rows, in one
// interpreter (importing xgboost takes seconds); the predictions it prints, one list per model.
std::vector<std::vector<double>> PredictInPython(
    const std::vector<std::pair<std::string, std::string>>& models) {
  const char* script =
      "import json, sys\n"
      "import numpy as np, xgboost as xgb\n"
      "n = int(sys.argv[1])\n"
      "for d, csv in zip(sys.argv[2::2], sys.argv[3::2]):\n"
      "    meta = json.load(open(d + \"/model.json\"))\n"
      "    b = xgb.Booster()\n"
      "    b.load_model(d + \"/xgboost.json\")\n"
      "    rows = [l.rstrip(\"\\n\").split(\",\") for l in open(csv)][1:n + 1]\n"
      "    x = np.array([[float(c) for c in r[:5]] for r in rows])\n"
      "    for v in b.predict(xgb.DMatrix(x, feature_names=meta[\"features\"])).ravel():\n"
      "        print(repr(float(v)))\n"
      "    print(\"--\")\n";
  // Bounded in time: a hung interpreter fails the test after 60 s instead of stalling ctest.
  std::string cmd = fmt::format("timeout 60 /usr/bin/python3 -c '{}' {}", script, kReferenceRows);
  for (const auto& [dir, csv] : models) cmd += fmt::format(" '{}' '{}'", dir, csv);
  cmd += " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  EXPECT_NE(f, nullptr);
  if (f == nullptr) return {};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int status = pclose(f);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "Python's xgboost could not score the saved models. This test needs /usr/bin/python3 "
         "with numpy and xgboost (Debian: apt install python3-xgboost). Output:\n"
      << out;
  std::vector<std::vector<double>> values(1);
  size_t pos = 0;
  while (pos < out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(pos, end - pos);
    if (line == "--") {
      values.emplace_back();
    } else if (!line.empty()) {
      char* stop = nullptr;
      double v = std::strtod(line.c_str(), &stop);
      EXPECT_EQ(*stop, '\0') << "not a number in Python's output: " << line;
      values.back().push_back(v);
    }
    pos = end + 1;
  }
  values.pop_back();  // after the last "--"
  return values;
}

TEST(XgboostModel, SavedModelsScoreTheSameInPythonXgboost) {
  const std::vector<std::string> tasks = {"binary", "regression", "multiclass"};
  std::vector<TempDir> dirs(tasks.size());
  std::vector<std::pair<std::string, std::string>> models;
  std::vector<std::vector<double>> ours;
  for (size_t i = 0; i < tasks.size(); ++i) {
    data::Table t = ReadFixture(tasks[i]);
    std::unique_ptr<Model> m = FitOrDie(t, ReferenceOptions(tasks[i]));
    ASSERT_TRUE(m->Save(dirs[i].path()).ok());
    auto p = m->Predict(t);
    ASSERT_TRUE(p.ok());
    ours.push_back(Flatten(*p, kReferenceRows));
    models.emplace_back(dirs[i].path(), Fixture("xgboost_" + tasks[i] + ".csv"));
  }
  std::vector<std::vector<double>> theirs = PredictInPython(models);
  ASSERT_EQ(theirs.size(), tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    SCOPED_TRACE(tasks[i]);
    ExpectNear(theirs[i], ours[i]);
  }
}

TEST(XgboostModel, SaveLoadRoundTripKeepsPredictionsAndDescription) {
  for (const std::string task : {"binary", "regression", "multiclass"}) {
    SCOPED_TRACE(task);
    data::Table t = ReadFixture(task);
    std::unique_ptr<Model> m = FitOrDie(t, ReferenceOptions(task));
    TempDir dir;
    ASSERT_TRUE(m->Save(dir.path()).ok());
    auto loaded = FindModelType("xgboost")->Load(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->task(), m->task());
    EXPECT_EQ((*loaded)->features(), m->features());
    EXPECT_EQ((*loaded)->Describe(), m->Describe());
    auto a = m->Predict(t);
    auto b = (*loaded)->Predict(t);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->classes, b->classes);
    EXPECT_EQ(a->values, b->values);  // bit for bit
  }
}

TEST(XgboostModel, ModelJsonRecordsWhatWasFitted) {
  std::unique_ptr<Model> m = FitOrDie(ReadFixture("multiclass"), ReferenceOptions("multiclass"));
  TempDir dir;
  ASSERT_TRUE(m->Save(dir.path()).ok());
  EXPECT_TRUE(PathExists(dir.path() + "/xgboost.json"));
  json meta = json::parse(*ReadFile(dir.path() + "/model.json"));
  EXPECT_EQ(meta["type"], "xgboost");
  EXPECT_EQ(meta["task"], "multiclass");
  EXPECT_EQ(meta["target"], "y");
  EXPECT_EQ(meta["features"], json({"f0", "f1", "f2", "f3", "f4"}));
  EXPECT_EQ(meta["classes"], json({"high", "low", "mid"}));
  EXPECT_EQ(meta["rounds"], 20);
  EXPECT_EQ(meta["hyperparameters"], json({{"n_estimators", 20},
                                           {"max_depth", 3},
                                           {"learning_rate", 0.3},
                                           {"tree_method", "hist"},
                                           {"objective", "multi:softprob"}}));
}

TEST(XgboostModel, UnknownHyperparameterSuggestsTheClosestName) {
  data::Table t = ReadFixture("binary");
  FitOptions opts{.target = "y", .hyperparameters = {{"learning_rat", 0.1}}};
  absl::Status s = FitStatus(t, opts);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "unknown xgboost hyperparameter 'learning_rat'; did you mean "
            "'learning_rate'?");
  opts.hyperparameters = {{"zzz", 1}};
  s = FitStatus(t, opts);
  EXPECT_TRUE(Contains(std::string(s.message()), "unknown xgboost hyperparameter 'zzz'"));
  EXPECT_TRUE(Contains(std::string(s.message()), "n_estimators"));
  opts.hyperparameters = {{"seed", 3}};
  EXPECT_TRUE(Contains(std::string(FitStatus(t, opts).message()),
                       "the seed comes from the step's seed option"));
  opts.hyperparameters = {{"nthread", 3}};
  EXPECT_TRUE(Contains(std::string(FitStatus(t, opts).message()),
                       "the thread count comes from the step's threads option"));
}

TEST(XgboostModel, RejectsBadHyperparameterValues) {
  data::Table t = ReadFixture("binary");
  auto message = [&](json hp) {
    absl::Status s = FitStatus(t, {.target = "y", .hyperparameters = std::move(hp)});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  EXPECT_EQ(message({{"max_depth", 0}}),
            "xgboost hyperparameter 'max_depth' must be an integer in [1, 1000]; got 0");
  EXPECT_EQ(message({{"n_estimators", 2.5}}),
            "xgboost hyperparameter 'n_estimators' must be an integer in [1, 1000000]; got 2.5");
  EXPECT_EQ(message({{"n_estimators", "ten"}}),
            "xgboost hyperparameter 'n_estimators' must be an integer in [1, 1000000]; got "
            "\"ten\"");
  EXPECT_EQ(message({{"subsample", 0}}),
            "xgboost hyperparameter 'subsample' must be a number in (0, 1]; got 0");
  EXPECT_EQ(message({{"reg_lambda", -0.5}}),
            "xgboost hyperparameter 'reg_lambda' must be a number >= 0; got -0.5");
  EXPECT_EQ(message({{"tree_method", "gpu_hist"}}),
            "xgboost hyperparameter 'tree_method' is 'gpu_hist'; accepted values: 'hist', "
            "'approx', 'exact', 'auto'");
  EXPECT_TRUE(Contains(message({{"objective", "multi:softmax"}}),
                       "'objective' is 'multi:softmax'; accepted values: 'binary:logistic', "
                       "'multi:softprob'"));
  EXPECT_EQ(message({{"eta", 0.1}, {"learning_rate", 0.2}}),
            "xgboost hyperparameters 'eta' and 'learning_rate' are the same setting; keep one of "
            "them");
  EXPECT_EQ(message(json::array({1})),
            "xgboost hyperparameters must be a mapping of name to value; got [1]");
}

TEST(XgboostModel, AliasesAndIntegralNumbersAreAccepted) {
  data::Table t = ReadFixture("regression");
  FitOptions opts = ReferenceOptions("regression");
  opts.hyperparameters = {{"n_estimators", 20.0}, {"max_depth", 3}, {"eta", 0.3},
                          {"lambda", 1},          {"alpha", 0},     {"max_bin", 256}};
  auto p = FitOrDie(t, opts)->Predict(t);
  ASSERT_TRUE(p.ok());
  // lambda 1, alpha 0 and max_bin 256 are XGBoost's defaults: the reference model again.
  ExpectNear(Flatten(*p, kReferenceRows), ReferencePredictions("regression"));
}

TEST(XgboostModel, SeedDrivesRowAndColumnSampling) {
  data::Table t = ReadFixture("binary");
  FitOptions opts = ReferenceOptions("binary");
  auto a = FitOrDie(t, opts)->Predict(t);
  auto b = FitOrDie(t, opts)->Predict(t);
  opts.seed = 1;
  auto c = FitOrDie(t, opts)->Predict(t);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->values, b->values);
  EXPECT_NE(a->values, c->values);
}

TEST(XgboostModel, ObjectiveDecidesTheTask) {
  data::Table t = ReadFixture("binary");  // y is int64 0/1: classification by default
  FitOptions opts = ReferenceOptions("binary");
  EXPECT_EQ(FitOrDie(t, opts)->task(), Task::kBinary);
  opts.hyperparameters["objective"] = "reg:squarederror";
  std::unique_ptr<Model> reg = FitOrDie(t, opts);
  EXPECT_EQ(reg->task(), Task::kRegression);
  auto p = reg->Predict(t);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->classes.empty());
  EXPECT_EQ(p->values.size(), 300u);
  // Two classes through multi:softprob: still a binary model, with both probabilities.
  opts.hyperparameters["objective"] = "multi:softprob";
  std::unique_ptr<Model> soft = FitOrDie(t, opts);
  EXPECT_EQ(soft->task(), Task::kBinary);
  p = soft->Predict(t);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->values.size(), 600u);
  EXPECT_NEAR(p->Probability(0, 0) + p->Probability(0, 1), 1.0, 1e-6);
}

TEST(XgboostModel, TargetErrorsSayWhatToDo) {
  data::Table t = ReadFixture("multiclass");
  FitOptions opts = ReferenceOptions("multiclass");
  opts.hyperparameters["objective"] = "binary:logistic";
  absl::Status s = FitStatus(t, opts);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "xgboost: objective 'binary:logistic' needs a target with 2 classes; 'y' has 3: use "
            "'multi:softprob' or leave objective unset");
  opts.hyperparameters["objective"] = "reg:squarederror";
  EXPECT_EQ(FitStatus(t, opts).message(),
            "xgboost: objective 'reg:squarederror' is a regression but the target 'y' is a "
            "string column");

  opts = ReferenceOptions("multiclass");
  opts.target = "label";
  EXPECT_EQ(FitStatus(t, opts).message(),
            "xgboost: the target column 'label' is not in the table (columns: f0, f1, f2, f3, "
            "f4, y)");

  data::Table one;
  one.AddColumn("x", data::ColumnType::kFloat64).AppendDouble(1);
  one.AddColumn("y", data::ColumnType::kString).AppendString("yes");
  EXPECT_EQ(FitStatus(one, {.target = "y"}).message(),
            "xgboost: the target 'y' has a single class ('yes'); classification needs at least "
            "two (or set objective: reg:squarederror for regression)");

  data::Table empty;
  empty.AddColumn("x", data::ColumnType::kFloat64);
  empty.AddColumn("y", data::ColumnType::kFloat64);
  EXPECT_EQ(FitStatus(empty, {.target = "y"}).message(), "xgboost: the training table has no rows");

  data::Table nulls;
  nulls.AddColumn("x", data::ColumnType::kFloat64);
  nulls.AddColumn("y", data::ColumnType::kFloat64);
  nulls.mutable_column(0).AppendDouble(1);
  nulls.mutable_column(0).AppendDouble(2);
  nulls.mutable_column(1).AppendDouble(1);
  nulls.mutable_column(1).AppendNull();
  EXPECT_EQ(FitStatus(nulls, {.target = "y"}).message(),
            "xgboost: the target 'y' is null in row 2; drop or fill those rows first");
}

TEST(XgboostModel, FeatureErrorsNameTheColumn) {
  data::Table t = ReadFixture("regression");
  std::unique_ptr<Model> m = FitOrDie(t, ReferenceOptions("regression"));

  data::Table missing = t;
  missing.RemoveColumn("f2");
  missing.RemoveColumn("f4");
  auto p = m->Predict(missing);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "missing feature columns 'f2', 'f4'; the model uses 'f0', 'f1', 'f2', 'f3', 'f4'");

  data::Table text;
  text.AddColumn("plan", data::ColumnType::kString).AppendString("basic");
  text.AddColumn("y", data::ColumnType::kFloat64).AppendDouble(1);
  EXPECT_EQ(FitStatus(text, {.target = "y"}).message(),
            "column 'plan' is text; one-hot encode it first (transform: one_hot)");

  data::Table nulls;
  nulls.AddColumn("x", data::ColumnType::kInt64);
  nulls.AddColumn("y", data::ColumnType::kFloat64);
  for (int i = 0; i < 3; ++i) {
    if (i == 1) {
      nulls.mutable_column(0).AppendNull();
    } else {
      nulls.mutable_column(0).AppendInt(i);
    }
    nulls.mutable_column(1).AppendDouble(i);
  }
  EXPECT_EQ(FitStatus(nulls, {.target = "y"}).message(),
            "column 'x' has 1 null; impute it first (transform: impute)");
}

TEST(XgboostModel, PredictFindsFeaturesByNameAndIgnoresOthers) {
  data::Table t = ReadFixture("regression");
  std::unique_ptr<Model> m = FitOrDie(t, ReferenceOptions("regression"));
  data::Table shuffled;
  for (const char* name : {"f4", "y", "f2", "f0", "f3", "f1"}) {
    shuffled.AddColumn(t.column(name));
  }
  shuffled.AddColumn("extra", data::ColumnType::kString);
  for (size_t r = 0; r < t.num_rows(); ++r) shuffled.mutable_columns().back().AppendString("x");
  auto a = m->Predict(t);
  auto b = m->Predict(shuffled);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status();
  EXPECT_EQ(a->values, b->values);

  data::Table none = t.Filter(std::vector<uint8_t>(t.num_rows(), 0));
  auto empty = m->Predict(none);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->rows, 0u);
  EXPECT_TRUE(empty->values.empty());
}

TEST(XgboostModel, ConcurrentPredictionsEqualSerialOnes) {
  data::Table t = ReadFixture("multiclass");
  std::unique_ptr<Model> m = FitOrDie(t, ReferenceOptions("multiclass"));
  auto serial = m->Predict(t);
  ASSERT_TRUE(serial.ok());
  std::vector<std::vector<double>> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 5; ++k) {
        auto p = m->Predict(t);
        if (!p.ok() || (k > 0 && p->values != got[i])) {
          got[i].clear();
          return;
        }
        got[i] = p->values;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (const auto& v : got) EXPECT_EQ(v, serial->values);
}

TEST(XgboostModel, LoadErrorsNameTheFile) {
  TempDir dir;
  auto missing = FindModelType("xgboost")->Load(dir.path());
  EXPECT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(std::string(missing.status().message()), dir.path() + "/model.json"));

  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/model.json", R"({"type": "linear_regression"})").ok());
  auto wrong = FindModelType("xgboost")->Load(dir.path());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message(),
            dir.path() + "/model.json: the model type is '\"linear_regression\"', not 'xgboost'");

  std::unique_ptr<Model> m = FitOrDie(ReadFixture("binary"), ReferenceOptions("binary"));
  ASSERT_TRUE(m->Save(dir.path()).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/xgboost.json", "{not json").ok());
  auto corrupt = FindModelType("xgboost")->Load(dir.path());
  EXPECT_EQ(corrupt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(std::string(corrupt.status().message()),
                       "xgboost: loading " + dir.path() + "/xgboost.json: "));
}

}  // namespace
}  // namespace ferry::model
