#include "ferry/model/metrics.h"

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <utility>

#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry::model {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// sklearn 1.2's log_loss clipping (its documented default before eps="auto").
constexpr double kLogLossEps = 1e-15;
constexpr int kCalibrationBins = 10;

absl::Status CheckClassification(const std::vector<int>& y_true, const Predictions& p,
                                 double threshold) {
  if (p.task == Task::kRegression) {
    return absl::InvalidArgumentError(
        "Classify needs the predictions of a classification model, got a regression model's; "
        "use Regress for regression");
  }
  const size_t k = p.classes.size();
  if (k < 2 || (p.task == Task::kBinary && k != 2)) {
    return absl::InvalidArgumentError(
        fmt::format("{} predictions with {} classes: a binary model has 2 classes, a multiclass "
                    "model at least 2",
                    TaskName(p.task), k));
  }
  if (y_true.size() != p.rows) {
    return absl::InvalidArgumentError(
        fmt::format("y_true has {} rows but the predictions have {}: evaluate the predictions of "
                    "the same table the labels come from",
                    y_true.size(), p.rows));
  }
  if (p.values.size() != p.rows * k) {
    return absl::InvalidArgumentError(
        fmt::format("the predictions hold {} probabilities for {} rows x {} classes",
                    p.values.size(), p.rows, k));
  }
  if (p.rows == 0) {
    return absl::InvalidArgumentError("no rows to evaluate: the evaluation table is empty");
  }
  if (!std::isfinite(threshold)) {
    return absl::InvalidArgumentError(
        fmt::format("the classification threshold is {}; use a number, e.g. 0.5", threshold));
  }
  for (size_t i = 0; i < p.rows; ++i) {
    if (y_true[i] < 0 || static_cast<size_t>(y_true[i]) >= k) {
      return absl::InvalidArgumentError(
          fmt::format("y_true row {} (0-based) holds class index {}, outside [0, {}) of the "
                      "model's classes; the labels must be indexes into the model's classes",
                      i, y_true[i], k));
    }
  }
  for (size_t i = 0; i < p.values.size(); ++i) {
    const double v = p.values[i];
    if (!(v >= 0.0 && v <= 1.0)) {
      return absl::InvalidArgumentError(
          fmt::format("prediction row {} (0-based): the probability of class '{}' is {}, not a "
                      "number in [0, 1]",
                      i / k, p.classes[i % k], v));
    }
  }
  return absl::OkStatus();
}

struct RankCurves {
  double roc_auc = kNaN;
  double pr_auc = kNaN;
};

// ROC AUC and average precision of one positive class from the scores of its positive and
// negative rows (both are sorted in place). One pass over the rows in descending score order,
// one tie group at a time: a positive beats every negative below its group and half of the
// negatives in it (Mann-Whitney U, kept exact in integers as 2U), and each group is one
// precision-recall threshold. NaN for both when either side is empty.
RankCurves Curves(std::vector<double>& pos, std::vector<double>& neg) {
  RankCurves out;
  if (pos.empty() || neg.empty()) return out;
  std::sort(pos.begin(), pos.end(), std::greater<double>());
  std::sort(neg.begin(), neg.end(), std::greater<double>());
  const int64_t n_pos = static_cast<int64_t>(pos.size());
  const int64_t n_neg = static_cast<int64_t>(neg.size());
  int64_t i = 0, j = 0;  // rows of pos / neg already passed
  int64_t twice_u = 0;
  double ap = 0;
  while (i < n_pos) {  // once the positives are exhausted, recall no longer moves
    double v = pos[i];
    if (j < n_neg && neg[j] > v) v = neg[j];
    const int64_t i0 = i, j0 = j;
    while (i < n_pos && pos[i] == v) ++i;
    while (j < n_neg && neg[j] == v) ++j;
    const int64_t tp = i - i0, fp = j - j0;
    twice_u += tp * (2 * (n_neg - j) + fp);
    if (tp > 0) {
      ap += (static_cast<double>(tp) / n_pos) * (static_cast<double>(i) / (i + j));
    }
  }
  out.roc_auc = static_cast<double>(twice_u) / (2.0 * static_cast<double>(n_pos) * n_neg);
  out.pr_auc = ap;
  return out;
}

