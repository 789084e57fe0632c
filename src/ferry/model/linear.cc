// linear_regression: least squares with an optional ridge (L2) penalty, fitted exactly by the
// normal equations; task regression, numeric target (int64, float64 or bool).
//
// Hyperparameters:
//   alpha          number >= 0, default 0.0   L2 penalty on the coefficients (not the
//                                             intercept), as in scikit-learn's Ridge(alpha);
//                                             0 is ordinary least squares (LinearRegression)
//   fit_intercept  bool, default true         false: the model goes through the origin
//
// The fit centres the features and the target (when fitting an intercept), then solves
// (Xc'Xc + alpha I) w = Xc'yc by an LDLT factorisation; the intercept is mean(y) - mean(X) w.
// That is the (d+1)x(d+1) system with an unpenalised intercept, solved in its better-conditioned
// centred form. When the system is singular (alpha = 0 and collinear features, e.g. every column
// of a one-hot encoding plus an intercept) it falls back to the minimum-norm solution, as
// scikit-learn's LinearRegression does. Sums run over row blocks on several threads, in an order
// that does not depend on the thread count.
//
// Also here: LinearModel (internal/linear_model.h), shared with logistic_regression: model.json,
// Predict and Describe of every linear model, and the hyperparameter readers.

#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/common/suggest.h"
#include "ferry/model/internal/linear_model.h"
#include "ferry/model/internal/types.h"

namespace ferry::model::internal {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- Row blocks ----

namespace {
constexpr size_t kMinBlockRows = 4096;
constexpr size_t kMaxBlocks = 4096;
constexpr size_t kPartialBudget = size_t{8} << 20;  // doubles held by all blocks' partials
}  // namespace

size_t NumRowBlocks(size_t rows, size_t width) {
  size_t blocks = (rows + kMinBlockRows - 1) / kMinBlockRows;
  blocks = std::min({blocks, kMaxBlocks, kPartialBudget / std::max<size_t>(width, 1)});
  return std::max<size_t>(blocks, 1);
}

void ForEachRowBlock(size_t rows, size_t blocks, int threads,
                     const std::function<void(size_t, size_t, size_t)>& fn) {
  const size_t per_block = (rows + blocks - 1) / std::max<size_t>(blocks, 1);
  auto run = [&](size_t b) {
    size_t begin = std::min(rows, b * per_block);
    fn(b, begin, std::min(rows, begin + per_block));
  };
  size_t n_threads = threads > 0 ? static_cast<size_t>(threads)
                                 : std::max<unsigned>(1, std::thread::hardware_concurrency());
  n_threads = std::min(n_threads, blocks);
  if (n_threads <= 1) {
    for (size_t b = 0; b < blocks; ++b) run(b);
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t b = next++; b < blocks; b = next++) run(b);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < n_threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
}

// ---- Hyperparameters ----

absl::Status CheckHyperparameterKeys(std::string_view type, const nlohmann::json& hp,
                                     const std::vector<std::string>& known) {
  if (hp.is_null()) return absl::OkStatus();
  if (!hp.is_object()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: hyperparameters must be a mapping of name to value, got {}", type, hp.dump()));
  }
  for (const auto& [key, value] : hp.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: unknown hyperparameter '{}'{}", type, key, UnknownKeyHint(key, known)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<double> GetNumber(std::string_view type, const nlohmann::json& hp,
                                 const std::string& key, double fallback, double min,
                                 bool min_inclusive) {
  if (!hp.is_object() || !hp.contains(key) || hp[key].is_null()) return fallback;
  const nlohmann::json& v = hp[key];
  double x = v.is_number() ? v.get<double>() : std::nan("");
  if (!std::isfinite(x) || x < min || (!min_inclusive && x == min)) {
    return absl::InvalidArgumentError(
        fmt::format("{}: hyperparameter '{}' must be a number {} {}, "
                    "got {}",
                    type, key, min_inclusive ? ">=" : ">", min, v.dump()));
  }
  return x;
}

absl::StatusOr<int> GetInt(std::string_view type, const nlohmann::json& hp, const std::string& key,
                           int fallback, int min) {
  if (!hp.is_object() || !hp.contains(key) || hp[key].is_null()) return fallback;
  const nlohmann::json& v = hp[key];
  bool integral = v.is_number_integer() ||
                  (v.is_number_float() && v.get<double>() == std::trunc(v.get<double>()));
  if (!integral || v.get<double>() < min || v.get<double>() > 1e9) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: hyperparameter '{}' must be an integer >= {}, got {}", type, key, min, v.dump()));
  }
  return static_cast<int>(v.get<double>());
}

absl::StatusOr<bool> GetBool(std::string_view type, const nlohmann::json& hp,
                             const std::string& key, bool fallback) {
  if (!hp.is_object() || !hp.contains(key) || hp[key].is_null()) return fallback;
  if (!hp[key].is_boolean()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: hyperparameter '{}' must be true or false, got {}", type, key, hp[key].dump()));
  }
  return hp[key].get<bool>();
}

// ---- LinearModel ----

absl::StatusOr<Predictions> LinearModel::Predict(const data::Table& table) const {
  // Column by column, without a row-major copy of the table (batch scoring reads millions of
  // rows); the same arithmetic for a model fitted or loaded, so both give the same bits.
  FERRY_ASSIGN_OR_RETURN(FeatureColumns fc, ToFeatureColumns(table, p_.features, /*threads=*/1));
  const auto n = static_cast<Eigen::Index>(fc.rows);
  const auto k = static_cast<Eigen::Index>(p_.coefficients.size());
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> z(n, k);
  for (Eigen::Index c = 0; c < k; ++c) z.col(c).setConstant(p_.intercept[c]);
  for (size_t j = 0; j < p_.features.size(); ++j) {
    Eigen::Map<const Eigen::VectorXd> xj(fc.columns[j], n);
    for (Eigen::Index c = 0; c < k; ++c) z.col(c) += p_.coefficients[c][j] * xj;
  }

  Predictions out{.task = p_.task, .rows = fc.rows, .classes = p_.classes};
  switch (p_.task) {
    case Task::kRegression:
      out.values.assign(z.data(), z.data() + z.size());
      break;
    case Task::kBinary:
      out.values.resize(2 * fc.rows);
      for (Eigen::Index i = 0; i < n; ++i) {
        double e = std::exp(-std::fabs(z(i, 0)));
        double p = z(i, 0) >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);  // sigmoid, no overflow
        out.values[2 * i] = 1.0 - p;
        out.values[2 * i + 1] = p;
      }
      break;
    case Task::kMulticlass:
      for (Eigen::Index i = 0; i < n; ++i) {
        double m = z.row(i).maxCoeff();
        double sum = 0;
        for (Eigen::Index c = 0; c < k; ++c) sum += (z(i, c) = std::exp(z(i, c) - m));
        for (Eigen::Index c = 0; c < k; ++c) z(i, c) /= sum;
      }
      out.values.assign(z.data(), z.data() + z.size());
      break;
  }
  return out;
}

