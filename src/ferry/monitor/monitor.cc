#include "ferry/monitor/monitor.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "ferry/audit/inference_log.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/data/drift.h"
#include "ferry/data/profile.h"
#include "ferry/model/bundle.h"
#include "ferry/model/metrics.h"
#include "ferry/monitor/internal/window_records.h"
#include "ferry/monitor/labels.h"
#include "ferry/monitor/report_html.h"
#include "ferry/monitor/trend.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::monitor {
namespace {

using ojson = nlohmann::ordered_json;
using nlohmann::json;

constexpr double kDay = 86400;
constexpr size_t kMaxSegments = 20;  // per segment_by column, the most frequent values

ojson Num(double v) { return std::isfinite(v) ? ojson(v) : ojson(nullptr); }
ojson Num(std::optional<double> v) { return v ? Num(*v) : ojson(nullptr); }

std::string Iso(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}
std::string DayText(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }
int64_t DayIndex(absl::Time t) {
  return static_cast<int64_t>(std::floor(absl::ToDoubleSeconds(t - absl::UnixEpoch()) / kDay));
}
absl::Time DayStart(int64_t day) { return absl::FromUnixSeconds(day * 86400); }

std::string Fmt(double v) { return fmt::format("{:.4g}", v); }

// The baseline: a model version's bundle and the profile of its raw inputs.
struct Baseline {
  std::string name, version;  // "" when no model served the window
  json meta;
  data::Profile profile;
  std::string source;               // "model" (the bundle's profile.json) or "dataset"
  std::vector<std::string> inputs;  // input_schema names, in order (empty when unknown)
  bool has_profile = false;
};

bool Covers(const data::Profile& p, const std::vector<std::string>& inputs) {
  for (const std::string& n : inputs) {
    if (p.Find(n) == nullptr) return false;
  }
  return true;
}

absl::StatusOr<std::optional<data::Profile>> ReadProfile(storage::ArtifactStore& lake,
                                                         const std::string& key) {
  FERRY_ASSIGN_OR_RETURN(bool exists, lake.Exists(key));
  if (!exists) return std::optional<data::Profile>();
  FERRY_ASSIGN_OR_RETURN(std::string text, lake.Get(key));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError(fmt::format("{} is not JSON; re-register the model", key));
  }
  FERRY_ASSIGN_OR_RETURN(data::Profile p, data::ProfileFromJson(j));
  return std::optional<data::Profile>(std::move(p));
}

absl::StatusOr<Baseline> LoadBaseline(storage::ArtifactStore& lake, const std::string& ref) {
  Baseline b;
  const size_t colon = ref.rfind(':');
  if (colon == std::string::npos) {
    return absl::FailedPreconditionError(fmt::format(
        "the inference log names model '{}' without a version; no training baseline to compare "
        "with",
        ref));
  }
  b.name = ref.substr(0, colon);
  b.version = ref.substr(colon + 1);
  FERRY_ASSIGN_OR_RETURN(std::string dir, storage::layout::ModelVersion(b.name, b.version));
  auto meta_text = lake.Get(dir + "/model.json");
  if (!meta_text.ok()) {
    return absl::NotFoundError(fmt::format(
        "baseline: model {} served the window but {}/model.json cannot be read ({}); is the lake "
        "the one the model was registered in?",
        ref, dir, meta_text.status().message()));
  }
  b.meta = json::parse(*meta_text, nullptr, false);
  if (!b.meta.is_object()) {
    return absl::DataLossError(fmt::format("{}/model.json is not a JSON object", dir));
  }
  for (const json& f : b.meta.value("input_schema", json::array())) {
    if (f.is_object() && f.contains("name") && f["name"].is_string()) {
      b.inputs.push_back(f["name"].get<std::string>());
    }
  }
  FERRY_ASSIGN_OR_RETURN(std::optional<data::Profile> bundled,
                         ReadProfile(lake, dir + "/profile.json"));
  // A model with a bundled transform was trained on transformed features (standardized,
  // one-hot): its bundle's profile is of those, not of the raw inputs a request carries, even
  // where the names agree. Its raw baseline is the profile of the dataset the transform read.
  const json transform = b.meta.value("transform", json(nullptr));
  const bool transformed = transform.is_object() && !transform.empty();
  if (!transformed && bundled && Covers(*bundled, b.inputs)) {
    b.profile = std::move(*bundled);
    b.source = "model";
    b.has_profile = true;
    return b;
  }
  const json ds = b.meta.value("dataset", json(nullptr));
  if (ds.is_object() && ds.value("name", "") != "" && ds.value("version", "") != "") {
    auto ds_dir = storage::layout::DatasetVersion(ds.value("name", ""), ds.value("version", ""));
    if (ds_dir.ok()) {
      std::vector<std::string> candidates;
      // The transform's input dataset (manifest "inputs"), whole: the raw rows it read.
      if (auto manifest = lake.Get(*ds_dir + "/manifest.json"); manifest.ok()) {
        const json m = json::parse(*manifest, nullptr, false);
        if (m.is_object() && m.contains("inputs") && m["inputs"].is_array()) {
          for (const json& in : m["inputs"]) {
            if (!in.is_object()) continue;
            auto in_dir =
                storage::layout::DatasetVersion(in.value("dataset", ""), in.value("version", ""));
            if (in_dir.ok()) candidates.push_back(*in_dir + "/profile.json");
          }
        }
      }
      const std::string part = ds.value("part", "data");
      candidates.push_back(
          *ds_dir + "/" +
          (part.empty() || part == "data" ? "profile.json" : part + ".profile.json"));
      candidates.push_back(*ds_dir + "/profile.json");
      for (const std::string& key : candidates) {
        FERRY_ASSIGN_OR_RETURN(std::optional<data::Profile> raw, ReadProfile(lake, key));
        if (raw && Covers(*raw, b.inputs)) {
          b.profile = std::move(*raw);
          b.source = "dataset";
          b.has_profile = true;
          return b;
        }
      }
    }
  }
  if (bundled) {  // the best there is: the inputs it lacks are reported as such
    b.profile = std::move(*bundled);
    b.source = "model";
    b.has_profile = true;
  }
  return b;
}

