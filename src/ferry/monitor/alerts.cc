#include "ferry/monitor/alerts.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "ferry/common/status.h"
#include "ferry/common/strings.h"
#include "fmt/format.h"

namespace ferry::monitor {
namespace {

std::string_view Unquote(std::string_view s) {
  s = TrimSpace(s);
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
    s = TrimSpace(s.substr(1, s.size() - 2));
  }
  return s;
}

std::string Accepted() {
  return fmt::format("metrics: {}; operators: > >= < <=", absl::StrJoin(AlertMetrics(), ", "));
}

// "op threshold" after the metric, e.g. "> 0.2".
absl::StatusOr<AlertRule> ParseCondition(std::string_view metric, std::string_view condition,
                                         std::string_view part) {
  metric = Unquote(metric);
  condition = Unquote(condition);
  const auto& metrics = AlertMetrics();
  if (std::find(metrics.begin(), metrics.end(), metric) == metrics.end()) {
    return absl::InvalidArgumentError(
        fmt::format("alert rule \"{}\": unknown metric \"{}\" ({})", part, metric, Accepted()));
  }
  AlertRule rule;
  rule.metric = std::string(metric);
  for (std::string_view op : {">=", "<=", ">", "<"}) {
    if (condition.starts_with(op)) {
      rule.op = std::string(op);
      condition = TrimSpace(condition.substr(op.size()));
      break;
    }
  }
  if (rule.op.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "alert rule \"{}\": expected an operator and a number after \"{}\", like \"{} > 0.2\" ({})",
        part, metric, metric, Accepted()));
  }
  std::string number(condition);
  char* end = nullptr;
  errno = 0;
  const double v = number.empty() ? 0 : std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || errno != 0 || !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        fmt::format("alert rule \"{}\": threshold \"{}\" is not a finite number (write e.g. \"{} "
                    "{} 0.2\")",
                    part, condition, metric, rule.op));
  }
  rule.threshold = v;
  rule.text = fmt::format("{} {} {}", rule.metric, rule.op, number);
  return rule;
}

}  // namespace

bool AlertRule::Crossed(double value) const {
  if (std::isnan(value)) return false;
  if (op == ">") return value > threshold;
  if (op == ">=") return value >= threshold;
  if (op == "<") return value < threshold;
  if (op == "<=") return value <= threshold;
  return false;
}

const std::vector<std::string>& AlertMetrics() {
  static const auto* m = new std::vector<std::string>{"psi",
                                                      "ks",
                                                      "ks_pvalue",
                                                      "wasserstein",
                                                      "js",
                                                      "chi2_pvalue",
                                                      "missing_rate",
                                                      "type_errors",
                                                      "unseen_categories",
                                                      "new_columns",
                                                      "missing_columns",
                                                      "stale_hours",
                                                      "rows",
                                                      "accuracy",
                                                      "auc",
                                                      "log_loss",
                                                      "rmse",
                                                      "mae",
                                                      "slope_per_day"};
  return *m;
}

std::vector<AlertRule> DefaultAlertRules() {
  return {{"psi", ">", 0.2, "psi > 0.2"}, {"missing_rate", ">", 0.05, "missing_rate > 0.05"}};
}

absl::StatusOr<std::vector<AlertRule>> ParseAlertRules(std::string_view text) {
  std::vector<AlertRule> rules;
  text = TrimSpace(text);
  if (text.empty()) return rules;
  // A map: "{psi: '> 0.2', missing_rate: '> 0.05'}" (YAML flow or JSON) or block lines
  // "psi: > 0.2". A list: "psi>0.2,missing_rate>0.05".
  if (text.front() == '{') {
    if (text.back() != '}') {
      return absl::InvalidArgumentError(
          fmt::format("alert rules \"{}\": a map opened with '{{' must end with '}}'", text));
    }
    text = TrimSpace(text.substr(1, text.size() - 2));
  }
  for (std::string_view part : SplitAny(text, ",\n")) {
    part = TrimSpace(part);
    if (part.empty()) continue;
    size_t colon = part.find(':');
    size_t op = part.find_first_of("<>");
    std::string_view metric, condition;
    if (colon != std::string_view::npos && (op == std::string_view::npos || colon < op)) {
      metric = part.substr(0, colon);
      condition = part.substr(colon + 1);
    } else if (op != std::string_view::npos) {
      metric = part.substr(0, op);
      condition = part.substr(op);
    } else {
      return absl::InvalidArgumentError(fmt::format(
          "alert rule \"{}\": expected \"metric op threshold\" (\"psi > 0.2\") or \"metric: op "
          "threshold\" ({})",
          part, Accepted()));
    }
    FERRY_ASSIGN_OR_RETURN(AlertRule rule, ParseCondition(metric, condition, part));
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace ferry::monitor