absl::Status LinearModel::Save(const std::string& dir) const {
  nlohmann::json j = {
      {"type", p_.type},
      {"task", TaskName(p_.task)},
      {"features", p_.features},
      {"target", p_.target},
      {"classes", p_.classes},
      {"coefficients", p_.coefficients},
      {"intercept", p_.intercept},
      {"hyperparameters", p_.hyperparameters},
      {"iterations", p_.iterations},
      {"converged", p_.converged},
  };
  return WriteFileAtomic(dir + "/model.json", j.dump(1) + "\n");
}

nlohmann::json LinearModel::Describe() const {
  auto weights = [&](size_t row) {
    nlohmann::json v = nlohmann::json::object();
    for (size_t j = 0; j < p_.features.size(); ++j) v[p_.features[j]] = p_.coefficients[row][j];
    return v;
  };
  if (p_.task != Task::kMulticlass) {
    return {{"kind", "coefficients"}, {"values", weights(0)}, {"intercept", p_.intercept[0]}};
  }
  nlohmann::json values = nlohmann::json::object();
  nlohmann::json intercept = nlohmann::json::object();
  for (size_t c = 0; c < p_.classes.size(); ++c) {
    values[p_.classes[c]] = weights(c);
    intercept[p_.classes[c]] = p_.intercept[c];
  }
  return {{"kind", "coefficients"},
          {"classes", p_.classes},
          {"values", values},
          {"intercept", intercept}};
}