// The effective rule for a check: the user's first rule on `metric`, else the default.
struct CheckRule {
  AlertRule rule;
  bool alerting = false;
};

class ReportBuilder {
 public:
  ReportBuilder(const MonitorSpec& spec, const std::vector<AlertRule>& rules, absl::Time now)
      : spec_(spec), rules_(rules), now_(now) {}

  CheckRule RuleFor(const std::string& metric, const std::string& op, double threshold) const {
    for (const AlertRule& r : rules_) {
      if (r.metric == metric) return {r, true};
    }
    return {AlertRule{metric, op, threshold, fmt::format("{} {} {}", metric, op, Fmt(threshold))},
            false};
  }

  // Records a quality check; `shift` moves the threshold (missing_rate: the reference's rate).
  void Check(const std::string& check, const ojson& feature, const ojson& segment,
             std::optional<double> value, const std::string& op, double default_threshold,
             double shift = 0) {
    CheckRule cr = RuleFor(check, op, default_threshold);
    AlertRule effective = cr.rule;
    effective.threshold += shift;
    const bool crossed = value ? effective.Crossed(*value) : check == "stale_hours";
    checks_.push_back({{"check", check},
                       {"feature", feature},
                       {"segment", segment},
                       {"value", Num(value)},
                       {"threshold", Num(effective.threshold)},
                       {"passed", !crossed}});
    if (crossed && cr.alerting) {
      std::string where = feature.is_string() ? feature.get<std::string>() : "endpoint";
      if (segment.is_string()) where += fmt::format(" [{}]", segment.get<std::string>());
      std::string detail =
          shift != 0 ? fmt::format(" (reference {} + {})", Fmt(shift), Fmt(cr.rule.threshold)) : "";
      Alert(cr.rule.text, feature, segment, value,
            fmt::format("{}: {} {} {} {}{}", where, check, value ? Fmt(*value) : "none",
                        effective.op, Fmt(effective.threshold), detail));
    }
  }

  // Evaluates every rule on `metric` against `value` (drift and performance rules).
  void Evaluate(const std::string& metric, const ojson& feature, const ojson& segment,
                std::optional<double> value, const std::string& context) {
    if (!value || !std::isfinite(*value)) return;
    for (const AlertRule& r : rules_) {
      if (r.metric != metric || !r.Crossed(*value)) continue;
      std::string where = feature.is_string() ? feature.get<std::string>() : "endpoint";
      if (segment.is_string()) where += fmt::format(" [{}]", segment.get<std::string>());
      Alert(r.text, feature, segment, value,
            fmt::format("{}: {} {} {} {} ({})", where, metric, Fmt(*value), r.op, Fmt(r.threshold),
                        context));
    }
  }

  void Alert(const std::string& rule, const ojson& feature, const ojson& segment,
             std::optional<double> value, std::string message) {
    alerts_.push_back({{"rule", rule},
                       {"feature", feature},
                       {"segment", segment},
                       {"value", Num(value)},
                       {"message", std::move(message)}});
  }

  ojson& checks() { return checks_; }
  ojson& alerts() { return alerts_; }

 private:
  const MonitorSpec& spec_;
  const std::vector<AlertRule>& rules_;
  absl::Time now_;
  ojson checks_ = ojson::array();
  ojson alerts_ = ojson::array();
};

