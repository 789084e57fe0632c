// The model registry on the command line (docs/cli.md, docs/models.md):
//   ferry models [--json]                                  every model, its aliases and headline
//   ferry model show REF [--json]                          one version: lineage, metrics, gates,
//                                                          weights
//   ferry model alias REF ALIAS [--expect-version N]       point an alias at a version
//   ferry model alias MODEL ALIAS --delete                 remove it
// REF is what ParseModelRef reads: churn:7, churn:champion, churn (the newest usable version).

#include <algorithm>
#include <cmath>
#include <optional>

#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/model/bundle.h"
#include "ferry/model/metrics.h"
#include "ferry/pipeline/model_steps.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

constexpr int kTopWeights = 10;

// The JSON object in `text`, or an empty object (a record written without one).
json ObjectOf(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

std::string Num(double v) {
  if (std::isnan(v)) return "-";
  if (std::fabs(v) >= 1e6 || (std::fabs(v) < 1e-4 && v != 0)) return fmt::format("{:.4e}", v);
  return fmt::format("{:.4f}", v);
}

std::string Num(const json& v) { return v.is_number() ? Num(v.get<double>()) : "-"; }

// The headline metrics of an evaluation (metrics.h ToJson): auc, accuracy, log_loss for a
// classification, rmse, r2 for a regression, in that order; undefined ones are left out.
std::vector<std::pair<std::string, double>> Headline(const json& metrics) {
  const bool regression =
      metrics.value("task", "") == "regression" ||
      (!metrics.contains("roc_auc") && !metrics.contains("accuracy") && metrics.contains("rmse"));
  static const std::vector<std::string> kClassification = {"auc", "accuracy", "log_loss"};
  static const std::vector<std::string> kRegression = {"rmse", "r2"};
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& name : regression ? kRegression : kClassification) {
    absl::StatusOr<double> v = model::MetricValue(metrics, name);
    if (v.ok()) out.emplace_back(name, *v);
  }
  return out;
}

std::string HeadlineText(const std::vector<std::pair<std::string, double>>& h) {
  std::string out;
  for (const auto& [name, v] : h)
    out += fmt::format("{}{} {}", out.empty() ? "" : "  ", name, Num(v));
  return out;
}

// A version's bundle files, read from the lake: model.json and metrics.json (null when absent),
// or why they could not be read.
struct BundleFiles {
  std::string dir;
  json meta = nullptr;
  json metrics = nullptr;
  std::string error;
};

BundleFiles ReadBundleFiles(storage::ArtifactStore& lake, const state::ModelVersionRecord& v) {
  BundleFiles b;
  if (v.artifact_uri.empty()) {
    b.error = "the version has no artifact URI (its registration did not finish)";
    return b;
  }
  absl::StatusOr<std::string> dir = pipeline::model_steps::ArtifactFolder(lake, v.artifact_uri);
  if (!dir.ok()) {
    b.error = std::string(dir.status().message());
    return b;
  }
  b.dir = *dir;
  for (auto [file, slot] :
       {std::pair{model::kBundleMeta, &b.meta}, std::pair{model::kBundleMetrics, &b.metrics}}) {
    const std::string path = b.dir + "/" + file;
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) {
      if (b.error.empty()) b.error = std::string(text.status().message());
      continue;
    }
    *slot = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (slot->is_discarded()) {
      *slot = nullptr;
      if (b.error.empty()) b.error = fmt::format("{} is not valid JSON", path);
    }
  }
  return b;
}

// The aliases of `aliases` that point to `version`, by name.
std::vector<std::string> AliasesOf(const std::vector<state::ModelAliasRecord>& aliases,
                                   int64_t version) {
  std::vector<std::string> out;
  for (const auto& a : aliases) {
    if (a.version == version) out.push_back(a.alias);
  }
  return out;
}

// --- ferry models ---