// One-vs-rest curves of class `c`: its probability column, split by whether the row is class c.
RankCurves ClassCurves(const std::vector<int>& y_true, const Predictions& p, size_t c) {
  std::vector<double> pos, neg;
  pos.reserve(p.rows);
  neg.reserve(p.rows);
  const size_t k = p.classes.size();
  for (size_t i = 0; i < p.rows; ++i) {
    const double s = p.values[i * k + c];
    (static_cast<size_t>(y_true[i]) == c ? pos : neg).push_back(s);
  }
  return Curves(pos, neg);
}

// The calibration bin of p1 as numpy.searchsorted(edges[1:-1], p1) finds it: the number of inner
// edges strictly below p1. Edges are i * 0.1 as numpy.linspace(0, 1, 11) computes them.
int CalibrationBinOf(double p1, const double* edges) {
  int b = std::clamp(static_cast<int>(p1 * kCalibrationBins), 0, kCalibrationBins - 1);
  while (b > 0 && edges[b] >= p1) --b;
  while (b < kCalibrationBins - 1 && edges[b + 1] < p1) ++b;
  return b;
}

nlohmann::json Num(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

Predictions TakeRows(const Predictions& p, const std::vector<size_t>& rows) {
  Predictions out;
  out.task = p.task;
  out.rows = rows.size();
  out.classes = p.classes;
  const size_t width = p.classes.empty() ? 1 : p.classes.size();
  out.values.reserve(rows.size() * width);
  for (size_t r : rows) {
    out.values.insert(out.values.end(), p.values.begin() + r * width,
                      p.values.begin() + (r + 1) * width);
  }
  return out;
}

struct Segment {
  std::string text;
  nlohmann::json value;
  std::vector<size_t> rows;
};

// The rows of each value of `column`, sorted by value, the null rows last.
absl::StatusOr<std::vector<Segment>> GroupBySegment(const data::Column& column, size_t rows) {
  if (column.type() != data::ColumnType::kString && column.type() != data::ColumnType::kInt64 &&
      column.type() != data::ColumnType::kBool) {
    return absl::InvalidArgumentError(
        fmt::format("segment column '{}' is {}; segments need a string, int64 or bool column "
                    "(bin a numeric column into a string column first)",
                    column.name(), data::TypeName(column.type())));
  }
  if (column.size() != rows) {
    return absl::InvalidArgumentError(
        fmt::format("segment column '{}' has {} rows but the predictions have {}: take it from "
                    "the evaluated table",
                    column.name(), column.size(), rows));
  }
  std::vector<Segment> out;
  Segment nulls{.text = "null", .value = nullptr};
  if (column.type() == data::ColumnType::kString) {
    const auto& dict = column.dictionary();
    std::vector<std::vector<size_t>> by_code(dict.size());
    for (size_t i = 0; i < rows; ++i) {
      if (column.is_null(i)) {
        nulls.rows.push_back(i);
      } else {
        by_code[column.code_at(i)].push_back(i);
      }
    }
    std::vector<size_t> order(dict.size());
    for (size_t c = 0; c < order.size(); ++c) order[c] = c;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return dict[a] < dict[b]; });
    for (size_t c : order) {
      if (by_code[c].empty()) continue;
      out.push_back({.text = dict[c], .value = dict[c], .rows = std::move(by_code[c])});
    }
  } else {
    const bool is_bool = column.type() == data::ColumnType::kBool;
    std::map<int64_t, std::vector<size_t>> by_value;
    for (size_t i = 0; i < rows; ++i) {
      if (column.is_null(i)) {
        nulls.rows.push_back(i);
      } else {
        by_value[column.int_at(i)].push_back(i);
      }
    }
    for (auto& [v, r] : by_value) {
      if (is_bool) {
        out.push_back({.text = v ? "true" : "false", .value = v != 0, .rows = std::move(r)});
      } else {
        out.push_back({.text = std::to_string(v), .value = v, .rows = std::move(r)});
      }
    }
  }
  if (!nulls.rows.empty()) out.push_back(std::move(nulls));
  return out;
}