ojson ReferenceJson(const data::ColumnProfile& ref, const data::ColumnDrift& d) {
  ojson j = {{"count", ref.count}, {"nulls", ref.nulls}};
  if (!d.categorical) {
    j["edges"] = d.edges;
    j["counts"] = d.reference_counts;
    return j;
  }
  ojson cats = ojson::array();
  for (size_t i = 0; i < d.categories.size() && i < d.reference_counts.size(); ++i) {
    cats.push_back(ojson::array({d.categories[i], d.reference_counts[i]}));
    if (d.categories[i] == "__other__") break;  // after it: values the reference never saw
  }
  j["categories"] = std::move(cats);
  return j;
}

ojson CurrentJson(const data::Column& col, const data::ColumnDrift& d) {
  ojson j = {{"count", static_cast<int64_t>(col.size() - col.null_count())},
             {"nulls", static_cast<int64_t>(col.null_count())}};
  if (!d.categorical) {
    j["edges"] = d.edges;
    j["counts"] = d.current_counts;
    return j;
  }
  ojson cats = ojson::array();
  for (size_t i = 0; i < d.categories.size() && i < d.current_counts.size(); ++i) {
    cats.push_back(ojson::array({d.categories[i], d.current_counts[i]}));
  }
  j["categories"] = std::move(cats);
  return j;
}

ojson DriftJson(const data::ColumnDrift& d) {
  const auto& s = d.scores;
  return {{"psi", Num(s.psi)},
          {"ks", Num(s.ks)},
          {"ks_pvalue", Num(s.ks_pvalue)},
          {"wasserstein", Num(s.wasserstein)},
          {"js", Num(s.js)},
          {"chi2", Num(s.chi2)},
          {"chi2_pvalue", Num(s.chi2_pvalue)}};
}

data::Column Subset(const data::Column& col, const std::vector<size_t>& rows) {
  data::Column out(col.name(), col.type());
  out.Reserve(rows.size());
  for (size_t r : rows) out.AppendFrom(col, r);
  return out;
}

double MissingRate(const data::Column& col, const std::vector<size_t>& rows) {
  if (rows.empty()) return std::nan("");
  size_t nulls = 0;
  for (size_t r : rows) nulls += col.is_null(r) ? 1 : 0;
  return static_cast<double>(nulls) / static_cast<double>(rows.size());
}