int ModelsMain(const GlobalOptions& g, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  state::StateStore& store = *project->store;
  auto models = store.ListModels();
  if (!models.ok()) return Fail(models.status());
  json out = json::array();
  constexpr std::string_view kRow = "{:<20} {:>8}  {:<7} {:<11} {:<24} {}\n";
  if (!as_json) {
    fmt::print(kRow, "MODEL", "VERSIONS", "LATEST", "STATE", "ALIASES", "METRICS");
  }
  for (const state::ModelRecord& m : *models) {
    auto versions = store.ListModelVersions(m.name);
    if (!versions.ok()) return Fail(versions.status());
    auto aliases = store.ListAliases(m.name);
    if (!aliases.ok()) return Fail(aliases.status());
    json jaliases = json::object();
    std::string alias_text;
    std::optional<int64_t> champion;
    for (const auto& a : *aliases) {
      jaliases[a.alias] = a.version;
      alias_text += fmt::format("{}{}->{}", alias_text.empty() ? "" : " ", a.alias, a.version);
      if (a.alias == "champion") champion = a.version;
    }
    // The headline comes from the champion, else from the latest version.
    const state::ModelVersionRecord* shown = nullptr;
    for (const auto& v : *versions) {
      if (champion ? v.version == *champion : true) shown = &v;
    }
    json headline = json::object();
    std::vector<std::pair<std::string, double>> h;
    if (shown != nullptr) {
      h = Headline(ObjectOf(shown->metrics_json));
      for (const auto& [name, v] : h) headline[name] = v;
    }
    const state::ModelVersionRecord* latest = versions->empty() ? nullptr : &versions->back();
    if (as_json) {
      out.push_back({{"name", m.name},
                     {"description", m.description},
                     {"versions", versions->size()},
                     {"latest", latest ? json(latest->version) : json(nullptr)},
                     {"latest_state", latest ? json(latest->state) : json(nullptr)},
                     {"aliases", jaliases},
                     {"metrics_of", shown ? json(shown->version) : json(nullptr)},
                     {"metrics", headline},
                     {"created_at", ShowTime(m.created_at)}});
      continue;
    }
    std::string metrics = h.empty() ? "-" : HeadlineText(h);
    if (shown != nullptr && !h.empty()) {
      metrics = fmt::format("{} (v{}{})", metrics, shown->version, champion ? ", champion" : "");
    }
    fmt::print(kRow, m.name, versions->size(), latest ? fmt::format("{}", latest->version) : "-",
               latest ? latest->state : "-", alias_text.empty() ? "-" : alias_text, metrics);
  }
  if (as_json) {
    fmt::print("{}\n", out.dump(2));
  } else if (models->empty()) {
    fmt::print("(no models yet: a register step adds versions; docs/models.md)\n");
  }
  return kExitOk;
}

// --- ferry model show ---

struct TopWeight {
  std::string name;  // "tenure", or "tenure [pro]" for a multiclass coefficient
  double value = 0;
  double share = 0;  // importance: value / the sum of all; coefficients: 0
};

// The `n` largest weights of a Describe() summary: coefficients by |weight|, importance by
// value. *total is how many there are.
std::vector<TopWeight> TopWeights(const json& weights, size_t n, size_t* total) {
  std::vector<TopWeight> all;
  const json& values = weights.value("values", json::object());
  const bool importance = weights.value("kind", "") == "importance";
  for (auto it = values.begin(); it != values.end(); ++it) {
    if (it->is_number()) {
      all.push_back({it.key(), it->get<double>(), 0});
    } else if (it->is_object()) {  // multiclass: {class: {feature: w}}
      for (auto f = it->begin(); f != it->end(); ++f) {
        if (f->is_number())
          all.push_back({fmt::format("{} [{}]", f.key(), it.key()), f->get<double>(), 0});
      }
    }
  }
  double sum = 0;
  for (const TopWeight& w : all) sum += std::fabs(w.value);
  for (TopWeight& w : all) w.share = importance && sum > 0 ? w.value / sum : 0;
  std::stable_sort(all.begin(), all.end(), [&](const TopWeight& a, const TopWeight& b) {
    return importance ? a.value > b.value : std::fabs(a.value) > std::fabs(b.value);
  });
  *total = all.size();
  if (all.size() > n) all.resize(n);
  return all;
}