template <typename Y, typename Compute>
absl::StatusOr<nlohmann::json> BySegment(const std::vector<Y>& y_true, const Predictions& p,
                                         const data::Column& column, const Compute& compute) {
  // "all" first: it validates every row, so a segment cannot fail on its own.
  FERRY_ASSIGN_OR_RETURN(nlohmann::json all, compute(y_true, p));
  FERRY_ASSIGN_OR_RETURN(std::vector<Segment> segments, GroupBySegment(column, p.rows));
  nlohmann::json out = {{"column", column.name()}, {"all", std::move(all)}};
  nlohmann::json list = nlohmann::json::array();
  for (Segment& s : segments) {
    std::vector<Y> y;
    y.reserve(s.rows.size());
    for (size_t r : s.rows) y.push_back(y_true[r]);
    FERRY_ASSIGN_OR_RETURN(nlohmann::json m, compute(y, TakeRows(p, s.rows)));
    list.push_back({{"segment", s.text}, {"value", s.value}, {"metrics", std::move(m)}});
  }
  out["segments"] = std::move(list);
  return out;
}

struct MetricName {
  std::string_view name;
  std::string_view key;  // in ToJson's output
};
constexpr MetricName kMetricNames[] = {
    {"accuracy", "accuracy"},
    {"auc", "roc_auc"},
    {"roc_auc", "roc_auc"},
    {"pr_auc", "pr_auc"},
    {"f1", "f1"},
    {"precision", "precision"},
    {"recall", "recall"},
    {"logloss", "log_loss"},
    {"log_loss", "log_loss"},
    {"rmse", "rmse"},
    {"mae", "mae"},
    {"r2", "r2"},
    {"mape", "mape"},
};

}  // namespace

absl::StatusOr<ClassificationMetrics> Classify(const std::vector<int>& y_true, const Predictions& p,
                                               double threshold) {
  FERRY_RETURN_IF_ERROR(CheckClassification(y_true, p, threshold));
  const size_t k = p.classes.size();
  const size_t n = p.rows;
  const bool binary = p.task == Task::kBinary;
  ClassificationMetrics m;
  m.task = p.task;
  m.classes = p.classes;
  m.threshold = threshold;
  m.rows = static_cast<int64_t>(n);
  m.confusion.assign(k, std::vector<int64_t>(k, 0));

  double loss = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t t = static_cast<size_t>(y_true[i]);
    const size_t pred = binary ? (p.Score(i) >= threshold ? 1 : 0) : p.ArgMax(i);
    ++m.confusion[t][pred];
    // Clip, then renormalize the row, as sklearn does before taking the log.
    const double* row = p.values.data() + i * k;
    double sum = 0;
    for (size_t c = 0; c < k; ++c) sum += std::clamp(row[c], kLogLossEps, 1 - kLogLossEps);
    loss -= std::log(std::clamp(row[t], kLogLossEps, 1 - kLogLossEps) / sum);
  }
  m.log_loss = loss / static_cast<double>(n);

  int64_t correct = 0;
  for (size_t c = 0; c < k; ++c) correct += m.confusion[c][c];
  m.accuracy = static_cast<double>(correct) / static_cast<double>(n);

  // Per-class precision / recall / F1 from the confusion matrix; 0 where the denominator is 0.
  auto prf = [&](size_t c, double* precision, double* recall, double* f1) {
    int64_t predicted = 0, actual = 0;
    for (size_t r = 0; r < k; ++r) predicted += m.confusion[r][c];
    for (size_t q = 0; q < k; ++q) actual += m.confusion[c][q];
    const double tp = static_cast<double>(m.confusion[c][c]);
    *precision = predicted > 0 ? tp / static_cast<double>(predicted) : 0.0;
    *recall = actual > 0 ? tp / static_cast<double>(actual) : 0.0;
    const double denom = *precision + *recall;
    *f1 = denom > 0 ? 2 * *precision * *recall / denom : 0.0;
    return predicted > 0 || actual > 0;
  };

  if (binary) {
    prf(1, &m.precision, &m.recall, &m.f1);
    RankCurves curves = ClassCurves(y_true, p, 1);
    m.roc_auc = curves.roc_auc;
    m.pr_auc = curves.pr_auc;

    double edges[kCalibrationBins + 1];
    for (int b = 0; b < kCalibrationBins; ++b) edges[b] = b * (1.0 / kCalibrationBins);
    edges[kCalibrationBins] = 1.0;
    std::vector<double> sum_p(kCalibrationBins, 0.0), sum_y(kCalibrationBins, 0.0);
    m.calibration.resize(kCalibrationBins);
    for (size_t i = 0; i < n; ++i) {
      const double p1 = p.Score(i);
      const int b = CalibrationBinOf(p1, edges);
      ++m.calibration[b].count;
      sum_p[b] += p1;
      sum_y[b] += y_true[i] == 1 ? 1.0 : 0.0;
    }
    for (int b = 0; b < kCalibrationBins; ++b) {
      CalibrationBin& bin = m.calibration[b];
      bin.lower = edges[b];
      bin.upper = edges[b + 1];
      const double count = static_cast<double>(bin.count);
      bin.mean_predicted = bin.count > 0 ? sum_p[b] / count : kNaN;
      bin.fraction_positive = bin.count > 0 ? sum_y[b] / count : kNaN;
    }
  } else {
    // Macro averages over the classes that occur in y_true or in the predictions, as sklearn's
    // unique_labels(y_true, y_pred); AUCs over every class (NaN when one is absent).
    double sp = 0, sr = 0, sf = 0, auc = 0, ap = 0;
    int present = 0;
    for (size_t c = 0; c < k; ++c) {
      double precision, recall, f1;
      if (prf(c, &precision, &recall, &f1)) {
        sp += precision;
        sr += recall;
        sf += f1;
        ++present;
      }
      RankCurves curves = ClassCurves(y_true, p, c);
      auc += curves.roc_auc;
      ap += curves.pr_auc;
    }
    m.precision = sp / present;
    m.recall = sr / present;
    m.f1 = sf / present;
    m.roc_auc = auc / static_cast<double>(k);
    m.pr_auc = ap / static_cast<double>(k);
  }
  return m;
}

