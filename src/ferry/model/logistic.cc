// logistic_regression: L2-regularised logistic regression, the objective of scikit-learn's
// LogisticRegression(solver="lbfgs", penalty="l2"):
//     minimise  C * sum_i weight_i * logloss_i + 0.5 * ||W||^2      (the intercept not penalised)
// binary targets with one coefficient row (sigmoid of the last class's log-odds), three or more
// classes with a row per class (multinomial softmax, scikit-learn's default for lbfgs; the
// intercepts, unique only up to a common shift, are centred to sum to 0).
//
// Hyperparameters:
//   C              number > 0, default 1.0       inverse regularisation strength
//   max_iter       integer >= 1, default 100     L-BFGS iterations at most; reaching it is not an
//                                                error: model.json says "converged": false
//   tol            number > 0, default 1e-4      stop when every component of the gradient of
//                                                the objective divided by C * rows is at most
//                                                tol: a scale that does not grow with the data.
//                                                (scikit-learn 1.2 applies tol to the unscaled
//                                                objective and also stops when f improves by
//                                                less than 2.2e-9 relative, so the two stop at
//                                                different points near the same optimum.) The
//                                                fit also stops, converged, when f no longer
//                                                decreases in double precision.
//   fit_intercept  bool, default true
//   class_weight   null (default) | "balanced"   "balanced" weighs each row by
//                                                rows / (classes * rows of its class)
//
// The optimiser is L-BFGS (10 pairs of history, a strong-Wolfe line search), written here:
// Eigen has no optimiser, and Debian's liblinear penalises the intercept, so it would not reach
// scikit-learn's optimum. The data are read column by column in row blocks, straight from the
// table's float64 columns (no copy). The loss and gradient are summed over row blocks on several
// threads in an order that does not depend on the thread count, so a fit gives the same bits
// anywhere.

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>

#include "ferry/common/status.h"
#include "ferry/common/suggest.h"
#include "ferry/model/internal/linear_model.h"
#include "ferry/model/internal/types.h"

namespace ferry::model::internal {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Eigen::Index;
using Eigen::VectorXd;

constexpr std::string_view kLogistic = "logistic_regression";
// Below this many values a fit uses one thread: starting threads would cost more than the sums.
constexpr size_t kParallelValues = 200000;
constexpr int kHistory = 10;

// log(1 + exp(z)) and the sigmoid of z, without overflow, from one exp.
struct LogisticTerms {
  double log1pexp, sigmoid;
};
LogisticTerms Logistic(double z) {
  double e = std::exp(-std::fabs(z));
  return {.log1pexp = std::max(z, 0.0) + std::log1p(e),
          .sigmoid = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e)};
}

// The objective divided by the number of rows, and its gradient, over parameters laid out as a
// k x p row-major matrix: per row the feature weights, then the intercept when fitted.
class Objective {
 public:
  Objective(const FeatureColumns& x, const std::vector<int>& label, std::vector<double> weight,
            size_t k, bool fit_intercept, double c, int threads)
      : x_(x),
        label_(label),
        weight_(std::move(weight)),
        n_(x.rows),
        d_(x.columns.size()),
        k_(k),
        p_(d_ + (fit_intercept ? 1 : 0)),
        c_(c),
        threads_(threads),
        blocks_(NumRowBlocks(n_, k_ * p_ + 1)) {}

  size_t size() const { return k_ * p_; }

