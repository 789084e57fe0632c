// The built-in "xgboost" model type: gradient-boosted trees trained and scored in-process through
// XGBoost's C API (Debian's libxgboost, 1.7). The booster is saved as XGBoost's own JSON model
// format, so Python's xgboost reads it unchanged: `xgboost.Booster().load_model("xgboost.json")`
// (pass the DMatrix the feature names of model.json: the booster carries them and checks them).
//
// Task: "objective" decides when given; otherwise the target's type does: string and bool
// targets are classification, float64 targets regression, int64 targets classification when
// they hold at most kMaxInferredClasses distinct values (0/1 "churned"), else regression.
// Classification with 2 classes uses binary:logistic, with more multi:softprob (num_class is
// set from the target). Classes are sorted as Labels sorts them; class i is XGBoost's label i.
//
// Hyperparameters (FitOptions.hyperparameters; anything else is an InvalidArgument naming the
// closest accepted key). Unset ones keep XGBoost's defaults, except the first four:
//   n_estimators       int >= 1, default 100         boosting rounds
//   max_depth          int >= 1, default 6
//   learning_rate|eta  number in (0, 1], default 0.3
//   tree_method        "hist" (default) | "approx" | "exact" | "auto"
//   subsample          number in (0, 1]              rows sampled per tree
//   colsample_bytree   number in (0, 1]              columns sampled per tree
//   min_child_weight   number >= 0
//   reg_lambda|lambda  number >= 0                   L2 on leaf weights
//   reg_alpha|alpha    number >= 0                   L1 on leaf weights
//   gamma              number >= 0                   minimum loss reduction to split
//   max_bin            int >= 2                      hist / approx bins per feature
//   objective          binary:logistic | multi:softprob | reg:squarederror | reg:squaredlogerror
//                      | reg:absoluteerror | reg:pseudohubererror | count:poisson | reg:gamma
//                      | reg:tweedie — only objectives whose output is a probability or a value
// Not hyperparameters: XGBoost's "seed" is FitOptions.seed and "nthread" FitOptions.threads (0 =
// XGBoost's default, every core). Saved models score with every core.
//
// Features: as for every built-in (ToFeatureMatrix), numeric columns without nulls or NaN, so
// XGBoost's own missing-value branches are never used; values are rounded to float32, as
// XGBoost stores them.
//
// Describe(): {"kind": "importance", "importance_type": "total_gain", "values": {feature: share},
// "rounds": n}
// where share is the feature's total split gain over all trees (XGBoosterFeatureScore) divided by
// the sum over features; a feature no split uses has 0. Total gain rather than split counts
// ("weight"), because it measures what a feature contributes, not how often it is tried.
//
// Thread-safety: a fitted or loaded booster is only read; XGBoost (>= 1.4) predicts from several
// threads on one booster, and its lazy configuration is done once, eagerly, before the Model is
// handed out.

#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/common/suggest.h"
#include "ferry/model/internal/linear_model.h"
#include "ferry/model/internal/types.h"
#include "fmt/format.h"

