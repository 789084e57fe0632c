#include "ferry/model/gates.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "ferry/model/metrics.h"
#include "fmt/format.h"

namespace ferry::model {
namespace {

using json = nlohmann::json;

constexpr const char* kForms =
    "write a comparison such as \">= 0.75\", \"<= champion * 1.02\" or \">= champion - 0.01\"";

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::optional<double> ParseNumber(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t used = 0;
  try {
    double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// Parses "<op> <rhs>" into gate; returns an error message or "".
std::string ParseComparison(const std::string& text, bool allow_champion, Gate& gate) {
  std::string s = Trim(text);
  for (const char* op : {">=", "<=", "==", ">", "<"}) {
    if (s.rfind(op, 0) == 0) {
      gate.op = op;
      s = Trim(s.substr(std::string_view(op).size()));
      break;
    }
  }
  if (gate.op.empty()) {
    return fmt::format("'{}' has no comparison operator (>=, <=, >, <, ==); {}", text, kForms);
  }
  if (s.rfind("champion", 0) == 0) {
    if (!allow_champion) {
      return fmt::format("'{}': this gate compares with a number, not the champion", text);
    }
    gate.vs_champion = true;
    std::string rest = Trim(s.substr(8));
    if (rest.empty()) return "";
    gate.champion_op = rest[0];
    if (gate.champion_op != '*' && gate.champion_op != '+' && gate.champion_op != '-') {
      return fmt::format("'{}': after 'champion' write '* k', '+ k' or '- k'", text);
    }
    std::optional<double> k = ParseNumber(Trim(rest.substr(1)));
    if (!k) return fmt::format("'{}': '{}' is not a number", text, Trim(rest.substr(1)));
    gate.number = *k;
    return "";
  }
  std::optional<double> v = ParseNumber(s);
  if (!v) return fmt::format("'{}': '{}' is not a number; {}", text, s, kForms);
  gate.number = *v;
  return "";
}

// reproducible / serving_parity: true | false | {tolerance: x}; returns an error message or "".
std::string ParseTolerance(const json& v, Gate& gate) {
  if (v.is_boolean()) {
    gate.enabled = v.get<bool>();
    gate.text = v.dump();
    return "";
  }
  if (v.is_object() && v.size() == 1 && v.contains("tolerance") && v["tolerance"].is_number() &&
      v["tolerance"].get<double>() >= 0) {
    gate.tolerance = v["tolerance"].get<double>();
    gate.text = fmt::format("tolerance {}", gate.tolerance);
    return "";
  }
  return fmt::format("expected true, false or {{tolerance: <number >= 0>}}, got {}", v.dump());
}

bool Holds(double value, const std::string& op, double threshold) {
  if (op == ">=") return value >= threshold;
  if (op == "<=") return value <= threshold;
  if (op == ">") return value > threshold;
  if (op == "<") return value < threshold;
  return value == threshold;
}

std::map<std::string, double> Flatten(const json& values) {
  std::map<std::string, double> out;
  for (auto it = values.begin(); it != values.end(); ++it) {
    if (it->is_number()) {
      out[it.key()] = it->get<double>();
    } else if (it->is_object()) {
      for (auto [k, v] : Flatten(*it)) out[it.key() + "/" + k] = v;
    }
  }
  return out;
}

std::string Num(double v) { return fmt::format("{:.6g}", v); }

}  // namespace

absl::StatusOr<std::vector<Gate>> ParseGates(const json& gates) {
  if (gates.is_null()) return std::vector<Gate>{};
  if (!gates.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("gates must be a map of gate name to condition (e.g. {{auc: \">= 0.75\"}}), "
                    "got {}",
                    gates.dump()));
  }
  const std::vector<std::string> metrics = MetricNames();
  std::vector<Gate> out;
  std::vector<std::string> errors;
  for (auto it = gates.begin(); it != gates.end(); ++it) {
    Gate g;
    g.name = it.key();
    std::string error;
    if (g.name == "reproducible" || g.name == "serving_parity") {
      g.kind = g.name == "reproducible" ? Gate::Kind::kReproducible : Gate::Kind::kServingParity;
      error = ParseTolerance(*it, g);
    } else {
      bool weight = g.name == "weight_shift";
      g.kind = weight ? Gate::Kind::kWeightShift : Gate::Kind::kMetric;
      if (!weight && std::find(metrics.begin(), metrics.end(), g.name) == metrics.end()) {
        std::string names;
        for (const std::string& m : metrics) names += m + ", ";
        error = fmt::format(
            "unknown gate; gates are metric names ({}) or weight_shift, reproducible, "
            "serving_parity",
            names.substr(0, names.size() - 2));
      } else if (!it->is_string()) {
        error = fmt::format("expected a quoted comparison, got {}; {}", it->dump(), kForms);
      } else {
        g.text = it->get<std::string>();
        error = ParseComparison(g.text, !weight, g);
      }
    }
    if (!error.empty()) {
      errors.push_back(fmt::format("gates.{}: {}", g.name, error));
    } else {
      out.push_back(std::move(g));
    }
  }
  if (!errors.empty()) {
    std::string msg;
    for (const std::string& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    return absl::InvalidArgumentError(msg);
  }
  return out;
}

bool NeedsChampion(const std::vector<Gate>& gates) {
  return std::any_of(gates.begin(), gates.end(), [](const Gate& g) { return g.vs_champion; });
}

GateResult Decide(const Gate& gate, double value, std::optional<double> champion_value,
                  const std::string& detail) {
  GateResult r{.name = gate.name, .text = gate.text, .value = value, .detail = detail};
  double threshold = gate.number;
  if (gate.vs_champion) {
    if (!champion_value) {
      r.passed = true;
      if (r.detail.empty()) r.detail = "no champion yet: nothing to compare with";
      return r;
    }
    switch (gate.champion_op) {
      case '*':
        threshold = *champion_value * gate.number;
        break;
      case '+':
        threshold = *champion_value + gate.number;
        break;
      case '-':
        threshold = *champion_value - gate.number;
        break;
      default:
        threshold = *champion_value;
    }
  }
  r.threshold = threshold;
  r.passed = std::isfinite(value) && Holds(value, gate.op, threshold);
  return r;
}

GateResult DecideTolerance(const Gate& gate, double max_abs_diff, const std::string& detail) {
  return GateResult{.name = gate.name,
                    .text = gate.text,
                    .passed = std::isfinite(max_abs_diff) && max_abs_diff <= gate.tolerance,
                    .value = max_abs_diff,
                    .threshold = gate.tolerance,
                    .detail = detail};
}

GateResult Unmeasured(const Gate& gate, const std::string& why) {
  return GateResult{.name = gate.name, .text = gate.text, .passed = false, .detail = why};
}

absl::StatusOr<double> WeightShift(const json& now, const json& before) {
  const std::string kind = now.value("kind", "");
  if (kind != before.value("kind", "") || (kind != "coefficients" && kind != "importance")) {
    return absl::FailedPreconditionError(
        fmt::format("cannot compare {} with {}: the two models are of different kinds",
                    kind.empty() ? "no weights" : kind,
                    before.value("kind", "").empty() ? "no weights" : before.value("kind", "")));
  }
  std::map<std::string, double> a = Flatten(now.value("values", json::object()));
  std::map<std::string, double> b = Flatten(before.value("values", json::object()));
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  auto get = [](const std::map<std::string, double>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? 0.0 : it->second;
  };
  if (kind == "coefficients") {
    double diff = 0, norm = 0;
    for (const std::string& k : keys) {
      diff += std::pow(get(a, k) - get(b, k), 2);
      norm += std::pow(get(b, k), 2);
    }
    if (norm == 0) return diff == 0 ? 0.0 : 1.0;
    return std::sqrt(diff) / std::sqrt(norm);
  }
  double sa = 0, sb = 0;
  for (const std::string& k : keys) {
    sa += get(a, k);
    sb += get(b, k);
  }
  double tv = 0;
  for (const std::string& k : keys) {
    double pa = sa > 0 ? get(a, k) / sa : 0;
    double pb = sb > 0 ? get(b, k) / sb : 0;
    tv += std::fabs(pa - pb);
  }
  return tv / 2;
}

json GatesToJson(const std::vector<GateResult>& results) {
  json gates = json::array();
  bool passed = true;
  for (const GateResult& r : results) {
    passed = passed && r.passed;
    gates.push_back({{"name", r.name},
                     {"gate", r.text},
                     {"passed", r.passed},
                     {"value", r.value ? json(*r.value) : json(nullptr)},
                     {"threshold", r.threshold ? json(*r.threshold) : json(nullptr)},
                     {"detail", r.detail}});
  }
  return {{"passed", passed}, {"gates", gates}};
}

std::string GatesToText(const std::vector<GateResult>& results) {
  std::string out;
  for (const GateResult& r : results) {
    std::string line = fmt::format("{} {}", r.passed ? "PASS" : "FAIL", r.name);
    if (r.value) line += " " + Num(*r.value);
    if (r.threshold) {
      if (r.name == "reproducible" || r.name == "serving_parity") {
        line += fmt::format(" (largest difference; tolerance {})", Num(*r.threshold));
      } else {
        line += fmt::format(" (gate: {}; threshold {})", r.text, Num(*r.threshold));
      }
    } else if (!r.text.empty()) {
      line += fmt::format(" (gate: {})", r.text);
    }
    if (!r.detail.empty()) line += ": " + r.detail;
    out += line + "\n";
  }
  return out;
}

absl::StatusOr<bool> HigherIsBetter(const std::string& metric) {
  static const std::set<std::string> lower = {"logloss", "log_loss", "rmse", "mae", "mape"};
  const std::vector<std::string> names = MetricNames();
  if (std::find(names.begin(), names.end(), metric) == names.end()) {
    return absl::NotFoundError(fmt::format("no metric '{}'", metric));
  }
  return lower.count(metric) == 0;
}

}  // namespace ferry::model