// Distinct non-null values of `col` over `rows`, with counts, most frequent first.
std::vector<std::pair<std::string, int64_t>> ValueCounts(const data::Column& col,
                                                         const std::vector<size_t>& rows) {
  std::unordered_map<std::string, int64_t> counts;
  for (size_t r : rows) {
    if (!col.is_null(r)) ++counts[col.ToText(r)];
  }
  std::vector<std::pair<std::string, int64_t>> out(counts.begin(), counts.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

// Performance: the labelled rows, as the metric functions want them.
struct Labelled {
  model::Task task = model::Task::kBinary;
  std::vector<std::string> classes;
  std::vector<size_t> rows;     // window rows with a usable label and output
  std::vector<int> y_class;     // classification
  std::vector<double> y_value;  // regression
  std::vector<double> scores;   // probabilities (row-major) or values
};

std::optional<double> AsNumber(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// Metrics of the labelled rows `idx` (indices into Labelled's vectors): name -> value.
std::map<std::string, double> Metrics(const Labelled& l, const std::vector<size_t>& idx) {
  std::map<std::string, double> m;
  if (idx.empty()) return m;
  model::Predictions p;
  p.task = l.task;
  p.rows = idx.size();
  p.classes = l.classes;
  if (l.task == model::Task::kRegression) {
    std::vector<double> y;
    for (size_t i : idx) {
      y.push_back(l.y_value[i]);
      p.values.push_back(l.scores[i]);
    }
    auto r = model::Regress(y, p);
    if (r.ok()) {
      m["rmse"] = r->rmse;
      m["mae"] = r->mae;
    }
    return m;
  }
  const size_t k = l.classes.size();
  std::vector<int> y;
  for (size_t i : idx) {
    y.push_back(l.y_class[i]);
    for (size_t c = 0; c < k; ++c) p.values.push_back(l.scores[i * k + c]);
  }
  auto c = model::Classify(y, p);
  if (c.ok()) {
    m["accuracy"] = c->accuracy;
    m["auc"] = c->roc_auc;
    m["log_loss"] = c->log_loss;
  }
  return m;
}

struct Series {
  ojson daily = ojson::array();
  ojson trend = nullptr;
  std::optional<double> slope;
};

Series DailySeries(const Labelled& l, const std::vector<size_t>& idx,
                   const std::vector<int64_t>& day_of, const std::vector<std::string>& metrics,
                   const std::string& metric) {
  std::map<int64_t, std::vector<size_t>> by_day;
  for (size_t i : idx) by_day[day_of[l.rows[i]]].push_back(i);
  Series s;
  std::vector<double> xs, ys;
  for (const auto& [day, rows] : by_day) {
    auto m = Metrics(l, rows);
    ojson d = {{"day", DayText(DayStart(day))}, {"n", static_cast<int64_t>(rows.size())}};
    for (const std::string& name : metrics) {
      auto it = m.find(name);
      d[name] = it == m.end() ? ojson(nullptr) : Num(it->second);
    }
    s.daily.push_back(std::move(d));
    auto it = m.find(metric);
    if (it != m.end() && std::isfinite(it->second)) {
      // Days since the series' first day: the intercept is the fitted value on daily[0].
      xs.push_back(static_cast<double>(day - by_day.begin()->first));
      ys.push_back(it->second);
    }
  }
  auto t = FitTrend(xs, ys);
  if (t.ok()) {
    s.trend = {{"metric", metric},
               {"slope_per_day", Num(t->slope_per_day)},
               {"ci95", ojson::array({Num(t->ci_low), Num(t->ci_high)})},
               {"intercept", Num(t->intercept)},
               {"r2", Num(t->r2)},
               {"days", t->days}};
    s.slope = t->slope_per_day;
  }
  return s;
}

struct Built {
  ojson report;
  int64_t alerts = 0;
  int64_t rows = 0;
  bool alerted = false;
};

absl::StatusOr<Built> BuildReport(storage::ArtifactStore& lake, const MonitorSpec& spec,
                                  const std::string& run_id, absl::Time created, absl::Time now) {
  const absl::Time from = now - spec.window;
  const std::vector<AlertRule> rules = spec.alerts.empty() ? DefaultAlertRules() : spec.alerts;
  ReportBuilder rb(spec, rules, now);

  FERRY_ASSIGN_OR_RETURN(internal::WindowRecords records,
                         internal::ReadWindowRecords(lake, spec.endpoint, from, now));
  // Which model served most (live) rows: its bundle is the baseline.
  std::map<std::string, int64_t> served, served_live;
  for (const json& rec : records.records) {
    const std::string ref = internal::ModelRef(rec);
    ++served[ref];
    if (rec.value("mode", "") != "shadow") ++served_live[ref];
  }
  const auto& pick = served_live.empty() ? served : served_live;
  std::string baseline_ref;
  int64_t best = -1;
  for (const auto& [ref, n] : pick) {
    if (!ref.empty() && n > best) {
      best = n;
      baseline_ref = ref;
    }
  }
  Baseline baseline;
  if (!baseline_ref.empty()) {
    FERRY_ASSIGN_OR_RETURN(baseline, LoadBaseline(lake, baseline_ref));
  }
  FERRY_ASSIGN_OR_RETURN(
      InferenceWindow w,
      internal::BuildWindow(spec.endpoint, from, now, std::move(records),
                            baseline.meta.is_object()
                                ? baseline.meta.value("input_schema", json(nullptr))
                                : json(nullptr)));
  for (const std::string& seg : spec.segment_by) {
    if (w.inputs.Find(seg) == nullptr && !w.times.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("segment_by: no input column '{}' in the window of '{}'; its inputs: {}", seg,
                      spec.endpoint, absl::StrJoin(w.inputs.ColumnNames(), ", ")));
    }
  }

  // Live rows (shadow records repeat the live inputs) and their UTC days.
  std::vector<size_t> live;
  std::vector<int64_t> day_of(w.times.size());
  absl::Time last = absl::InfinitePast();
  for (size_t r = 0; r < w.times.size(); ++r) {
    day_of[r] = DayIndex(w.times[r]);
    last = std::max(last, w.times[r]);
    if (w.modes[r] != "shadow") live.push_back(r);
  }
  std::map<int64_t, std::vector<size_t>> live_by_day;
  for (size_t r : live) live_by_day[day_of[r]].push_back(r);

  // Segments: (label "plan=pro", rows).
  std::vector<std::pair<std::string, std::vector<size_t>>> segments;
  for (const std::string& seg : spec.segment_by) {
    const data::Column* col = w.inputs.Find(seg);
    if (col == nullptr) continue;
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t r : live) groups[col->is_null(r) ? "null" : col->ToText(r)].push_back(r);
    std::vector<std::pair<std::string, std::vector<size_t>>> sorted;
    for (auto& [v, rows] : groups) sorted.push_back({seg + "=" + v, std::move(rows)});
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
      return a.second.size() > b.second.size();
    });
    if (sorted.size() > kMaxSegments) sorted.resize(kMaxSegments);
    std::sort(sorted.begin(), sorted.end());
    for (auto& s : sorted) segments.push_back(std::move(s));
  }

  const std::string reference_text =
      baseline.has_profile
          ? fmt::format("reference: training profile of {}:{}", baseline.name, baseline.version)
          : "no reference";

  // Baseline columns: the profile's, restricted to the model's inputs (the profile also holds
  // the target).
  std::vector<const data::ColumnProfile*> base_cols;
  std::set<std::string> input_set(baseline.inputs.begin(), baseline.inputs.end());
  const std::string target = baseline.meta.is_object() ? baseline.meta.value("target", "") : "";
  // Columns the bundled transform drops first (an id, a date) are optional in a request and
  // never reach the model: neither their drift nor their absence says anything about it.
  const std::vector<std::string> optional =
      baseline.meta.is_object() ? model::OptionalInputs(baseline.meta) : std::vector<std::string>{};
  const std::set<std::string> optional_set(optional.begin(), optional.end());
  if (baseline.has_profile) {
    if (!baseline.inputs.empty()) {
      for (const std::string& n : baseline.inputs) {
        if (optional_set.count(n)) continue;
        if (const auto* c = baseline.profile.Find(n)) base_cols.push_back(c);
      }
    } else {
      for (const auto& c : baseline.profile.columns) {
        if (c.name != target) base_cols.push_back(&c);
      }
    }
  }

  // --- Features: drift, quality, daily ---
  ojson features = ojson::array();
  ojson missing_columns = ojson::array();
  int64_t type_errors_total = 0;
  for (const auto& [name, n] : w.type_errors) type_errors_total += n;
  for (const data::ColumnProfile* ref : base_cols) {
    const data::Column* col = w.inputs.Find(ref->name);
    const double ref_missing =
        ref->count + ref->nulls > 0
            ? static_cast<double>(ref->nulls) / static_cast<double>(ref->count + ref->nulls)
            : 0.0;
    if (col == nullptr) {
      missing_columns.push_back(ref->name);
      if (!live.empty()) {
        rb.Check("missing_rate", ref->name, nullptr, 1.0, ">", 0.05, ref_missing);
      }
      continue;
    }
    const data::Column cur = Subset(*col, live);
    const data::ColumnDrift d = data::CompareToProfile(*ref, cur);
    const double missing = MissingRate(*col, live);
    const int64_t type_errors = w.type_errors.count(ref->name) ? w.type_errors.at(ref->name) : 0;
    // Unseen categories: only when the reference listed all its distinct values.
    ojson unseen = ojson::array();
    const bool full_vocab = ref->type == data::ColumnType::kString && ref->distinct > 0 &&
                            ref->distinct <= static_cast<int64_t>(ref->top.size());
    const auto counts = ValueCounts(*col, live);
    if (full_vocab) {
      std::set<std::string> known;
      for (const auto& [v, c] : ref->top) known.insert(v);
      for (const auto& [v, c] : counts) {
        if (!known.count(v)) unseen.push_back(v);
      }
    }
    bool ref_constant = ref->type == data::ColumnType::kString
                            ? ref->distinct <= 1
                            : (ref->min && ref->max && *ref->min == *ref->max);
    const bool constant = counts.size() == 1 && !ref_constant;

    ojson daily = ojson::array();
    for (const auto& [day, rows] : live_by_day) {
      const data::ColumnDrift dd = data::CompareToProfile(*ref, Subset(*col, rows));
      daily.push_back({{"day", DayText(DayStart(day))},
                       {"rows", static_cast<int64_t>(rows.size())},
                       {"psi", Num(dd.scores.psi)},
                       {"ks", Num(dd.scores.ks)},
                       {"missing_rate", Num(MissingRate(*col, rows))}});
    }
    const ojson fname = ref->name;
    rb.Check("missing_rate", fname, nullptr, missing, ">", 0.05, ref_missing);
    rb.Check("type_errors", fname, nullptr, static_cast<double>(type_errors), ">", 0);
    if (full_vocab) {
      rb.Check("unseen_categories", fname, nullptr, static_cast<double>(unseen.size()), ">", 0);
    }
    rb.Check("constant", fname, nullptr, constant ? 1.0 : 0.0, ">", 0);
    for (const auto& [label, rows] : segments) {
      rb.Check("missing_rate", fname, label, MissingRate(*col, rows), ">", 0.05, ref_missing);
    }
    for (const char* m : {"psi", "ks", "ks_pvalue", "wasserstein", "js", "chi2_pvalue"}) {
      const auto& sc = d.scores;
      std::optional<double> v = std::string_view(m) == "psi"           ? sc.psi
                                : std::string_view(m) == "ks"          ? sc.ks
                                : std::string_view(m) == "ks_pvalue"   ? sc.ks_pvalue
                                : std::string_view(m) == "wasserstein" ? sc.wasserstein
                                : std::string_view(m) == "js"          ? sc.js
                                                                       : sc.chi2_pvalue;
      rb.Evaluate(m, fname, nullptr, v, reference_text);
    }
    features.push_back({{"name", ref->name},
                        {"type", std::string(data::TypeName(col->type()))},
                        {"kind", d.categorical ? "categorical" : "numeric"},
                        {"reference", ReferenceJson(*ref, d)},
                        {"current", CurrentJson(cur, d)},
                        {"drift", DriftJson(d)},
                        {"quality",
                         {{"missing_rate", Num(missing)},
                          {"reference_missing_rate", Num(ref_missing)},
                          {"type_errors", type_errors},
                          {"unseen_categories", unseen},
                          {"constant", constant}}},
                        {"daily", std::move(daily)}});
  }

  // --- Endpoint-level quality ---
  ojson new_columns = ojson::array();
  std::set<std::string> known_inputs = input_set;
  if (known_inputs.empty()) {
    for (const auto* c : base_cols) known_inputs.insert(c->name);
  }
  if (!known_inputs.empty()) {
    for (const std::string& n : w.inputs.ColumnNames()) {
      if (!known_inputs.count(n)) new_columns.push_back(n);
    }
  }
  rb.Check("missing_columns", nullptr, nullptr, static_cast<double>(missing_columns.size()), ">",
           0);
  rb.Check("new_columns", nullptr, nullptr, static_cast<double>(new_columns.size()), ">", 0);
  rb.Check("type_errors", nullptr, nullptr, static_cast<double>(type_errors_total), ">", 0);
  std::optional<double> hours_since;
  if (last != absl::InfinitePast()) hours_since = absl::ToDoubleHours(now - last);
  const bool stale = !hours_since || *hours_since > spec.stale_after_hours;
  rb.Check("stale_hours", nullptr, nullptr, hours_since, ">", spec.stale_after_hours);
  rb.Check("rows", nullptr, nullptr, static_cast<double>(live.size()), "<", 1);
  for (const auto& [label, rows] : segments) {
    rb.Check("rows", nullptr, label, static_cast<double>(rows.size()), "<", 1);
  }

  // --- Performance: labels joined by transaction id ---
  FERRY_ASSIGN_OR_RETURN(auto labels, ReadLabels(lake, spec.endpoint));
  Labelled l;
  std::string task_name = baseline.meta.is_object() ? baseline.meta.value("task", "") : "";
  if (baseline.meta.is_object() && baseline.meta.contains("classes") &&
      baseline.meta["classes"].is_array()) {
    for (const json& c : baseline.meta["classes"]) {
      l.classes.push_back(c.is_string() ? c.get<std::string>() : c.dump());
    }
  }
  for (size_t r : live) {
    auto lab = labels.find(w.transaction_ids[r]);
    if (lab == labels.end()) continue;
    const json& out = w.outputs[r];
    if (!out.is_object()) continue;
    if (task_name.empty()) {
      task_name = out.contains("probabilities") ? "binary" : "regression";
    }
    if (task_name == "regression") {
      l.task = model::Task::kRegression;
      auto y = AsNumber(lab->second);
      if (!y || !out.contains("value") || !out["value"].is_number()) continue;
      l.rows.push_back(r);
      l.y_value.push_back(*y);
      l.scores.push_back(out["value"].get<double>());
      continue;
    }
    if (!out.contains("probabilities") || !out["probabilities"].is_object()) continue;
    const json& probs = out["probabilities"];
    if (l.classes.empty()) {
      for (auto it = probs.begin(); it != probs.end(); ++it) l.classes.push_back(it.key());
      std::sort(l.classes.begin(), l.classes.end(), [](const std::string& a, const std::string& b) {
        auto x = AsNumber(a), y = AsNumber(b);
        return x && y ? *x < *y : a < b;
      });
    }
    l.task = l.classes.size() > 2 ? model::Task::kMulticlass : model::Task::kBinary;
    int y = -1;
    for (size_t c = 0; c < l.classes.size(); ++c) {
      if (l.classes[c] == lab->second) y = static_cast<int>(c);
    }
    if (y < 0) {  // "1.0" for class "1"
      auto v = AsNumber(lab->second);
      for (size_t c = 0; v && c < l.classes.size(); ++c) {
        auto cv = AsNumber(l.classes[c]);
        if (cv && *cv == *v) y = static_cast<int>(c);
      }
    }
    if (y < 0) continue;
    bool ok = true;
    std::vector<double> p;
    for (const std::string& c : l.classes) {
      auto it = probs.find(c);
      if (it == probs.end() || !it->is_number()) {
        ok = false;
        break;
      }
      p.push_back(it->get<double>());
    }
    if (!ok) continue;
    l.rows.push_back(r);
    l.y_class.push_back(y);
    l.scores.insert(l.scores.end(), p.begin(), p.end());
  }
  ojson performance = nullptr;
  if (!l.rows.empty()) {
    const bool regression = l.task == model::Task::kRegression;
    const std::vector<std::string> metrics =
        regression ? std::vector<std::string>{"rmse", "mae"}
                   : std::vector<std::string>{"accuracy", "auc", "log_loss"};
    const std::string metric =
        spec.metric.empty() ? (regression ? "rmse" : "accuracy") : spec.metric;
    if (std::find(metrics.begin(), metrics.end(), metric) == metrics.end()) {
      return absl::InvalidArgumentError(
          fmt::format("metric '{}' does not apply to this {} model; choose one of {}", metric,
                      regression ? "regression" : "classification", absl::StrJoin(metrics, ", ")));
    }
    std::vector<size_t> all(l.rows.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    Series overall = DailySeries(l, all, day_of, metrics, metric);
    const auto level = Metrics(l, all);
    for (const auto& [name, v] : level) {
      rb.Evaluate(name, nullptr, nullptr, v,
                  fmt::format("{} labelled rows over the window", l.rows.size()));
    }
    rb.Evaluate("slope_per_day", nullptr, nullptr, overall.slope,
                fmt::format("{} change per day", metric));
    ojson segs = ojson::array();
    std::unordered_map<size_t, size_t> pos;  // window row -> index into l
    for (size_t i = 0; i < l.rows.size(); ++i) pos[l.rows[i]] = i;
    for (const auto& [label, rows] : segments) {
      std::vector<size_t> idx;
      for (size_t r : rows) {
        auto it = pos.find(r);
        if (it != pos.end()) idx.push_back(it->second);
      }
      if (idx.empty()) continue;
      Series s = DailySeries(l, idx, day_of, metrics, metric);
      for (const auto& [name, v] : Metrics(l, idx)) {
        rb.Evaluate(name, nullptr, label, v,
                    fmt::format("{} labelled rows over the window", idx.size()));
      }
      rb.Evaluate("slope_per_day", nullptr, label, s.slope,
                  fmt::format("{} change per day", metric));
      segs.push_back({{"segment", label}, {"daily", std::move(s.daily)}, {"trend", s.trend}});
    }
    ojson level_json = ojson::object();
    for (const std::string& m : metrics) {
      auto it = level.find(m);
      level_json[m] = it == level.end() ? ojson(nullptr) : Num(it->second);
    }
    performance = {{"metric", metric},
                   {"metrics", metrics},
                   {"overall", std::move(level_json)},
                   {"daily", std::move(overall.daily)},
                   {"trend", overall.trend},
                   {"segments", std::move(segs)}};
  }

  // --- Models seen ---
  std::map<std::string, int64_t> by_model;
  for (size_t r = 0; r < w.models.size(); ++r) ++by_model[w.models[r]];
  ojson models = ojson::array();
  for (const auto& [ref, n] : by_model) {
    const size_t colon = ref.rfind(':');
    ojson version = nullptr;
    if (colon != std::string::npos) {
      const std::string v = ref.substr(colon + 1);
      auto num = AsNumber(v);
      version = num && *num == std::floor(*num) ? ojson(static_cast<int64_t>(*num)) : ojson(v);
    }
    models.push_back({{"name", colon == std::string::npos ? ref : ref.substr(0, colon)},
                      {"version", version},
                      {"rows", n}});
  }
  ojson baseline_json = nullptr;
  if (!baseline.name.empty()) {
    auto num = AsNumber(baseline.version);
    baseline_json = {{"kind", spec.baseline},
                     {"model", baseline.name},
                     {"version", num ? ojson(static_cast<int64_t>(*num)) : ojson(baseline.version)},
                     {"rows", baseline.has_profile ? ojson(baseline.profile.rows) : ojson(nullptr)},
                     {"source", baseline.has_profile ? ojson(baseline.source) : ojson(nullptr)}};
  }

  Built b;
  b.rows = static_cast<int64_t>(live.size());
  b.alerts = static_cast<int64_t>(rb.alerts().size());
  b.alerted = b.alerts > 0;
  const int64_t window_days =
      static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(spec.window) / kDay));
  b.report = {{"schema", std::string(kReportSchema)},
              {"id", run_id},
              {"endpoint", spec.endpoint},
              {"created", Iso(created)},
              {"status", b.alerted ? "alerted" : "passed"},
              {"window", {{"from", Iso(from)}, {"to", Iso(now)}, {"days", window_days}}},
              {"baseline", std::move(baseline_json)},
              {"models", std::move(models)},
              {"rows", b.rows},
              {"labelled_rows", static_cast<int64_t>(l.rows.size())},
              {"alerts", std::move(rb.alerts())},
              {"features", std::move(features)},
              {"quality",
               {{"missing_columns", std::move(missing_columns)},
                {"new_columns", std::move(new_columns)},
                {"type_errors", type_errors_total},
                {"stale",
                 {{"last_record", last == absl::InfinitePast() ? ojson(nullptr) : ojson(Iso(last))},
                  {"hours_since_last", Num(hours_since)},
                  {"stale", stale}}},
                {"checks", std::move(rb.checks())}}},
              {"performance", std::move(performance)}};
  return b;
}

}  // namespace