namespace ferry::model::internal {
namespace {

using nlohmann::json;

constexpr size_t kMaxInferredClasses = 20;
constexpr char kModelFile[] = "model.json";
constexpr char kBoosterFile[] = "xgboost.json";

// RAII owners of XGBoost handles: every exit path frees them.
struct DMatrixFree {
  void operator()(void* h) const { XGDMatrixFree(h); }
};
struct BoosterFree {
  void operator()(void* h) const { XGBoosterFree(h); }
};
using DMatrixPtr = std::unique_ptr<void, DMatrixFree>;
using BoosterPtr = std::unique_ptr<void, BoosterFree>;

// XGBoost reports failure as -1 and keeps the message in a thread-local buffer.
absl::Status Check(int rc, std::string_view what,
                   absl::StatusCode code = absl::StatusCode::kInternal) {
  if (rc == 0) return absl::OkStatus();
  return absl::Status(code, fmt::format("xgboost: {}: {}", what, XGBGetLastError()));
}

std::string LibraryVersion() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return fmt::format("{}.{}.{}", major, minor, patch);
}

// ---- Hyperparameters -------------------------------------------------------------------------

enum class Kind { kInt, kNumber, kChoice };

struct ParamSpec {
  std::string_view key;        // what users write
  std::string_view canonical;  // the name in model.json (aliases share it)
  std::string_view xgb;        // XGBoost's name; "" for ferry's own (n_estimators)
  Kind kind;
  double lo = 0, hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;  // lo itself is not allowed
  std::vector<std::string_view> choices = {};
};

const std::vector<std::string_view> kObjectives = {
    "binary:logistic",     "multi:softprob",    "reg:squarederror",
    "reg:squaredlogerror", "reg:absoluteerror", "reg:pseudohubererror",
    "count:poisson",       "reg:gamma",         "reg:tweedie"};

const std::vector<ParamSpec>& Specs() {
  static const auto* specs = new std::vector<ParamSpec>{
      {.key = "n_estimators",
       .canonical = "n_estimators",
       .xgb = "",
       .kind = Kind::kInt,
       .lo = 1,
       .hi = 1e6},
      {.key = "max_depth",
       .canonical = "max_depth",
       .xgb = "max_depth",
       .kind = Kind::kInt,
       .lo = 1,
       .hi = 1000},
      {.key = "learning_rate",
       .canonical = "learning_rate",
       .xgb = "eta",
       .kind = Kind::kNumber,
       .lo = 0,
       .hi = 1,
       .lo_open = true},
      {.key = "eta",
       .canonical = "learning_rate",
       .xgb = "eta",
       .kind = Kind::kNumber,
       .lo = 0,
       .hi = 1,
       .lo_open = true},
      {.key = "tree_method",
       .canonical = "tree_method",
       .xgb = "tree_method",
       .kind = Kind::kChoice,
       .choices = {"hist", "approx", "exact", "auto"}},
      {.key = "subsample",
       .canonical = "subsample",
       .xgb = "subsample",
       .kind = Kind::kNumber,
       .lo = 0,
       .hi = 1,
       .lo_open = true},
      {.key = "colsample_bytree",
       .canonical = "colsample_bytree",
       .xgb = "colsample_bytree",
       .kind = Kind::kNumber,
       .lo = 0,
       .hi = 1,
       .lo_open = true},
      {.key = "min_child_weight",
       .canonical = "min_child_weight",
       .xgb = "min_child_weight",
       .kind = Kind::kNumber},
      {.key = "reg_lambda", .canonical = "reg_lambda", .xgb = "lambda", .kind = Kind::kNumber},
      {.key = "lambda", .canonical = "reg_lambda", .xgb = "lambda", .kind = Kind::kNumber},
      {.key = "reg_alpha", .canonical = "reg_alpha", .xgb = "alpha", .kind = Kind::kNumber},
      {.key = "alpha", .canonical = "reg_alpha", .xgb = "alpha", .kind = Kind::kNumber},
      {.key = "gamma", .canonical = "gamma", .xgb = "gamma", .kind = Kind::kNumber},
      {.key = "max_bin",
       .canonical = "max_bin",
       .xgb = "max_bin",
       .kind = Kind::kInt,
       .lo = 2,
       .hi = 1 << 20},
      {.key = "objective",
       .canonical = "objective",
       .xgb = "objective",
       .kind = Kind::kChoice,
       .choices = kObjectives},
  };
  return *specs;
}

std::string ChoicesText(const std::vector<std::string_view>& choices) {
  std::string out;
  for (std::string_view c : choices) out += fmt::format("{}'{}'", out.empty() ? "" : ", ", c);
  return out;
}

std::string RangeText(const ParamSpec& s) {
  std::string what = s.kind == Kind::kInt ? "an integer" : "a number";
  if (std::isinf(s.hi)) return fmt::format("{} {} {}", what, s.lo_open ? ">" : ">=", s.lo);
  return fmt::format("{} in {}{}, {}]", what, s.lo_open ? "(" : "[", s.lo, s.hi);
}

// The validated hyperparameters: `resolved` for model.json (canonical names, defaults filled
// in), `xgb` the (name, text) pairs for XGBoosterSetParam.
struct Hyper {
  json resolved = json::object();
  std::vector<std::pair<std::string, std::string>> xgb;
  int rounds = 100;
  std::string objective;  // "" when not given
};

absl::StatusOr<json> ValidateValue(const ParamSpec& s, const json& v) {
  std::string_view key = s.key;
  if (s.kind == Kind::kChoice) {
    if (!v.is_string()) {
      return absl::InvalidArgumentError(
          fmt::format("xgboost hyperparameter '{}' must be a string, one of {}; got {}", key,
                      ChoicesText(s.choices), v.dump()));
    }
    std::string text = v.get<std::string>();
    if (std::find(s.choices.begin(), s.choices.end(), text) == s.choices.end()) {
      return absl::InvalidArgumentError(
          fmt::format("xgboost hyperparameter '{}' is '{}'; accepted values: {}", key, text,
                      ChoicesText(s.choices)));
    }
    return v;
  }
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        fmt::format("xgboost hyperparameter '{}' must be {}; got {}", key, RangeText(s), v.dump()));
  }
  double x = v.get<double>();
  bool integral = std::isfinite(x) && std::floor(x) == x;
  bool in_range = std::isfinite(x) && (s.lo_open ? x > s.lo : x >= s.lo) && x <= s.hi;
  if ((s.kind == Kind::kInt && !integral) || !in_range) {
    return absl::InvalidArgumentError(
        fmt::format("xgboost hyperparameter '{}' must be {}; got {}", key, RangeText(s), v.dump()));
  }
  if (s.kind == Kind::kInt) return json(static_cast<int64_t>(x));
  return json(x);
}