void PrintWeights(const json& weights) {
  if (!weights.is_object() || !weights.contains("values")) {
    fmt::print("\nweights: - (this model type has no weight summary)\n");
    return;
  }
  size_t total = 0;
  std::vector<TopWeight> top = TopWeights(weights, kTopWeights, &total);
  const std::string kind = weights.value("kind", "");
  if (kind == "importance") {
    fmt::print("\nweights: importance ({}), top {} of {} by share\n",
               weights.value("importance_type", "gain"), top.size(), total);
    fmt::print("  {:<32} {:>12} {:>7}\n", "FEATURE", "IMPORTANCE", "SHARE");
    for (const TopWeight& w : top) {
      fmt::print("  {:<32} {:>12} {:>6.1f}%\n", w.name, Num(w.value), 100 * w.share);
    }
    return;
  }
  std::string intercept;
  if (weights.contains("intercept") && weights["intercept"].is_number()) {
    intercept = fmt::format(", intercept {}", Num(weights["intercept"]));
  }
  fmt::print("\nweights: coefficients, top {} of {} by |weight|{}\n", top.size(), total, intercept);
  fmt::print("  {:<32} {:>12}\n", "FEATURE", "WEIGHT");
  for (const TopWeight& w : top) fmt::print("  {:<32} {:>12}\n", w.name, Num(w.value));
}

void PrintMetrics(const json& metrics, const json& evaluated_on) {
  std::string on;
  if (evaluated_on.is_object()) {
    on = fmt::format(" on {}@{}.{} ({} rows)", evaluated_on.value("dataset", "?"),
                     evaluated_on.value("ordinal", 0), evaluated_on.value("part", "?"),
                     evaluated_on.value("rows", 0));
  }
  fmt::print("\nmetrics{}:\n", on);
  bool any = false;
  for (const char* k : {"roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss",
                        "rmse", "mae", "r2", "mape"}) {
    if (!metrics.contains(k)) continue;
    fmt::print("  {:<10} {}\n", k, metrics[k].is_null() ? "- (undefined)" : Num(metrics[k]));
    any = true;
  }
  if (!any) fmt::print("  -\n");
  if (metrics.contains("confusion") && metrics.contains("classes") &&
      metrics["classes"].size() <= 10) {
    fmt::print("  confusion (rows: true class, columns: predicted):\n");
    fmt::print("    {:>10}", "");
    for (const json& c : metrics["classes"]) fmt::print(" {:>8}", c.get<std::string>());
    fmt::print("\n");
    for (size_t i = 0; i < metrics["confusion"].size(); ++i) {
      fmt::print("    {:>10}", metrics["classes"][i].get<std::string>());
      for (const json& n : metrics["confusion"][i]) fmt::print(" {:>8}", n.dump());
      fmt::print("\n");
    }
  }
}

void PrintGates(const json& gates) {
  if (!gates.is_object() || !gates.contains("gates")) {
    fmt::print("\ngates: - (none recorded)\n");
    return;
  }
  fmt::print("\ngates: {}\n", gates.value("passed", false) ? "passed" : "FAILED");
  for (const json& r : gates["gates"]) {
    fmt::print("  {}  {:<14} value {:>10}  threshold {:>10}  ({}){}\n",
               r.value("passed", false) ? "PASS" : "FAIL", r.value("name", "?"),
               Num(r.value("value", json(nullptr))), Num(r.value("threshold", json(nullptr))),
               r.value("gate", ""),
               r.value("detail", "").empty() ? "" : "  " + r.value("detail", std::string()));
  }
  if (gates["gates"].empty()) fmt::print("  (the evaluation had no gates)\n");
}

