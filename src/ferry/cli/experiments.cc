// Experiment tracking on the command line (docs/cli.md): every training run a `train` step
// recorded, with its parameters and metrics.
//   ferry experiments [NAME] [--type T] [--sort METRIC] [--asc] [--limit N] [--json]
//   ferry experiments compare ID ID [ID...] [--json]

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "ferry/cli/cli_common.h"
#include "ferry/common/units.h"
#include "ferry/model/gates.h"
#include "ferry/model/metrics.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

// The metrics of ToJson (metrics.h) in the order they are shown; MetricValue and HigherIsBetter
// know each name.
const std::vector<std::string>& MetricKeys() {
  static const std::vector<std::string> keys = {"roc_auc", "pr_auc", "accuracy", "precision",
                                                "recall",  "f1",     "log_loss", "rmse",
                                                "mae",     "r2",     "mape"};
  return keys;
}

json ObjectOf(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

// The metrics object of one section of an experiment's metrics: the evaluate step records
// {"metrics": {...}, "gates": passed}, the train step the metrics themselves. Null when absent.
json SectionMetrics(const json& metrics, const std::string& section) {
  if (!metrics.contains(section) || !metrics[section].is_object()) return nullptr;
  const json& s = metrics[section];
  if (s.contains("metrics") && s["metrics"].is_object()) return s["metrics"];
  return s;
}

// The section headline metrics come from: evaluate when there is one, else train.
std::pair<std::string, json> HeadlineSection(const json& metrics) {
  if (json m = SectionMetrics(metrics, "evaluate"); m.is_object()) return {"evaluate", m};
  if (json m = SectionMetrics(metrics, "train"); m.is_object()) return {"train", m};
  return {"", nullptr};
}

std::string Num(double v) {
  if (std::isnan(v)) return "-";
  if (std::fabs(v) >= 1e6 || (std::fabs(v) < 1e-4 && v != 0)) return fmt::format("{:.4e}", v);
  return fmt::format("{:.4f}", v);
}

std::string HeadlineText(const json& metrics) {
  auto [section, m] = HeadlineSection(metrics);
  if (!m.is_object()) return "-";
  const bool regression = m.value("task", "") == "regression";
  std::string out;
  for (const char* name : regression ? std::vector<const char*>{"rmse", "r2"}
                                     : std::vector<const char*>{"auc", "accuracy", "log_loss"}) {
    absl::StatusOr<double> v = model::MetricValue(m, name);
    if (v.ok()) out += fmt::format("{}{} {}", out.empty() ? "" : " ", name, Num(*v));
  }
  if (out.empty()) return "-";
  return section == "train" ? out + " (train)" : out;
}

// "C=1.0,max_depth=3 seed=7": the hyperparameters (by name) and the seed.
std::string ParamsText(const json& params) {
  std::vector<std::string> hps;
  const json h = params.value("hyperparameters", json::object());
  for (auto it = h.begin(); it != h.end(); ++it) {
    hps.push_back(
        fmt::format("{}={}", it.key(), it->is_string() ? it->get<std::string>() : it->dump()));
  }
  std::string out = fmt::format("{}", fmt::join(hps, ","));
  if (params.contains("seed")) {
    out += fmt::format("{}seed={}", out.empty() ? "" : " ", params["seed"].dump());
  }
  return out.empty() ? "-" : out;
}

std::string Or(const std::string& s) { return s.empty() ? "-" : s; }

json ExperimentJson(const state::ExperimentRecord& e) {
  return {{"id", e.id},
          {"name", e.name},
          {"run_id", e.run_id},
          {"task", e.task},
          {"model_type", e.model_type},
          {"params", ObjectOf(e.params_json)},
          {"metrics", ObjectOf(e.metrics_json)},
          {"dataset", e.dataset},
          {"dataset_version", e.dataset_version},
          {"code_hash", e.code_hash},
          {"artifact_uri", e.artifact_uri},
          {"duration_seconds", e.duration_seconds},
          {"model_version", e.model_version},
          {"created_at", ShowTime(e.created_at)},
          {"updated_at", ShowTime(e.updated_at)}};
}

// Prints rows of cells as columns padded to their widest cell (the last one unpadded).
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()), 0);
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += c + 1 == r.size() ? r[c] : fmt::format("{:<{}}  ", r[c], width[c]);
    }
    fmt::print("{}\n", line);
  }
}