absl::StatusOr<Hyper> ValidateHyperparameters(const json& given) {
  if (!given.is_null() && !given.is_object()) {
    return absl::InvalidArgumentError(fmt::format(
        "xgboost hyperparameters must be a mapping of name to value; got {}", given.dump()));
  }
  std::vector<std::string> keys;
  for (const ParamSpec& s : Specs()) keys.emplace_back(s.key);

  Hyper h;
  h.resolved = {
      {"n_estimators", 100}, {"max_depth", 6}, {"learning_rate", 0.3}, {"tree_method", "hist"}};
  std::map<std::string, std::string> seen_canonical;  // canonical -> the key that set it
  if (given.is_object()) {
    for (const auto& [key, value] : given.items()) {
      auto it = std::find_if(Specs().begin(), Specs().end(),
                             [&](const ParamSpec& s) { return s.key == key; });
      if (it == Specs().end()) {
        std::string hint;
        if (key == "seed" || key == "random_state") {
          hint = "; the seed comes from the step's seed option, not a hyperparameter";
        } else if (key == "nthread" || key == "n_jobs") {
          hint = "; the thread count comes from the step's threads option, not a hyperparameter";
        } else if (key == "num_class") {
          hint = "; num_class is set from the number of classes of the target";
        } else {
          hint = UnknownKeyHint(key, keys);
        }
        return absl::InvalidArgumentError(
            fmt::format("unknown xgboost hyperparameter '{}'{}", key, hint));
      }
      std::string canonical(it->canonical);
      if (auto prev = seen_canonical.find(canonical); prev != seen_canonical.end()) {
        return absl::InvalidArgumentError(fmt::format(
            "xgboost hyperparameters '{}' and '{}' are the same setting; keep one of them",
            prev->second, key));
      }
      seen_canonical[canonical] = key;
      FERRY_ASSIGN_OR_RETURN(json v, ValidateValue(*it, value));
      h.resolved[canonical] = v;
    }
  }
  for (const auto& [canonical, v] : h.resolved.items()) {
    if (canonical == "n_estimators") {
      h.rounds = v.get<int>();
      continue;
    }
    if (canonical == "objective") {
      h.objective = v.get<std::string>();
      continue;  // set with num_class once the task is known
    }
    auto it = std::find_if(Specs().begin(), Specs().end(),
                           [&](const ParamSpec& s) { return s.canonical == canonical; });
    FERRY_CHECK(it != Specs().end());
    std::string text = v.is_string()           ? v.get<std::string>()
                       : v.is_number_integer() ? fmt::format("{}", v.get<int64_t>())
                                               : fmt::format("{}", v.get<double>());
    h.xgb.emplace_back(std::string(it->xgb), text);
  }
  return h;
}