absl::StatusOr<std::unique_ptr<Model>> LoadLinearModel(const std::string& dir,
                                                       std::string_view type) {
  const std::string path = dir + "/model.json";
  FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}; it was not written by {} (re-save the model)", path, why, type));
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  LinearParams p;
  try {
    p.type = j.at("type").get<std::string>();
    if (p.type != type) return bad(fmt::format("its type is '{}'", p.type));
    std::string task = j.at("task").get<std::string>();
    std::optional<Task> parsed = ParseTaskName(task);
    if (!parsed) return bad(fmt::format("unknown task '{}'", task));
    p.task = *parsed;
    p.features = j.at("features").get<std::vector<std::string>>();
    p.target = j.at("target").get<std::string>();
    p.classes = j.at("classes").get<std::vector<std::string>>();
    p.coefficients = j.at("coefficients").get<std::vector<std::vector<double>>>();
    p.intercept = j.at("intercept").get<std::vector<double>>();
    p.hyperparameters = j.at("hyperparameters");
    p.iterations = j.at("iterations").get<int>();
    p.converged = j.at("converged").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  size_t rows = p.task == Task::kMulticlass ? p.classes.size() : 1;
  bool classes_ok = p.task == Task::kRegression ? p.classes.empty()
                    : p.task == Task::kBinary   ? p.classes.size() == 2
                                                : p.classes.size() > 2;
  if (!classes_ok) return bad("its classes do not fit its task");
  if (p.coefficients.size() != rows || p.intercept.size() != rows) {
    return bad(fmt::format("expected {} row(s) of coefficients and intercepts", rows));
  }
  for (const auto& row : p.coefficients) {
    if (row.size() != p.features.size()) return bad("a row of coefficients has the wrong length");
  }
  return std::make_unique<LinearModel>(std::move(p));
}

// ---- linear_regression ----

namespace {

constexpr std::string_view kLinear = "linear_regression";

// Below this many values a fit uses one thread: starting threads would cost more than the sums.
constexpr size_t kParallelValues = 200000;

class LinearRegression final : public ModelType {
 public:
  std::string name() const override { return std::string(kLinear); }