std::string Text(const json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

int ModelShowMain(const GlobalOptions& g, const std::string& ref, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  state::StateStore& store = *project->store;
  auto v = state::ResolveModelRef(store, ref);
  if (!v.ok()) return Fail(v.status());
  auto aliases = store.ListAliases(v->model);
  if (!aliases.ok()) return Fail(aliases.status());
  const std::vector<std::string> mine = AliasesOf(*aliases, v->version);
  const json metadata = ObjectOf(v->metadata_json);
  const json metrics = ObjectOf(v->metrics_json);
  const BundleFiles bundle = ReadBundleFiles(*project->lake, *v);

  if (as_json) {
    json out = {{"model", v->model},
                {"version", v->version},
                {"ref", fmt::format("{}:{}", v->model, v->version)},
                {"state", v->state},
                {"revision", v->revision},
                {"aliases", mine},
                {"created_at", ShowTime(v->created_at)},
                {"updated_at", ShowTime(v->updated_at)},
                {"run_id", v->run_id},
                {"task", v->task},
                {"artifact_uri", v->artifact_uri},
                {"message", v->message},
                {"metrics", metrics},
                {"metadata", metadata},
                {"model_json", bundle.meta},
                {"metrics_json", bundle.metrics}};
    if (!bundle.error.empty()) out["bundle_error"] = bundle.error;
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }

  // model.json is the fuller source; the record's metadata stands in when it cannot be read.
  const json& meta = bundle.meta.is_object() ? bundle.meta : metadata;
  fmt::print("model {}:{}  ({})\n", v->model, v->version, v->state);
  fmt::print("  aliases:     {}\n", mine.empty() ? "-" : fmt::format("{}", fmt::join(mine, ", ")));
  fmt::print("  created:     {}   updated: {}\n", ShowTime(v->created_at), ShowTime(v->updated_at));
  if (!v->message.empty()) fmt::print("  message:     {}\n", v->message);
  fmt::print("  run:         {}  task {}\n", v->run_id.empty() ? "-" : v->run_id,
             v->task.empty() ? "-" : v->task);
  fmt::print("  artifact:    {}\n", v->artifact_uri.empty() ? "-" : v->artifact_uri);
  fmt::print("  type:        {}   task: {}   target: {}\n", Text(meta, "type"), Text(meta, "task"),
             Text(meta, "target"));
  if (meta.contains("command")) fmt::print("  command:     {}\n", Text(meta, "command"));
  fmt::print("  hyperparams: {}   seed: {}\n", Text(meta, "hyperparameters"), Text(meta, "seed"));
  const json& ds = meta.value("dataset", json::object());
  if (ds.is_object() && !ds.empty()) {
    fmt::print("  dataset:     {} (version {}, part {})\n", Text(ds, "label"), Text(ds, "version"),
               Text(ds, "part"));
  } else {
    fmt::print("  dataset:     -\n");
  }
  fmt::print("  git commit:  {}\n", Text(meta, "git_commit") == "-"
                                        ? "- (the project was not a git checkout)"
                                        : Text(meta, "git_commit"));
  fmt::print("  code hash:   {}\n", Text(meta, "code_hash"));
  const json& exp = meta.value("experiment", json::object());
  if (exp.is_object() && exp.contains("id")) {
    fmt::print("  experiment:  {} ({})\n", Text(exp, "id"), Text(exp, "name"));
  }
  if (!bundle.error.empty()) fmt::print("  bundle:      not readable: {}\n", bundle.error);

  const json& evaluated_on =
      bundle.metrics.is_object() ? bundle.metrics.value("evaluated_on", json(nullptr)) : json();
  PrintMetrics(metrics, evaluated_on);
  PrintGates(bundle.metrics.is_object() && bundle.metrics.contains("gates")
                 ? bundle.metrics["gates"]
                 : metadata.value("gates", json(nullptr)));
  PrintWeights(meta.value("weights", json(nullptr)));
  return kExitOk;
}

// --- ferry model alias ---

struct AliasOptions {
  std::string ref;
  std::string alias;
  std::optional<int64_t> expect_version;
  bool remove = false;
};

std::string Pointed(int64_t version) {
  return version == 0 ? "(none)" : fmt::format("{}", version);
}

int ModelAliasMain(const GlobalOptions& g, const AliasOptions& o) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  state::StateStore& store = *project->store;
  if (absl::Status s = state::CheckAliasName(o.alias); !s.ok()) return Fail(s);
  const std::string actor = "ferry model alias";

  if (o.remove) {
    auto parsed = state::ParseModelRef(o.ref);
    if (!parsed.ok()) return Fail(parsed.status());
    if (parsed->version != 0 || !parsed->alias.empty()) {
      return Fail(absl::InvalidArgumentError(fmt::format(
          "--delete takes the model's name, not a version: ferry model alias {} {} --delete",
          parsed->model, o.alias)));
    }
    if (o.expect_version) {
      return Fail(absl::InvalidArgumentError(
          "--expect-version does not combine with --delete (a deletion is not compared-and-set); "
          "check with `ferry model show` first"));
    }
    auto current = store.GetAlias(parsed->model, o.alias);
    if (!current.ok()) return Fail(current.status());
    if (absl::Status s = store.DeleteAlias(parsed->model, o.alias, actor); !s.ok()) return Fail(s);
    fmt::print("{}@{}: {} -> (deleted)\n", parsed->model, o.alias, current->version);
    return kExitOk;
  }

  auto target = state::ResolveModelRef(store, o.ref);
  if (!target.ok()) return Fail(target.status());
  const std::string reason = fmt::format("ferry model alias {} {}", o.ref, o.alias);
  // Without --expect-version the move is still compared-and-set, against what was read just
  // before, so that the "from" printed is exactly what was replaced; a concurrent move makes it
  // read and try again.
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    int64_t from = 0;
    if (o.expect_version) {
      from = *o.expect_version;
    } else {
      auto current = store.GetAlias(target->model, o.alias);
      if (current.ok()) {
        from = current->version;
      } else if (!absl::IsNotFound(current.status())) {
        return Fail(current.status());
      }
    }
    auto moved = store.SetAlias({.model = target->model,
                                 .alias = o.alias,
                                 .version = target->version,
                                 .expected_current = from,
                                 .reason = reason,
                                 .actor = actor});
    if (moved.ok()) {
      fmt::print("{}@{}: {} -> {}{}\n", target->model, o.alias, Pointed(from), target->version,
                 from == target->version ? " (unchanged)" : "");
      return kExitOk;
    }
    // A lost race only matters when the caller named what it expected.
    const bool lost_race = absl::IsFailedPrecondition(moved.status()) &&
                           moved.status().message().find("moved first") != std::string_view::npos;
    if (o.expect_version || !lost_race || attempt == kAttempts) {
      if (lost_race && o.expect_version) {
        return Fail(absl::FailedPreconditionError(fmt::format(
            "{}; nothing changed: check with `ferry model show {}:{}` and retry with the "
            "--expect-version it shows",
            moved.status().message(), target->model, o.alias)));
      }
      return Fail(moved.status());
    }
  }
}

}  // namespace

void RegisterModelsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto list_json = std::make_shared<bool>(false);
  CLI::App* list = app.add_subcommand("models", "List the registered models");
  list->add_flag("--json", *list_json, "JSON output");
  list->callback([&g, &rc, list_json] { rc = ModelsMain(g, *list_json); });

  CLI::App* model = app.add_subcommand("model", "Inspect a model version, move its aliases");
  model->require_subcommand(1);

  auto ref = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  CLI::App* show = model->add_subcommand(
      "show", "A model version: lineage, metrics, gates and its largest weights");
  show->add_option("REF", *ref,
                   "NAME:VERSION (churn:7), NAME:ALIAS (churn:champion) or NAME (the newest usable "
                   "version)")
      ->required();
  show->add_flag("--json", *show_json, "JSON output (the record, model.json and metrics.json)");
  show->callback([&g, &rc, ref, show_json] { rc = ModelShowMain(g, *ref, *show_json); });

  auto o = std::make_shared<AliasOptions>();
  CLI::App* alias = model->add_subcommand(
      "alias", "Point an alias at a model version (atomically), or delete it");
  alias->add_option("REF", o->ref, "The version to point to (churn:7, churn:staging, churn)")
      ->required();
  alias->add_option("ALIAS", o->alias, "The alias (champion, staging, ...)")->required();
  alias->add_option("--expect-version", o->expect_version,
                    "Move only if the alias points to this version now (0: only if it does not "
                    "exist yet); otherwise exit 4 and change nothing");
  alias->add_flag("--delete", o->remove, "Delete the alias (REF is then the model's name)");
  alias->callback([&g, &rc, o] { rc = ModelAliasMain(g, *o); });
}

}  // namespace ferry::cli