// ---- Table conversion ------------------------------------------------------------------------

// The features as XGBoost's dense row-major float32 matrix, converted straight from the table's
// columns in row blocks on `threads` threads (no float64 row-major copy in between).
// ToFeatureColumns makes the checks of ToFeatureMatrix: it refuses nulls and NaN like every
// built-in does, so XGBoost's own missing-value handling is not used: a model scores a row only
// when every feature has a value.
absl::StatusOr<std::vector<float>> FloatFeatures(const data::Table& table,
                                                 const std::vector<std::string>& names,
                                                 int threads) {
  FERRY_ASSIGN_OR_RETURN(FeatureColumns cols, ToFeatureColumns(table, names, threads));
  const size_t d = names.size();
  std::vector<float> x(cols.rows * d);
  ForEachRowBlock(cols.rows, NumRowBlocks(cols.rows, d), threads,
                  [&](size_t, size_t begin, size_t end) {
                    for (size_t j = 0; j < d; ++j) {
                      const double* in = cols.columns[j];
                      float* out = x.data() + j;
                      for (size_t i = begin; i < end; ++i) out[i * d] = static_cast<float>(in[i]);
                    }
                  });
  return x;
}

// The __array_interface__ of XGBoost's dense inputs: `rows` x `cols` row-major float32 at `x`.
std::string DenseInterface(const float* x, size_t rows, size_t cols) {
  return fmt::format(R"({{"data":[{},true],"shape":[{},{}],"typestr":"<f4","version":3}})",
                     reinterpret_cast<uintptr_t>(x), rows, cols);
}

// A data iterator of one batch, a dense float32 matrix, for XGQuantileDMatrixCreateFromCallback
// (which calls Reset and Next, and reads the batch from `proxy`).
struct DenseBatch {
  void* proxy = nullptr;
  const float* x = nullptr;
  size_t rows = 0, cols = 0;
  bool given = false;
  int rc = 0;  // XGProxyDMatrixSetDataDense's
  std::string interface;
};
void ResetDenseBatch(DataIterHandle h) { static_cast<DenseBatch*>(h)->given = false; }
int NextDenseBatch(DataIterHandle h) {
  auto* b = static_cast<DenseBatch*>(h);
  if (b->given) return 0;
  b->given = true;
  b->interface = DenseInterface(b->x, b->rows, b->cols);
  b->rc = XGProxyDMatrixSetDataDense(b->proxy, b->interface.c_str());
  return b->rc == 0 ? 1 : 0;
}

// The training matrix. With tree_method hist (the default) a QuantileDMatrix, as Python's
// XGBClassifier builds: the features are binned straight from `x`, without the sparse copy a
// DMatrix makes and bins again in the first round (the same bins, so the same trees); else a
// DMatrix.
absl::StatusOr<DMatrixPtr> TrainingMatrix(const std::vector<float>& x, size_t rows, size_t cols,
                                          const json& hyper, int threads) {
  void* raw = nullptr;
  if (hyper.value("tree_method", "") != "hist") {
    FERRY_RETURN_IF_ERROR(
        Check(XGDMatrixCreateFromMat_omp(x.data(), rows, cols, NAN, &raw, threads),
              "building the training matrix"));
    return DMatrixPtr(raw);
  }
  FERRY_RETURN_IF_ERROR(Check(XGProxyDMatrixCreate(&raw), "building the training matrix"));
  DMatrixPtr proxy(raw);
  DenseBatch batch{.proxy = proxy.get(), .x = x.data(), .rows = rows, .cols = cols};
  const std::string config =
      fmt::format(R"({{"missing":NaN,"nthread":{},"max_bin":{}}})", threads,
                  hyper.contains("max_bin") ? hyper["max_bin"].get<int64_t>() : 256);
  raw = nullptr;
  int rc = XGQuantileDMatrixCreateFromCallback(
      &batch, proxy.get(), /*ref=*/nullptr, ResetDenseBatch, NextDenseBatch, config.c_str(), &raw);
  FERRY_RETURN_IF_ERROR(Check(batch.rc, "passing the features to xgboost"));
  FERRY_RETURN_IF_ERROR(Check(rc, "building the training matrix"));
  return DMatrixPtr(raw);
}