absl::StatusOr<RegressionMetrics> Regress(const std::vector<double>& y_true, const Predictions& p) {
  if (p.task != Task::kRegression) {
    return absl::InvalidArgumentError(fmt::format(
        "Regress needs the predictions of a regression model, got a {} model's; use Classify",
        TaskName(p.task)));
  }
  if (y_true.size() != p.rows || p.values.size() != p.rows) {
    return absl::InvalidArgumentError(
        fmt::format("y_true has {} rows but the predictions have {} ({} values): evaluate the "
                    "predictions of the same table the labels come from",
                    y_true.size(), p.rows, p.values.size()));
  }
  const size_t n = p.rows;
  if (n == 0) {
    return absl::InvalidArgumentError("no rows to evaluate: the evaluation table is empty");
  }
  double sum_y = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(y_true[i]) || !std::isfinite(p.values[i])) {
      return absl::InvalidArgumentError(fmt::format(
          "row {} (0-based): the target is {} and the prediction {}; both must be finite numbers "
          "(drop or impute missing targets before evaluating)",
          i, y_true[i], p.values[i]));
    }
    sum_y += y_true[i];
  }
  const double mean_y = sum_y / static_cast<double>(n);
  double ss_res = 0, ss_tot = 0, abs_err = 0, ape = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = y_true[i] - p.values[i];
    ss_res += e * e;
    abs_err += std::abs(e);
    ape += std::abs(e) / std::max(std::abs(y_true[i]), DBL_EPSILON);
    const double d = y_true[i] - mean_y;
    ss_tot += d * d;
  }
  RegressionMetrics m;
  m.rows = static_cast<int64_t>(n);
  m.rmse = std::sqrt(ss_res / static_cast<double>(n));
  m.mae = abs_err / static_cast<double>(n);
  m.mape = ape / static_cast<double>(n);
  if (n < 2) {
    m.r2 = kNaN;
  } else if (ss_tot != 0) {
    m.r2 = 1 - ss_res / ss_tot;
  } else {
    m.r2 = ss_res == 0 ? 1.0 : 0.0;
  }
  return m;
}