  double Eval(const VectorXd& theta, VectorXd* grad) const {
    Eigen::Map<const RowMatrix> t(theta.data(), static_cast<Index>(k_), static_cast<Index>(p_));
    const auto w = t.leftCols(static_cast<Index>(d_));
    const bool intercept = p_ > d_;
    std::vector<double> loss(blocks_, 0.0);
    std::vector<RowMatrix> part(blocks_);
    ForEachRowBlock(n_, blocks_, threads_, [&](size_t b, size_t begin, size_t end) {
      // Column by column (axpy, then dot products): each feature is contiguous, and a block of
      // rows of every feature stays in cache between the two passes.
      const auto len = static_cast<Index>(end - begin);
      const auto k = static_cast<Index>(k_);
      auto column = [&](size_t j) {
        return Eigen::Map<const VectorXd>(x_.columns[j] + begin, len);
      };
      Eigen::MatrixXd z(len, k);  // the scores; then the residuals weight * (p - y)
      for (Index c = 0; c < k; ++c)
        z.col(c).setConstant(intercept ? t(c, static_cast<Index>(d_)) : 0.0);
      for (size_t j = 0; j < d_; ++j) {
        const auto xj = column(j);
        for (Index c = 0; c < k; ++c) z.col(c) += t(c, static_cast<Index>(j)) * xj;
      }
      double sum = 0;
      for (size_t i = begin; i < end; ++i) {
        const Index r = static_cast<Index>(i - begin);
        const double wt = weight_.empty() ? 1.0 : weight_[i];
        const int y = label_[i];
        if (k_ == 1) {
          double zi = z(r, 0);
          LogisticTerms l = Logistic(zi);
          sum += wt * (l.log1pexp - (y == 1 ? zi : 0.0));
          z(r, 0) = wt * (l.sigmoid - y);
        } else {
          double m = z.row(r).maxCoeff();
          double s = 0;
          for (Index c = 0; c < static_cast<Index>(k_); ++c) s += std::exp(z(r, c) - m);
          double lse = m + std::log(s);
          sum += wt * (lse - z(r, y));
          for (Index c = 0; c < static_cast<Index>(k_); ++c) {
            z(r, c) = wt * (std::exp(z(r, c) - lse) - (c == y ? 1.0 : 0.0));
          }
        }
      }
      loss[b] = sum;
      part[b].resize(static_cast<Index>(k_), static_cast<Index>(p_));
      for (size_t j = 0; j < d_; ++j) {
        const auto xj = column(j);
        for (Index c = 0; c < k; ++c) part[b](c, static_cast<Index>(j)) = xj.dot(z.col(c));
      }
      if (intercept) part[b].col(static_cast<Index>(d_)) = z.colwise().sum().transpose();
    });
    RowMatrix g = RowMatrix::Zero(static_cast<Index>(k_), static_cast<Index>(p_));
    double f = 0;
    for (size_t b = 0; b < blocks_; ++b) {
      f += loss[b];
      g += part[b];
    }
    // C * sum loss + 0.5 ||W||^2, divided by C n: the same optimum, at the scale of a mean loss.
    const double scale = 1.0 / static_cast<double>(n_);
    f = scale * (f + 0.5 / c_ * w.squaredNorm());
    g.leftCols(static_cast<Index>(d_)) += w / c_;
    g *= scale;
    *grad = Eigen::Map<const VectorXd>(g.data(), g.size());
    return f;
  }

 private:
  const FeatureColumns& x_;
  const std::vector<int>& label_;
  std::vector<double> weight_;  // empty: all 1
  size_t n_, d_, k_, p_;
  double c_;
  int threads_;
  size_t blocks_;
};

struct Point {
  double step = 0;
  double f = 0;
  double slope = 0;  // directional derivative along the search direction
  VectorXd x, g;
};

// A line search for the strong Wolfe conditions (Nocedal & Wright, algorithms 3.5 and 3.6, with
// safeguarded cubic interpolation). Returns false when no step decreases f enough.
bool LineSearch(const Objective& obj, const Point& start, const VectorXd& dir, double step,
                Point* out) {
  constexpr double kC1 = 1e-4, kC2 = 0.9;
  auto eval = [&](double a) {
    Point p{.step = a, .x = start.x + a * dir};
    p.f = obj.Eval(p.x, &p.g);
    p.slope = p.g.dot(dir);
    return p;
  };
  auto armijo = [&](const Point& p) { return p.f <= start.f + kC1 * p.step * start.slope; };
  auto curvature = [&](const Point& p) { return std::fabs(p.slope) <= -kC2 * start.slope; };

  auto zoom = [&](Point lo, Point hi) {
    for (int i = 0; i < 30; ++i) {
      double d1 = lo.slope + hi.slope - 3 * (lo.f - hi.f) / (lo.step - hi.step);
      double disc = d1 * d1 - lo.slope * hi.slope;
      double a = 0.5 * (lo.step + hi.step);
      if (disc >= 0) {
        double d2 = std::copysign(std::sqrt(disc), hi.step - lo.step);
        double cubic =
            hi.step - (hi.step - lo.step) * (hi.slope + d2 - d1) / (hi.slope - lo.slope + 2 * d2);
        double left = std::min(lo.step, hi.step), width = std::fabs(hi.step - lo.step);
        if (std::isfinite(cubic) && cubic > left + 0.1 * width && cubic < left + 0.9 * width) {
          a = cubic;
        }
      }
      Point p = eval(a);
      if (!armijo(p) || p.f >= lo.f) {
        hi = std::move(p);
      } else {
        if (curvature(p)) return p;
        if (p.slope * (hi.step - lo.step) >= 0) hi = std::move(lo);
        lo = std::move(p);
      }
      if (std::fabs(hi.step - lo.step) <= 1e-16 * std::max(1.0, lo.step)) break;
    }
    return lo;  // sufficient decrease at least, unless lo is still the start
  };

  Point prev = start;
  prev.step = 0;  // `start` holds the step that led to it
  for (int i = 0; i < 40; ++i) {
    Point p = eval(step);
    if (!std::isfinite(p.f) || !armijo(p) || (i > 0 && p.f >= prev.f)) {
      *out = zoom(std::move(prev), std::move(p));
      return out->step > 0 && out->f < start.f;
    }
    if (curvature(p)) {
      *out = std::move(p);
      return true;
    }
    if (p.slope >= 0) {
      *out = zoom(std::move(p), std::move(prev));
      return out->step > 0 && out->f < start.f;
    }
    prev = std::move(p);
    step *= 2;
  }
  *out = std::move(prev);
  return out->step > 0 && out->f < start.f;
}