// ---- Task ------------------------------------------------------------------------------------

bool IsRegressionObjective(std::string_view o) {
  return o.starts_with("reg:") || o.starts_with("count:");
}

absl::StatusOr<bool> IsClassification(const data::Column& target, const std::string& objective) {
  if (!objective.empty()) return !IsRegressionObjective(objective);
  switch (target.type()) {
    case data::ColumnType::kString:
    case data::ColumnType::kBool:
      return true;
    case data::ColumnType::kFloat64:
      return false;
    case data::ColumnType::kInt64: {
      std::set<int64_t> distinct;
      for (size_t r = 0; r < target.size() && distinct.size() <= kMaxInferredClasses; ++r) {
        if (!target.is_null(r)) distinct.insert(target.int_at(r));
      }
      return distinct.size() <= kMaxInferredClasses;
    }
    case data::ColumnType::kTimestamp:
      break;
  }
  return absl::InvalidArgumentError(
      fmt::format("target column '{}' is a timestamp; xgboost predicts numbers or classes: "
                  "derive a numeric target first",
                  target.name()));
}

// ---- The model -------------------------------------------------------------------------------

struct ModelInfo {
  Task task = Task::kRegression;
  std::vector<std::string> features;
  std::string target;
  std::vector<std::string> classes;
  json hyperparameters = json::object();
  int rounds = 0;
};

class XgboostModel final : public Model {
 public:
  XgboostModel(BoosterPtr booster, ModelInfo info)
      : booster_(std::move(booster)), info_(std::move(info)) {}

  // Configures the booster (XGBoost does it lazily, on first use) and computes the importances,
  // so that everything after is a read.
  absl::Status Init() {
    FERRY_ASSIGN_OR_RETURN(Predictions warm,
                           PredictMatrix(std::vector<float>(features().size(), NAN), 1));
    (void)warm;
    FERRY_ASSIGN_OR_RETURN(importance_, Importance());
    return absl::OkStatus();
  }

  std::string type() const override { return "xgboost"; }
  Task task() const override { return info_.task; }
  const std::vector<std::string>& features() const override { return info_.features; }

  absl::StatusOr<Predictions> Predict(const data::Table& table) const override {
    FERRY_ASSIGN_OR_RETURN(std::vector<float> x,
                           FloatFeatures(table, info_.features, /*threads=*/0));
    return PredictMatrix(x, table.num_rows());
  }

  absl::Status Save(const std::string& dir) const override {
    bst_ulong len = 0;
    const char* buf = nullptr;
    FERRY_RETURN_IF_ERROR(
        Check(XGBoosterSaveModelToBuffer(booster_.get(), R"({"format":"json"})", &len, &buf),
              "serialising the booster"));
    // The booster first, model.json last: a folder with a model.json is complete.
    FERRY_RETURN_IF_ERROR(
        WriteFileAtomic(fmt::format("{}/{}", dir, kBoosterFile), std::string_view(buf, len)));
    json meta = {{"type", "xgboost"},          {"task", TaskName(info_.task)},
                 {"features", info_.features}, {"target", info_.target},
                 {"classes", info_.classes},   {"hyperparameters", info_.hyperparameters},
                 {"rounds", info_.rounds},     {"xgboost_version", LibraryVersion()}};
    return WriteFileAtomic(fmt::format("{}/{}", dir, kModelFile), meta.dump(2) + "\n");
  }