nlohmann::json ToJson(const ClassificationMetrics& m) {
  nlohmann::json j = {
      {"task", TaskName(m.task)},      {"rows", m.rows},           {"accuracy", Num(m.accuracy)},
      {"precision", Num(m.precision)}, {"recall", Num(m.recall)},  {"f1", Num(m.f1)},
      {"roc_auc", Num(m.roc_auc)},     {"pr_auc", Num(m.pr_auc)},  {"log_loss", Num(m.log_loss)},
      {"classes", m.classes},          {"confusion", m.confusion},
  };
  if (m.task == Task::kBinary) {
    j["threshold"] = m.threshold;
    nlohmann::json bins = nlohmann::json::array();
    for (const CalibrationBin& b : m.calibration) {
      bins.push_back({{"lower", b.lower},
                      {"upper", b.upper},
                      {"count", b.count},
                      {"mean_predicted", Num(b.mean_predicted)},
                      {"fraction_positive", Num(b.fraction_positive)}});
    }
    j["calibration"] = std::move(bins);
  }
  return j;
}

nlohmann::json ToJson(const RegressionMetrics& m) {
  return {{"task", TaskName(Task::kRegression)},
          {"rows", m.rows},
          {"rmse", Num(m.rmse)},
          {"mae", Num(m.mae)},
          {"r2", Num(m.r2)},
          {"mape", Num(m.mape)}};
}

absl::StatusOr<nlohmann::json> MetricsBySegment(const std::vector<int>& y_true,
                                                const Predictions& p, const data::Column& segment,
                                                double threshold) {
  return BySegment(y_true, p, segment,
                   [threshold](const std::vector<int>& y,
                               const Predictions& q) -> absl::StatusOr<nlohmann::json> {
                     FERRY_ASSIGN_OR_RETURN(ClassificationMetrics m, Classify(y, q, threshold));
                     return ToJson(m);
                   });
}

absl::StatusOr<nlohmann::json> MetricsBySegment(const std::vector<double>& y_true,
                                                const Predictions& p, const data::Column& segment) {
  return BySegment(
      y_true, p, segment,
      [](const std::vector<double>& y, const Predictions& q) -> absl::StatusOr<nlohmann::json> {
        FERRY_ASSIGN_OR_RETURN(RegressionMetrics m, Regress(y, q));
        return ToJson(m);
      });
}

absl::StatusOr<double> MetricValue(const nlohmann::json& metrics, std::string_view name) {
  if (!metrics.is_object()) {
    return absl::InvalidArgumentError(
        "metrics must be a JSON object (the metrics.json of an evaluation)");
  }
  const nlohmann::json& m =
      metrics.contains("all") && metrics["all"].is_object() ? metrics["all"] : metrics;
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));

  std::string available;
  const MetricName* found = nullptr;
  for (const MetricName& n : kMetricNames) {
    if (n.name == lower) found = &n;
    if (m.contains(n.key)) {
      if (!available.empty()) available += ", ";
      available += n.name;
    }
  }
  if (available.empty()) available = "none (not a metrics object)";
  if (found == nullptr || !m.contains(found->key)) {
    return absl::NotFoundError(
        fmt::format("no metric '{}' in these{} metrics; the available names: {}", name,
                    m.contains("task") && m["task"].is_string() ? " " + m["task"].get<std::string>()
                                                                : std::string(),
                    available));
  }
  const nlohmann::json& v = m[found->key];
  if (v.is_null()) {
    return absl::FailedPreconditionError(fmt::format(
        "metric '{}' is undefined for this evaluation (e.g. an AUC when the labels hold a "
        "single class): evaluate on data with every class, or gate on another metric",
        name));
  }
  if (!v.is_number()) {
    return absl::InvalidArgumentError(
        fmt::format("metric '{}' is {}, not a number", name, v.type_name()));
  }
  return v.get<double>();
}

std::vector<std::string> MetricNames() {
  std::vector<std::string> out;
  for (const MetricName& n : kMetricNames) out.emplace_back(n.name);
  return out;
}

}  // namespace ferry::model