struct Result {
  VectorXd theta;
  int iterations = 0;
  bool converged = false;
};

Result MinimizeLbfgs(const Objective& obj, int max_iter, double tol) {
  Point cur{.x = VectorXd::Zero(static_cast<Index>(obj.size()))};
  cur.f = obj.Eval(cur.x, &cur.g);
  std::deque<std::pair<VectorXd, VectorXd>> history;  // (s, y), oldest first
  Result r;
  while (true) {
    if (cur.g.lpNorm<Eigen::Infinity>() <= tol) {
      r.converged = true;
      break;
    }
    if (r.iterations >= max_iter) break;
    // Two-loop recursion: dir = -H g.
    VectorXd q = cur.g;
    std::vector<double> alpha(history.size());
    for (size_t i = history.size(); i-- > 0;) {
      const auto& [s, y] = history[i];
      alpha[i] = s.dot(q) / s.dot(y);
      q -= alpha[i] * y;
    }
    if (!history.empty()) {
      const auto& [s, y] = history.back();
      q *= s.dot(y) / y.dot(y);
    }
    for (size_t i = 0; i < history.size(); ++i) {
      const auto& [s, y] = history[i];
      q += (alpha[i] - y.dot(q) / s.dot(y)) * s;
    }
    VectorXd dir = -q;
    double step = 1.0;
    if (history.empty()) step = std::min(1.0, 1.0 / cur.g.norm());
    cur.slope = cur.g.dot(dir);
    if (!(cur.slope < 0)) {  // lost descent to rounding: restart from the gradient
      history.clear();
      dir = -cur.g;
      cur.slope = cur.g.dot(dir);
      step = std::min(1.0, 1.0 / cur.g.norm());
    }
    Point next;
    if (!LineSearch(obj, cur, dir, step, &next)) break;  // no decrease left at this precision
    ++r.iterations;
    VectorXd s = next.x - cur.x, y = next.g - cur.g;
    if (s.dot(y) > 1e-12 * y.squaredNorm()) {
      if (history.size() == kHistory) history.pop_front();
      history.emplace_back(std::move(s), std::move(y));
    }
    // No relative progress left in double precision: the optimum as far as it can be told.
    bool stalled = cur.f - next.f <= 4 * std::numeric_limits<double>::epsilon() *
                                         std::max({std::fabs(cur.f), std::fabs(next.f), 1.0});
    cur = std::move(next);
    if (stalled) {
      r.converged = true;
      break;
    }
  }
  r.theta = std::move(cur.x);
  return r;
}

class LogisticRegression final : public ModelType {
 public:
  std::string name() const override { return std::string(kLogistic); }