  json Describe() const override {
    return {{"kind", "importance"},
            {"importance_type", "total_gain"},
            {"values", importance_},
            {"rounds", info_.rounds}};
  }

 private:
  absl::StatusOr<Predictions> PredictMatrix(const std::vector<float>& x, size_t rows) const {
    Predictions p{.task = info_.task, .rows = rows, .classes = info_.classes};
    if (rows == 0) return p;
    const size_t width = info_.features.size();
    // In-place prediction straight from `x` (as Python's xgboost predicts from a numpy array):
    // no DMatrix copy of the rows. The output buffer is the calling thread's own.
    const std::string values = DenseInterface(x.data(), rows, width);
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* out = nullptr;
    FERRY_RETURN_IF_ERROR(
        Check(XGBoosterPredictFromDense(booster_.get(), values.c_str(),
                                        R"({"type":0,"training":false,"iteration_begin":0,)"
                                        R"("iteration_end":0,"strict_shape":true,)"
                                        R"("missing":NaN,"cache_id":0})",
                                        /*m=*/nullptr, &shape, &dim, &out),
              "predicting"));
    // strict_shape: (rows, outputs) for every objective.
    const size_t outputs = dim == 2 ? shape[1] : 0;
    if (dim != 2 || shape[0] != rows) {
      return absl::InternalError(
          fmt::format("xgboost returned predictions of {} dimension(s) for {} rows", dim, rows));
    }
    const size_t k = info_.classes.size();
    if (info_.task == Task::kBinary && outputs == 1) {
      p.values.resize(rows * 2);
      for (size_t r = 0; r < rows; ++r) {
        p.values[2 * r] = 1.0 - static_cast<double>(out[r]);
        p.values[2 * r + 1] = out[r];
      }
      return p;
    }
    if (outputs != (k == 0 ? 1 : k)) {
      return absl::InternalError(fmt::format(
          "xgboost returned {} output(s) per row for a model with {} class(es)", outputs, k));
    }
    p.values.assign(out, out + rows * outputs);
    return p;
  }

  absl::StatusOr<json> Importance() const {
    json config = {{"importance_type", "total_gain"}, {"feature_names", info_.features}};
    bst_ulong n = 0, dim = 0;
    const char** names = nullptr;
    const bst_ulong* shape = nullptr;
    const float* scores = nullptr;
    FERRY_RETURN_IF_ERROR(Check(XGBoosterFeatureScore(booster_.get(), config.dump().c_str(), &n,
                                                      &names, &dim, &shape, &scores),
                                "computing feature importance"));
    std::map<std::string, double> gain;
    double total = 0;
    for (bst_ulong i = 0; i < n; ++i) {
      gain[names[i]] += scores[i];
      total += scores[i];
    }
    json values = json::object();
    for (const std::string& f : info_.features) {
      auto it = gain.find(f);
      values[f] = it == gain.end() || total <= 0 ? 0.0 : it->second / total;
    }
    return values;
  }

  BoosterPtr booster_;
  ModelInfo info_;
  json importance_ = json::object();
};

// ---- The type --------------------------------------------------------------------------------

class XgboostType final : public ModelType {
 public:
  std::string name() const override { return "xgboost"; }