nlohmann::json MonitorSpecToJson(const MonitorSpec& spec) {
  json alerts = json::array();
  for (const AlertRule& r : spec.alerts) alerts.push_back(r.text);
  return {{"endpoint", spec.endpoint},
          {"window_seconds", absl::ToInt64Seconds(spec.window)},
          {"baseline", spec.baseline},
          {"alerts", alerts},
          {"segment_by", spec.segment_by},
          {"metric", spec.metric},
          {"now", spec.now == absl::InfinitePast() ? json(nullptr) : json(Iso(spec.now))},
          {"stale_after_hours", spec.stale_after_hours}};
}

absl::StatusOr<MonitorOutcome> RunMonitor(state::StateStore& store, storage::ArtifactStore& lake,
                                          const MonitorSpec& spec, const Clock& clock,
                                          const std::string& actor) {
  if (!IsValidName(spec.endpoint)) {
    return absl::InvalidArgumentError(fmt::format(
        "monitor: '{}' is not an endpoint name (letters, digits, '_', '-', '.')", spec.endpoint));
  }
  if (spec.window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("monitor: the window must be positive (e.g. 7d)");
  }
  if (spec.baseline != "training") {
    return absl::InvalidArgumentError(fmt::format(
        "monitor: baseline '{}' is not supported; use 'training' (the training profile of the "
        "model version that served most rows)",
        spec.baseline));
  }
  if (!(spec.stale_after_hours > 0)) {
    return absl::InvalidArgumentError("monitor: stale_after_hours must be positive");
  }
  const absl::Time now = spec.now == absl::InfinitePast() ? clock.Now() : spec.now;
  // An endpoint the store does not know may still have a log (a batch job's --log-endpoint);
  // with neither, the name is a typo.
  if (absl::StatusOr<state::EndpointRecord> e = store.GetEndpoint(spec.endpoint);
      absl::IsNotFound(e.status())) {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> segments,
                           audit::ListInferenceSegments(lake, spec.endpoint, absl::UnixEpoch(),
                                                        absl::InfiniteFuture()));
    if (segments.empty()) {
      return absl::NotFoundError(
          fmt::format("monitor: no endpoint '{}' and no inference log under inference/{}/; "
                      "`ferry endpoints` lists the endpoints",
                      spec.endpoint, spec.endpoint));
    }
  }
  state::NewJob job;
  job.id = state::NewJobId('m', clock);
  job.kind = state::MonitorRunKind().name;
  job.subject = spec.endpoint;
  job.spec_json = MonitorSpecToJson(spec).dump();
  job.actor = actor;
  FERRY_ASSIGN_OR_RETURN(state::JobRecord run, store.CreateJob(job));
  state::JobTransition start;
  start.id = run.id;
  start.from = "queued";
  start.to = "running";
  start.expected_version = run.version;
  start.reason = "monitor started";
  start.actor = actor;
  start.owner_pid = static_cast<int64_t>(getpid());
  FERRY_ASSIGN_OR_RETURN(run, store.TransitionJob(start));

  auto fail = [&](const absl::Status& status) -> absl::Status {
    state::JobTransition t;
    t.id = run.id;
    t.from = "running";
    t.to = "failed";
    t.expected_version = run.version;
    t.reason = "the report could not be made";
    t.actor = actor;
    t.message = std::string(status.message());
    (void)store.TransitionJob(t);
    return status;
  };
  absl::StatusOr<Built> built = BuildReport(lake, spec, run.id, clock.Now(), now);
  if (!built.ok()) return fail(built.status());
  auto dir = storage::layout::MonitoringReport(spec.endpoint, run.id);
  if (!dir.ok()) return fail(dir.status());
  const std::string json_key = *dir + "/report.json";
  const std::string html_key = *dir + "/report.html";
  if (absl::Status s = lake.Put(json_key, built->report.dump(2) + "\n"); !s.ok()) return fail(s);
  const std::string html = RenderReportHtml(json::parse(built->report.dump()));
  if (absl::Status s = lake.Put(html_key, html); !s.ok()) return fail(s);

  MonitorOutcome out;
  out.report_json = lake.Uri(json_key);
  out.report_html = lake.Uri(html_key);
  out.alerted = built->alerted;
  out.report = json::parse(built->report.dump());
  state::JobTransition done;
  done.id = run.id;
  done.from = "running";
  done.to = built->alerted ? "alerted" : "passed";
  done.expected_version = run.version;
  done.reason = built->alerted ? fmt::format("{} alert(s)", built->alerts) : "no threshold crossed";
  done.actor = actor;
  done.result_json = json{
      {"report_json", out.report_json},
      {"report_html", out.report_html},
      {"alerts", built->alerts},
      {"rows",
       built->rows}}.dump();
  FERRY_ASSIGN_OR_RETURN(out.run, store.TransitionJob(done));
  return out;
}

}  // namespace ferry::monitor