// --- ferry experiments ---

struct ListOptions {
  std::string name;
  std::string type;
  std::string sort;
  bool asc = false;
  int limit = 0;
  bool json = false;
};

// The sort key of `e`, nullopt when it has none (it then goes last, whatever the order).
std::optional<double> SortKey(const state::ExperimentRecord& e, const std::string& sort) {
  if (sort == "id") return static_cast<double>(e.id);
  if (sort == "duration") return e.duration_seconds;
  auto [section, m] = HeadlineSection(ObjectOf(e.metrics_json));
  if (!m.is_object()) return std::nullopt;
  absl::StatusOr<double> v = model::MetricValue(m, sort);
  if (!v.ok()) return std::nullopt;
  return *v;
}

int ExperimentsMain(const GlobalOptions& g, const ListOptions& o) {
  if (o.limit < 0) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("--limit {}: give a number of experiments >= 1 (0: all)", o.limit)));
  }
  if (!o.sort.empty() && o.sort != "id" && o.sort != "duration" &&
      !model::HigherIsBetter(o.sort).ok()) {
    return Fail(
        absl::InvalidArgumentError(fmt::format("--sort {}: sort by id, duration or a metric: {}",
                                               o.sort, fmt::join(model::MetricNames(), ", "))));
  }
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  // The store limits the newest first; a sort must see them all before it cuts.
  auto list = project->store->ListExperiments(
      {.name = o.name, .model_type = o.type, .limit = o.sort.empty() ? o.limit : 0});
  if (!list.ok()) return Fail(list.status());
  std::vector<state::ExperimentRecord> rows = std::move(*list);
  if (!o.sort.empty()) {
    using Keyed = std::pair<std::optional<double>, state::ExperimentRecord>;
    std::vector<Keyed> keyed;
    for (auto& e : rows) keyed.emplace_back(SortKey(e, o.sort), std::move(e));
    std::stable_sort(keyed.begin(), keyed.end(), [&](const Keyed& a, const Keyed& b) {
      if (a.first.has_value() != b.first.has_value()) return a.first.has_value();
      if (!a.first) return false;
      if (*a.first != *b.first) return o.asc ? *a.first < *b.first : *a.first > *b.first;
      return a.second.id > b.second.id;  // ties: newest first
    });
    rows.clear();
    for (auto& [key, e] : keyed) rows.push_back(std::move(e));
    if (o.limit > 0 && rows.size() > static_cast<size_t>(o.limit)) rows.resize(o.limit);
  }
  if (o.json) {
    json out = json::array();
    for (const auto& e : rows) out.push_back(ExperimentJson(e));
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  if (rows.empty()) {
    fmt::print("(no experiments{}: a train step records one per training run)\n",
               o.name.empty() && o.type.empty() ? " yet" : " match");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> table = {
      {"ID", "NAME", "RUN", "TYPE", "DATASET", "TIME", "VERSION", "PARAMS", "METRICS"}};
  for (const auto& e : rows) {
    table.push_back({fmt::format("{}", e.id), e.name, Or(e.run_id), e.model_type, Or(e.dataset),
                     HumanDuration(absl::Seconds(e.duration_seconds)), Or(e.model_version),
                     ParamsText(ObjectOf(e.params_json)), HeadlineText(ObjectOf(e.metrics_json))});
  }
  PrintTable(table);
  return kExitOk;
}

// --- ferry experiments compare ---

struct CompareRow {
  std::string name;
  std::vector<json> values;  // null: the experiment has no such value
  std::vector<std::string> text;
  bool differs = false;
  std::vector<size_t> best;  // metric rows: the columns holding the best value
};

CompareRow TextRow(const std::string& name, std::vector<json> values) {
  CompareRow r{.name = name, .values = std::move(values)};
  for (const json& v : r.values) {
    r.text.push_back(v.is_null() ? "-" : v.is_string() ? Or(v.get<std::string>()) : v.dump());
  }
  r.differs =
      std::adjacent_find(r.values.begin(), r.values.end(), std::not_equal_to<>()) != r.values.end();
  return r;
}

// A metric row: the values compared as numbers, shown with enough digits to tell apart those
// that differ, the best marked when they differ and the metric has a direction.
CompareRow MetricRow(const std::string& label, const std::string& metric,
                     const std::vector<json>& values) {
  CompareRow r = TextRow(label, values);
  for (int digits = 4; digits <= 12; digits += 2) {
    std::vector<std::string> text;
    for (const json& v : values) {
      text.push_back(v.is_number() ? fmt::format("{:.{}f}", v.get<double>(), digits) : "-");
    }
    r.text = text;
    bool clash = false;
    for (size_t i = 0; i < values.size(); ++i) {
      for (size_t j = 0; j < values.size(); ++j) {
        clash = clash || (values[i] != values[j] && text[i] == text[j]);
      }
    }
    if (!clash) break;
  }
  absl::StatusOr<bool> higher = model::HigherIsBetter(metric);
  size_t numbers = 0;
  for (const json& v : values) numbers += v.is_number() ? 1 : 0;
  if (r.differs && higher.ok() && numbers >= 2) {
    std::optional<double> best;
    for (const json& v : values) {
      if (!v.is_number()) continue;
      const double x = v.get<double>();
      if (!best || (*higher ? x > *best : x < *best)) best = x;
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (values[i].is_number() && values[i].get<double>() == *best) {
        r.best.push_back(i);
        r.text[i] += " (best)";
      }
    }
  }
  return r;
}

int CompareMain(const GlobalOptions& g, const std::vector<int64_t>& ids, bool as_json) {
  if (ids.size() < 2) {
    return Fail(absl::InvalidArgumentError(
        "experiments compare needs two experiment ids or more: ferry experiments compare 3 4"));
  }
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  std::vector<state::ExperimentRecord> exps;
  for (int64_t id : ids) {
    auto e = project->store->GetExperiment(id);
    if (!e.ok()) return Fail(e.status());
    exps.push_back(std::move(*e));
  }
  std::vector<json> params, metrics;
  for (const auto& e : exps) {
    params.push_back(ObjectOf(e.params_json));
    metrics.push_back(ObjectOf(e.metrics_json));
  }
  auto each = [&](auto f) {
    std::vector<json> out;
    for (size_t i = 0; i < exps.size(); ++i) out.push_back(f(i));
    return out;
  };
  std::vector<CompareRow> rows;
  rows.push_back(TextRow("name", each([&](size_t i) { return json(exps[i].name); })));
  rows.push_back(TextRow("run", each([&](size_t i) { return json(exps[i].run_id); })));
  rows.push_back(TextRow("type", each([&](size_t i) { return json(exps[i].model_type); })));
  rows.push_back(TextRow("dataset", each([&](size_t i) { return json(exps[i].dataset); })));
  rows.push_back(TextRow("code hash", each([&](size_t i) { return json(exps[i].code_hash); })));
  std::vector<std::string> hp_keys;  // the union, by name
  for (const json& p : params) {
    const json h = p.value("hyperparameters", json::object());
    for (auto it = h.begin(); it != h.end(); ++it) hp_keys.push_back(it.key());
  }
  std::sort(hp_keys.begin(), hp_keys.end());
  hp_keys.erase(std::unique(hp_keys.begin(), hp_keys.end()), hp_keys.end());
  for (const std::string& k : hp_keys) {
    rows.push_back(TextRow(k, each([&](size_t i) {
                             const json h = params[i].value("hyperparameters", json::object());
                             return h.contains(k) ? h[k] : json(nullptr);
                           })));
  }
  rows.push_back(TextRow("seed", each([&](size_t i) { return params[i].value("seed", json()); })));
  for (const auto& [section, prefix] : {std::pair{"evaluate", ""}, std::pair{"train", "train "}}) {
    for (const std::string& k : MetricKeys()) {
      std::vector<json> values = each([&](size_t i) {
        json m = SectionMetrics(metrics[i], section);
        return m.is_object() && m.contains(k) ? m[k] : json(nullptr);
      });
      if (std::all_of(values.begin(), values.end(), [](const json& v) { return v.is_null(); })) {
        continue;
      }
      rows.push_back(MetricRow(prefix + k, k, values));
    }
  }
  // Durations differ in every run: compared as shown.
  CompareRow duration = TextRow(
      "duration",
      each([&](size_t i) { return json(HumanDuration(absl::Seconds(exps[i].duration_seconds))); }));
  duration.values = each([&](size_t i) { return json(exps[i].duration_seconds); });
  rows.push_back(duration);
  rows.push_back(TextRow("version", each([&](size_t i) { return json(exps[i].model_version); })));

  if (as_json) {
    json out = {{"experiments", json::array()}, {"rows", json::array()}};
    for (const auto& e : exps) out["experiments"].push_back(ExperimentJson(e));
    for (const CompareRow& r : rows) {
      out["rows"].push_back(
          {{"row", r.name}, {"values", r.values}, {"differs", r.differs}, {"best", r.best}});
    }
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  const bool bold = ::isatty(STDOUT_FILENO) == 1;
  size_t label_width = 0;
  for (const CompareRow& r : rows) label_width = std::max(label_width, r.name.size());
  std::vector<size_t> width(exps.size(), 0);
  for (size_t i = 0; i < exps.size(); ++i) {
    width[i] = fmt::format("experiment {}", exps[i].id).size();
    for (const CompareRow& r : rows) width[i] = std::max(width[i], r.text[i].size());
  }
  auto line = [&](const std::string& mark, const std::string& label,
                  const std::vector<std::string>& cells) {
    std::string s = fmt::format("{} {:<{}}", mark, label, label_width);
    for (size_t i = 0; i < cells.size(); ++i) {
      s += i + 1 == cells.size() ? "  " + cells[i] : fmt::format("  {:<{}}", cells[i], width[i]);
    }
    return s;
  };
  std::vector<std::string> header;
  for (const auto& e : exps) header.push_back(fmt::format("experiment {}", e.id));
  fmt::print("{}\n", line(" ", "", header));
  for (const CompareRow& r : rows) {
    std::string s = line(r.differs ? "*" : " ", r.name, r.text);
    fmt::print("{}\n", bold && r.differs ? "\033[1m" + s + "\033[0m" : s);
  }
  fmt::print("\n* values differ; (best) marks the best value of a metric that differs\n");
  return kExitOk;
}

}  // namespace

void RegisterExperimentsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* cmd = app.add_subcommand(
      "experiments", "List the training runs (experiments), or compare some side by side");
  cmd->add_option("NAME", o->name, "Only experiments of this name (a train step's experiment:)");
  cmd->add_option("--type", o->type, "Only this model type (logistic_regression, xgboost, ...)");
  cmd->add_option("--sort", o->sort,
                  "Sort by a metric (auc, logloss, rmse, ...; the evaluation's, else the "
                  "training's), by id or by duration; descending unless --asc");
  cmd->add_flag("--asc", o->asc, "Sort ascending");
  cmd->add_option("-n,--limit", o->limit, "At most this many (after sorting; default: all)");
  cmd->add_flag("--json", o->json, "JSON output");

  auto ids = std::make_shared<std::vector<int64_t>>();
  auto compare_json = std::make_shared<bool>(false);
  CLI::App* compare = cmd->add_subcommand(
      "compare", "Experiments side by side: parameters and metrics, differences marked");
  compare->add_option("IDS", *ids, "Two experiment ids or more")->required();
  compare->add_flag("--json", *compare_json, "JSON output");
  compare->callback([&g, &rc, ids, compare_json] { rc = CompareMain(g, *ids, *compare_json); });

  // The parent's callback also runs after `compare`'s: it lists only when compare did not run.
  cmd->callback([&g, &rc, o, compare] {
    if (compare->parsed()) return;
    rc = ExperimentsMain(g, *o);
  });
}

}  // namespace ferry::cli