  absl::StatusOr<std::unique_ptr<Model>> Fit(const data::Table& train,
                                             const FitOptions& opts) const override {
    FERRY_ASSIGN_OR_RETURN(Hyper hyper, ValidateHyperparameters(opts.hyperparameters));
    const data::Column* target = train.Find(opts.target);
    if (target == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("xgboost: the target column '{}' is not in the table (columns: {})",
                      opts.target, JoinNames(train.ColumnNames())));
    }
    if (train.num_rows() == 0) {
      return absl::InvalidArgumentError("xgboost: the training table has no rows");
    }
    ModelInfo info{.features = FeatureNames(train, opts.target),
                   .target = opts.target,
                   .hyperparameters = hyper.resolved,
                   .rounds = hyper.rounds};
    if (info.features.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("xgboost: the training table has no feature columns besides the target '{}'",
                      opts.target));
    }
    FERRY_ASSIGN_OR_RETURN(bool classification, IsClassification(*target, hyper.objective));

    std::vector<float> labels(train.num_rows());
    std::string objective = hyper.objective;
    std::vector<std::pair<std::string, std::string>> params;
    if (classification) {
      FERRY_ASSIGN_OR_RETURN(Labels l, ToLabels(train, opts.target));
      const size_t k = l.classes.size();
      if (k < 2) {
        return absl::InvalidArgumentError(fmt::format(
            "xgboost: the target '{}' has a single class ('{}'); classification needs at least "
            "two (or set objective: reg:squarederror for regression)",
            opts.target, k == 1 ? l.classes[0] : ""));
      }
      if (objective == "binary:logistic" && k > 2) {
        return absl::InvalidArgumentError(
            fmt::format("xgboost: objective 'binary:logistic' needs a target with 2 classes; "
                        "'{}' has {}: use 'multi:softprob' or leave objective unset",
                        opts.target, k));
      }
      if (objective.empty()) objective = k == 2 ? "binary:logistic" : "multi:softprob";
      if (objective == "multi:softprob") params.emplace_back("num_class", fmt::format("{}", k));
      info.task = k == 2 ? Task::kBinary : Task::kMulticlass;
      info.classes = std::move(l.classes);
      for (size_t r = 0; r < labels.size(); ++r) labels[r] = static_cast<float>(l.index[r]);
    } else {
      if (!data::IsNumeric(target->type())) {
        return absl::InvalidArgumentError(fmt::format(
            "xgboost: objective '{}' is a regression but the target '{}' is a {} column", objective,
            opts.target, data::TypeName(target->type())));
      }
      if (objective.empty()) objective = "reg:squarederror";
      info.task = Task::kRegression;
      for (size_t r = 0; r < labels.size(); ++r) {
        if (target->is_null(r)) {
          return absl::InvalidArgumentError(fmt::format(
              "xgboost: the target '{}' is null in row {}; drop or fill those rows first",
              opts.target, r + 1));
        }
        labels[r] = static_cast<float>(target->AsDouble(r));
      }
    }
    params.emplace_back("objective", objective);
    info.hyperparameters["objective"] = objective;
    params.insert(params.end(), hyper.xgb.begin(), hyper.xgb.end());
    params.emplace_back("seed", fmt::format("{}", opts.seed));
    if (opts.threads > 0) params.emplace_back("nthread", fmt::format("{}", opts.threads));

    FERRY_ASSIGN_OR_RETURN(std::vector<float> x, FloatFeatures(train, info.features, opts.threads));
    FERRY_ASSIGN_OR_RETURN(
        DMatrixPtr dtrain,
        TrainingMatrix(x, train.num_rows(), info.features.size(), hyper.resolved, opts.threads));
    x = {};  // XGBoost holds its own copy (or its bins)
    FERRY_RETURN_IF_ERROR(
        Check(XGDMatrixSetFloatInfo(dtrain.get(), "label", labels.data(), labels.size()),
              "setting the labels"));
    // Names travel in the saved booster, so Python's xgboost checks them when scoring.
    std::vector<const char*> names, types;
    for (const std::string& f : info.features) {
      names.push_back(f.c_str());
      types.push_back("float");
    }
    FERRY_RETURN_IF_ERROR(
        Check(XGDMatrixSetStrFeatureInfo(dtrain.get(), "feature_name", names.data(), names.size()),
              "setting the feature names"));
    FERRY_RETURN_IF_ERROR(
        Check(XGDMatrixSetStrFeatureInfo(dtrain.get(), "feature_type", types.data(), types.size()),
              "setting the feature types"));

    void* dmats[] = {dtrain.get()};
    void* raw = nullptr;
    FERRY_RETURN_IF_ERROR(Check(XGBoosterCreate(dmats, 1, &raw), "creating the booster"));
    BoosterPtr booster(raw);
    for (const auto& [k, v] : params) {
      FERRY_RETURN_IF_ERROR(Check(XGBoosterSetParam(booster.get(), k.c_str(), v.c_str()),
                                  fmt::format("hyperparameter '{}' = '{}'", k, v),
                                  absl::StatusCode::kInvalidArgument));
    }
    for (int i = 0; i < hyper.rounds; ++i) {
      // The first round configures the booster: XGBoost's own parameter checks fail there.
      FERRY_RETURN_IF_ERROR(
          Check(XGBoosterUpdateOneIter(booster.get(), i, dtrain.get()),
                fmt::format("training round {} of {}", i + 1, hyper.rounds),
                i == 0 ? absl::StatusCode::kInvalidArgument : absl::StatusCode::kInternal));
    }
    auto model = std::make_unique<XgboostModel>(std::move(booster), std::move(info));
    FERRY_RETURN_IF_ERROR(model->Init());
    return model;
  }

  absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir) const override {
    const std::string meta_path = fmt::format("{}/{}", dir, kModelFile);
    FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(meta_path));
    ModelInfo info;
    try {
      json meta = json::parse(text);
      if (meta.value("type", "") != "xgboost") {
        return absl::InvalidArgumentError(
            fmt::format("{}: the model type is '{}', not 'xgboost'", meta_path,
                        meta.contains("type") ? meta["type"].dump() : "(missing)"));
      }
      std::string task = meta.at("task").get<std::string>();
      std::optional<Task> parsed = ParseTaskName(task);
      if (!parsed) {
        return absl::InvalidArgumentError(
            fmt::format("{}: unknown task '{}' (binary, multiclass, regression)", meta_path, task));
      }
      info.task = *parsed;
      info.features = meta.at("features").get<std::vector<std::string>>();
      info.target = meta.at("target").get<std::string>();
      info.classes = meta.at("classes").get<std::vector<std::string>>();
      info.hyperparameters = meta.at("hyperparameters");
      info.rounds = meta.at("rounds").get<int>();
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(
          fmt::format("{}: not a valid xgboost model description: {}", meta_path, e.what()));
    }
    const size_t expected_classes = info.task == Task::kRegression ? 0
                                    : info.task == Task::kBinary
                                        ? 2
                                        : std::max<size_t>(3, info.classes.size());
    if (info.classes.size() != expected_classes || info.features.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: a {} model with {} class(es) and {} feature(s) is inconsistent",
                      meta_path, TaskName(info.task), info.classes.size(), info.features.size()));
    }
    const std::string booster_path = fmt::format("{}/{}", dir, kBoosterFile);
    FERRY_ASSIGN_OR_RETURN(std::string blob, ReadFile(booster_path));
    void* raw = nullptr;
    FERRY_RETURN_IF_ERROR(Check(XGBoosterCreate(nullptr, 0, &raw), "creating the booster"));
    BoosterPtr booster(raw);
    FERRY_RETURN_IF_ERROR(
        Check(XGBoosterLoadModelFromBuffer(booster.get(), blob.data(), blob.size()),
              fmt::format("loading {}", booster_path), absl::StatusCode::kInvalidArgument));
    bst_ulong num_features = 0;
    FERRY_RETURN_IF_ERROR(
        Check(XGBoosterGetNumFeature(booster.get(), &num_features), "reading the booster"));
    if (num_features != info.features.size()) {
      return absl::InvalidArgumentError(
          fmt::format("{} has {} features but {} lists {}; the two files do not belong together",
                      booster_path, num_features, meta_path, info.features.size()));
    }
    auto model = std::make_unique<XgboostModel>(std::move(booster), std::move(info));
    FERRY_RETURN_IF_ERROR(model->Init());
    return model;
  }
};

}  // namespace

std::unique_ptr<ModelType> MakeXgboost() { return std::make_unique<XgboostType>(); }

}  // namespace ferry::model::internal