  absl::StatusOr<std::unique_ptr<Model>> Fit(const data::Table& train,
                                             const FitOptions& opts) const override {
    const nlohmann::json& hp = opts.hyperparameters;
    FERRY_RETURN_IF_ERROR(CheckHyperparameterKeys(
        kLogistic, hp, {"C", "max_iter", "tol", "fit_intercept", "class_weight"}));
    FERRY_ASSIGN_OR_RETURN(double c, GetNumber(kLogistic, hp, "C", 1.0, 0.0, false));
    FERRY_ASSIGN_OR_RETURN(int max_iter, GetInt(kLogistic, hp, "max_iter", 100, 1));
    FERRY_ASSIGN_OR_RETURN(double tol, GetNumber(kLogistic, hp, "tol", 1e-4, 0.0, false));
    FERRY_ASSIGN_OR_RETURN(bool fit_intercept, GetBool(kLogistic, hp, "fit_intercept", true));
    bool balanced = false;
    if (hp.is_object() && hp.contains("class_weight") && !hp["class_weight"].is_null()) {
      if (hp["class_weight"] != "balanced") {
        return absl::InvalidArgumentError(
            fmt::format("{}: hyperparameter 'class_weight' must be null or \"balanced\", got {}",
                        kLogistic, hp["class_weight"].dump()));
      }
      balanced = true;
    }

    if (train.Find(opts.target) == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("{}: no target column '{}' in the table (columns: {})", kLogistic,
                      opts.target, JoinNames(train.ColumnNames())));
    }
    if (train.num_rows() == 0) {
      return absl::InvalidArgumentError(fmt::format("{}: the training table is empty", kLogistic));
    }
    std::vector<std::string> names = FeatureNames(train, opts.target);
    if (names.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: the table has no feature columns besides the target '{}'", kLogistic, opts.target));
    }
    const size_t n = train.num_rows();
    const int threads = n * names.size() < kParallelValues ? 1 : opts.threads;
    FERRY_ASSIGN_OR_RETURN(const FeatureColumns x, ToFeatureColumns(train, names, threads));
    absl::StatusOr<Labels> labels = ToLabels(train, opts.target);
    if (!labels.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", kLogistic, labels.status().message()));
    }
    const size_t classes = labels->classes.size();
    if (classes < 2) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: target column '{}' has a single class ('{}'); a classifier needs at least two",
          kLogistic, opts.target, labels->classes.front()));
    }

    std::vector<double> weight;
    if (balanced) {
      std::vector<size_t> count(classes, 0);
      for (int y : labels->index) ++count[static_cast<size_t>(y)];
      std::vector<double> per_class(classes);
      for (size_t k = 0; k < classes; ++k) {
        per_class[k] =
            static_cast<double>(n) / (static_cast<double>(classes) * static_cast<double>(count[k]));
      }
      weight.resize(n);
      for (size_t i = 0; i < n; ++i) {
        weight[i] = per_class[static_cast<size_t>(labels->index[i])];
      }
    }

    const size_t k = classes == 2 ? 1 : classes;
    Objective obj(x, labels->index, std::move(weight), k, fit_intercept, c, threads);
    Result r = MinimizeLbfgs(obj, max_iter, tol);
    if (!r.theta.allFinite()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: the fit did not give finite coefficients; rescale the features (transform: "
          "standardize) or lower C",
          kLogistic));
    }

    const size_t d = names.size(), p = d + (fit_intercept ? 1 : 0);
    LinearParams out{
        .type = std::string(kLogistic),
        .task = classes == 2 ? Task::kBinary : Task::kMulticlass,
        .features = std::move(names),
        .target = opts.target,
        .classes = labels->classes,
        .hyperparameters = {{"C", c},
                            {"max_iter", max_iter},
                            {"tol", tol},
                            {"fit_intercept", fit_intercept},
                            {"class_weight", balanced ? nlohmann::json("balanced") : nullptr}},
        .iterations = r.iterations,
        .converged = r.converged};
    for (size_t row = 0; row < k; ++row) {
      const double* t = r.theta.data() + row * p;
      out.coefficients.emplace_back(t, t + d);
      out.intercept.push_back(fit_intercept ? t[d] : 0.0);
    }
    if (k > 1 && fit_intercept) {
      double mean = 0;
      for (double b : out.intercept) mean += b;
      mean /= static_cast<double>(k);
      for (double& b : out.intercept) b -= mean;
    }
    return std::make_unique<LinearModel>(std::move(out));
  }

  absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& dir) const override {
    return LoadLinearModel(dir, kLogistic);
  }
};

}  // namespace

std::unique_ptr<ModelType> MakeLogisticRegression() {
  return std::make_unique<LogisticRegression>();
}

}  // namespace ferry::model::internal