  absl::StatusOr<std::unique_ptr<Model>> Fit(const data::Table& train,
                                             const FitOptions& opts) const override {
    const nlohmann::json& hp = opts.hyperparameters;
    FERRY_RETURN_IF_ERROR(CheckHyperparameterKeys(kLinear, hp, {"alpha", "fit_intercept"}));
    FERRY_ASSIGN_OR_RETURN(double alpha, GetNumber(kLinear, hp, "alpha", 0.0, 0.0, true));
    FERRY_ASSIGN_OR_RETURN(bool fit_intercept, GetBool(kLinear, hp, "fit_intercept", true));

    const data::Column* target = train.Find(opts.target);
    if (target == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("{}: no target column '{}' in the table (columns: {})", kLinear, opts.target,
                      JoinNames(train.ColumnNames())));
    }
    if (target->type() != data::ColumnType::kInt64 &&
        target->type() != data::ColumnType::kFloat64 && target->type() != data::ColumnType::kBool) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: target column '{}' is {}; a regression target must be a number (for classes, use "
          "logistic_regression or xgboost)",
          kLinear, opts.target, data::TypeName(target->type())));
    }
    if (train.num_rows() == 0) {
      return absl::InvalidArgumentError(fmt::format("{}: the training table is empty", kLinear));
    }
    std::vector<std::string> names = FeatureNames(train, opts.target);
    if (names.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: the table has no feature columns besides the target '{}'", kLinear, opts.target));
    }
    const size_t n = train.num_rows();
    const size_t d = names.size();
    const int threads = n * d < kParallelValues ? 1 : opts.threads;
    FERRY_ASSIGN_OR_RETURN(const FeatureColumns x, ToFeatureColumns(train, names, threads));
    Eigen::VectorXd y(static_cast<Eigen::Index>(n));
    for (size_t i = 0; i < n; ++i) {
      if (target->is_null(i) || !std::isfinite(target->AsDouble(i))) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: target column '{}' has a null or non-finite value at row {}; drop or impute "
            "those rows first (transform: filter / impute)",
            kLinear, opts.target, i + 1));
      }
      y[static_cast<Eigen::Index>(i)] = target->AsDouble(i);
    }

    const auto di = static_cast<Eigen::Index>(d);
    // A block of rows as a small column-major matrix (it stays in cache while it is used).
    auto rows_of = [&](size_t begin, size_t end) {
      const auto len = static_cast<Eigen::Index>(end - begin);
      Eigen::MatrixXd block(len, di);
      for (Eigen::Index j = 0; j < di; ++j) {
        block.col(j) = Eigen::Map<const Eigen::VectorXd>(x.columns[j] + begin, len);
      }
      return block;
    };
    auto ys_of = [&](size_t begin, size_t end) {
      return y.segment(static_cast<Eigen::Index>(begin), static_cast<Eigen::Index>(end - begin));
    };

    // Means (pass 1), then the centred Gram matrix and right-hand side (pass 2).
    Eigen::RowVectorXd x_mean = Eigen::RowVectorXd::Zero(di);
    double y_mean = 0;
    if (fit_intercept) {
      const size_t blocks = NumRowBlocks(n, d + 1);
      std::vector<Eigen::RowVectorXd> sx(blocks);
      std::vector<double> sy(blocks);
      ForEachRowBlock(n, blocks, threads, [&](size_t b, size_t begin, size_t end) {
        sx[b] = rows_of(begin, end).colwise().sum();
        sy[b] = ys_of(begin, end).sum();
      });
      for (size_t b = 0; b < blocks; ++b) {
        x_mean += sx[b];
        y_mean += sy[b];
      }
      x_mean /= static_cast<double>(n);
      y_mean /= static_cast<double>(n);
    }
    const size_t blocks = NumRowBlocks(n, d * (d + 1));
    std::vector<Eigen::MatrixXd> gram(blocks);
    std::vector<Eigen::VectorXd> rhs(blocks);
    ForEachRowBlock(n, blocks, threads, [&](size_t b, size_t begin, size_t end) {
      Eigen::MatrixXd xc = rows_of(begin, end).rowwise() - x_mean;
      Eigen::VectorXd yc = ys_of(begin, end).array() - y_mean;
      gram[b] = Eigen::MatrixXd::Zero(di, di);
      gram[b].selfadjointView<Eigen::Lower>().rankUpdate(xc.transpose());
      rhs[b] = xc.transpose() * yc;
    });
    Eigen::MatrixXd a = Eigen::MatrixXd::Zero(di, di);
    Eigen::VectorXd r = Eigen::VectorXd::Zero(di);
    for (size_t b = 0; b < blocks; ++b) {
      a += gram[b];
      r += rhs[b];
    }
    a = a.selfadjointView<Eigen::Lower>();
    a.diagonal().array() += alpha;

    // Solve the system scaled to a unit diagonal (s = 1/sqrt(diag)): the same solution, but
    // features in very different units no longer look singular. A constant feature (a zero on
    // the diagonal) keeps s = 1 and gets the weight 0 from the fallback below.
    Eigen::VectorXd s = a.diagonal().cwiseSqrt().cwiseInverse();
    for (double& v : s) {
      if (!std::isfinite(v)) v = 1.0;
    }
    const Eigen::MatrixXd scaled = s.asDiagonal() * a * s.asDiagonal();
    const Eigen::VectorXd scaled_r = s.cwiseProduct(r);
    Eigen::VectorXd w;
    Eigen::LDLT<Eigen::MatrixXd> ldlt(scaled);
    // rcond is an estimate of 1/cond; below ~1e-12 the LDLT solution is dominated by rounding.
    if (ldlt.info() == Eigen::Success && ldlt.isPositive() && ldlt.rcond() > 1e-12) {
      w = s.cwiseProduct(ldlt.solve(scaled_r));
    } else {
      Eigen::CompleteOrthogonalDecomposition<Eigen::MatrixXd> cod(scaled);
      cod.setThreshold(1e-10);
      w = s.cwiseProduct(cod.solve(scaled_r));
    }
    if (!w.allFinite()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: the fit did not give finite coefficients; rescale the features (transform: "
          "standardize) or set alpha > 0",
          kLinear));
    }

    LinearParams p{.type = std::string(kLinear),
                   .task = Task::kRegression,
                   .features = names,
                   .target = opts.target,
                   .hyperparameters = {{"alpha", alpha}, {"fit_intercept", fit_intercept}},
                   .iterations = 1,
                   .converged = true};
    p.coefficients.emplace_back(w.data(), w.data() + w.size());
    p.intercept.push_back(fit_intercept ? y_mean - x_mean.dot(w) : 0.0);
    return std::make_unique<LinearModel>(std::move(p));
  }

  absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir) const override {
    return LoadLinearModel(dir, kLinear);
  }
};

}  // namespace

std::unique_ptr<ModelType> MakeLinearRegression() { return std::make_unique<LinearRegression>(); }

}  // namespace ferry::model::internal
