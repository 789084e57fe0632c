// The `evaluate` step kind: scores a trained model bundle on an evaluation set, checks its gates
// (model/gates.h) and fails the run before `register` when one fails. Its output is the bundle
// plus metrics.json (metrics, per-segment metrics, gate results); the report lists each gate,
// the value measured and the threshold (docs/models.md, "Gates").
//
//   evaluate:
//     evaluate: train                # the train step
//     on: features.test              # the evaluation rows (a dataset part)
//     segment: plan                  # optional: metrics per value of this column
//     model: churn                   # the registered model the champion / previous version come
//                                    # from (default: the model of the register step using this)
//     gates: { auc: ">= 0.75", logloss: "<= champion * 1.02", weight_shift: "<= 0.25",
//              reproducible: true, serving_parity: true }

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/model/bundle.h"
#include "ferry/model/gates.h"
#include "ferry/model/metrics.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/model_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/artifact_store.h"
#include "ferry/storage/datasets.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

using json = nlohmann::json;

// The rows `bundle` predicts on: `features` when it has every feature column, else its transform
// applied to `raw`. nullopt when neither works (the reason in *why).
std::optional<data::Table> RowsFor(const model::Bundle& bundle, const data::Table& features,
                                   const std::optional<data::Table>& raw, std::string* why) {
  bool has_all = true;
  for (const json& f : bundle.meta.value("features", json::array())) {
    has_all = has_all && features.Find(f.value("name", "")) != nullptr;
  }
  if (has_all) return features;
  if (!raw) {
    *why = "its features differ from this evaluation set's and the set has no raw rows";
    return std::nullopt;
  }
  absl::StatusOr<data::Table> t = model::PrepareFeatures(bundle.meta, *raw);
  if (!t.ok()) {
    *why = std::string(t.status().message());
    return std::nullopt;
  }
  return std::move(*t);
}

class EvaluateStep final : public StepKind {
 public:
  std::string name() const override { return "evaluate"; }
  std::set<std::string> extra_keys() const override { return {"on", "gates", "model", "segment"}; }
  bool value_is_step() const override { return true; }
  std::set<std::string> step_keys() const override { return {"on"}; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    data_steps::CheckOneStep(step, diags);
    if (!step.fields.contains("on") || !step.fields["on"].is_string()) {
      diags->Add(step.loc, fmt::format("step '{}': evaluate needs on: the evaluation rows, an "
                                       "upstream step's dataset part (e.g. on: features.test)",
                                       step.name));
    }
    if (step.fields.contains("gates") &&
        step.fields["gates"].dump().find("{{") == std::string::npos) {
      if (absl::StatusOr<std::vector<model::Gate>> g = model::ParseGates(step.fields["gates"]);
          !g.ok()) {
        diags->Add(data_steps::FieldLoc(step, "gates"),
                   fmt::format("step '{}': {}", step.name, g.status().message()));
      } else if (!step.fields.contains("model")) {
        for (const model::Gate& gate : *g) {
          if (gate.vs_champion || gate.kind == model::Gate::Kind::kWeightShift) {
            diags->Add(data_steps::FieldLoc(step, "gates"),
                       fmt::format("step '{}': gate {} compares with a registered model: add "
                                   "model: <name>, or register this step's result with a "
                                   "register step",
                                   step.name, gate.name));
            break;
          }
        }
      }
    }
    if (step.fields.contains("model") && !step.fields["model"].is_string()) {
      diags->Add(data_steps::FieldLoc(step, "model"),
                 fmt::format("step '{}': model must be a registered model's name", step.name));
    }
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const json& fields = ctx.step["fields"];
    const std::string bundle_dir =
        data_steps::ChannelDir(ctx, fields["evaluate"].get<std::string>());
    FERRY_ASSIGN_OR_RETURN(model::Bundle bundle, model::LoadBundle(bundle_dir));
    const json& meta = bundle.meta;
    const std::string target = meta.value("target", "");
    const std::string on = fields["on"].get<std::string>();
    const std::string on_dir = data_steps::ChannelDir(ctx, on);
    FERRY_ASSIGN_OR_RETURN(json on_manifest, data_steps::ReadDatasetManifest(on_dir));
    std::string part = data_steps::PartOf(on);
    if (part.empty()) part = on_manifest["parts"].contains("test") ? "test" : "data";
    FERRY_ASSIGN_OR_RETURN(data::Table rows,
                           data_steps::ReadDatasetPart(on_dir, on_manifest, part));
    FERRY_ASSIGN_OR_RETURN(std::optional<data::Table> raw,
                           data_steps::ReadRawPart(on_dir, on_manifest, part));
    const std::string scratch = ctx.workdir + "/output/scratch";
    const bool python = bundle.model == nullptr;

    // Offline predictions: the whole table at once, as batch scoring does.
    model::Predictions offline;
    if (python) {
      FERRY_ASSIGN_OR_RETURN(
          offline,
          model_steps::PythonPredict(meta, bundle_dir + "/model", on_dir, part,
                                     scratch + "/offline", ctx.project_dir, {}, rows.num_rows()));
    } else {
      FERRY_ASSIGN_OR_RETURN(offline, bundle.model->Predict(rows));
    }
    FERRY_ASSIGN_OR_RETURN(json metrics, model_steps::Score(rows, target, offline));
    json by_segment = nullptr;
    if (fields.contains("segment")) {
      const std::string column = fields["segment"].get<std::string>();
      if (rows.Find(column) == nullptr && (!raw || raw->Find(column) == nullptr)) {
        return absl::InvalidArgumentError(
            fmt::format("segment column '{}' is not in the evaluation rows ({}); columns: {}",
                        column, on, fmt::join(rows.ColumnNames(), ", ")));
      }
      // The raw column when there is one: segments are values as users know them ("pro"), not
      // their encoded or scaled features.
      const data::Column& seg =
          raw && raw->Find(column) ? raw->column(column) : rows.column(column);
      if (offline.task == model::Task::kRegression) {
        std::vector<double> y;
        for (size_t i = 0; i < rows.num_rows(); ++i) y.push_back(rows.column(target).AsDouble(i));
        FERRY_ASSIGN_OR_RETURN(by_segment, model::MetricsBySegment(y, offline, seg));
      } else {
        FERRY_ASSIGN_OR_RETURN(model::Labels labels, model::ToLabels(rows, target));
        FERRY_ASSIGN_OR_RETURN(by_segment, model::MetricsBySegment(labels.index, offline, seg));
      }
    }

    FERRY_ASSIGN_OR_RETURN(std::vector<model::Gate> gates,
                           model::ParseGates(fields.value("gates", json(nullptr))));
    std::vector<model::GateResult> results;
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<state::StateStore> store, model_steps::OpenStore(ctx));
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                           storage::OpenArtifactStore(ctx.lake_uri));
    const std::string model_name = fields.value("model", "");

    // The champion's metrics on these rows (its recorded ones when it cannot run here).
    std::optional<json> champion_metrics;
    std::string champion_detail;
    if (model::NeedsChampion(gates)) {
      absl::StatusOr<state::ModelVersionRecord> champ =
          state::ResolveModelRef(*store, model_name + ":champion");
      if (champ.ok()) {
        std::string label = fmt::format("{}:{}", champ->model, champ->version);
        FERRY_ASSIGN_OR_RETURN(std::string dir,
                               model_steps::ArtifactFolder(*lake, champ->artifact_uri));
        absl::StatusOr<model::Bundle> cb = model::LoadBundle(dir);
        std::string why;
        std::optional<data::Table> crows;
        if (cb.ok() && cb->model != nullptr) {
          crows = RowsFor(*cb, rows, raw, &why);
        } else if (cb.ok()) {
          why = fmt::format("a '{}' model is not re-scored here", cb->meta.value("type", ""));
        }
        if (crows) {
          FERRY_ASSIGN_OR_RETURN(model::Predictions cp, cb->model->Predict(*crows));
          FERRY_ASSIGN_OR_RETURN(json cm, model_steps::Score(rows, target, cp));
          champion_metrics = cm;
          champion_detail = fmt::format("champion {} on the same rows", label);
        } else {
          champion_metrics = json::parse(champ->metrics_json, nullptr, false);
          champion_detail = fmt::format("champion {}'s recorded metrics ({})", label,
                                        cb.ok() ? why : std::string(cb.status().message()));
        }
      } else if (!absl::IsNotFound(champ.status())) {
        return champ.status();
      }
    }

    for (const model::Gate& g : gates) {
      switch (g.kind) {
        case model::Gate::Kind::kMetric: {
          absl::StatusOr<double> v = model::MetricValue(metrics, g.name);
          if (!v.ok()) {
            results.push_back(model::Unmeasured(g, std::string(v.status().message())));
            break;
          }
          std::optional<double> cv;
          std::string detail = champion_detail;
          if (g.vs_champion && champion_metrics) {
            absl::StatusOr<double> c = model::MetricValue(*champion_metrics, g.name);
            if (!c.ok()) {
              results.push_back(model::Unmeasured(
                  g, fmt::format("{}: {}", champion_detail, c.status().message())));
              break;
            }
            cv = *c;
            detail = fmt::format("{} {} {:.6g}", champion_detail, g.name, *c);
          }
          results.push_back(model::Decide(g, *v, cv, g.vs_champion ? detail : ""));
          break;
        }
        case model::Gate::Kind::kWeightShift:
          results.push_back(WeightShiftGate(g, *store, *lake, model_name, meta));
          break;
        case model::Gate::Kind::kReproducible:
          if (!g.enabled) break;
          results.push_back(Reproducible(g, ctx, *lake, bundle, rows, offline, scratch));
          break;
        case model::Gate::Kind::kServingParity:
          if (!g.enabled) break;
          results.push_back(ServingParity(g, bundle, rows, raw, offline));
          break;
      }
    }

    const std::string out = ctx.workdir + "/output/data";
    FERRY_RETURN_IF_ERROR(model_steps::LinkTree(bundle_dir, out));
    FERRY_RETURN_IF_ERROR(RemoveAll(scratch));
    json gates_json = model::GatesToJson(results);
    json doc = {{"metrics", metrics},
                {"segments", by_segment},
                {"gates", gates_json},
                {"evaluated_on",
                 {{"dataset", on_manifest.value("dataset", "")},
                  {"version", on_manifest.value("version", "")},
                  {"ordinal", on_manifest.value("ordinal", 0)},
                  {"part", part},
                  {"rows", rows.num_rows()}}},
                {"model", model_name},
                {"run_id", ctx.run_id},
                {"task", ctx.task}};
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(out + "/" + model::kBundleMetrics, doc.dump(1) + "\n",
                                          /*durable=*/false));
    std::string text = fmt::format("evaluated {} on {}@{}.{} ({} rows)\n", meta.value("type", ""),
                                   on_manifest.value("dataset", ""),
                                   on_manifest.value("ordinal", 0), part, rows.num_rows());
    for (const char* k : {"roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "rmse", "mae", "r2"}) {
      if (metrics.contains(k) && metrics[k].is_number()) {
        text += fmt::format("  {:<9} {:.4f}\n", k, metrics[k].get<double>());
      }
    }
    text += model::GatesToText(results);
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(out + "/report.txt", text, /*durable=*/false));
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);

    if (meta.contains("experiment") && meta["experiment"].contains("id")) {
      FERRY_RETURN_IF_ERROR(store->SetExperimentMetrics(
          meta["experiment"]["id"].get<int64_t>(), "evaluate",
          json{{"metrics", metrics}, {"gates", gates_json["passed"]}}.dump()));
    }
    std::vector<std::string> failed;
    for (const model::GateResult& r : results) {
      if (r.passed) continue;
      std::string what = r.value ? fmt::format("{} = {:.6g}", r.name, *r.value) : r.name;
      if (r.threshold) what += fmt::format(", threshold {:.6g} ({})", *r.threshold, r.text);
      if (!r.detail.empty()) what += ": " + r.detail;
      failed.push_back(what);
    }
    if (!failed.empty()) {
      return absl::FailedPreconditionError(
          fmt::format("{} gate(s) failed, so the model is not registered: {}; report: {}",
                      failed.size(), fmt::join(failed, "; "), out + "/report.txt"));
    }
    return absl::OkStatus();
  }

 private:
  // This model's weights against the newest usable version of `model_name` of the same type.
  static model::GateResult WeightShiftGate(const model::Gate& g, state::StateStore& store,
                                           storage::ArtifactStore& lake,
                                           const std::string& model_name, const json& meta) {
    if (!meta.contains("weights")) {
      return model::Unmeasured(g,
                               fmt::format("a '{}' model has no weight summary; remove this gate",
                                           meta.value("type", "")));
    }
    absl::StatusOr<std::vector<state::ModelVersionRecord>> versions =
        store.ListModelVersions(model_name);
    if (!versions.ok() && !absl::IsNotFound(versions.status())) {
      return model::Unmeasured(g, std::string(versions.status().message()));
    }
    if (versions.ok()) {
      for (auto it = versions->rbegin(); it != versions->rend(); ++it) {
        if (!state::IsUsableModelState(it->state)) continue;
        absl::StatusOr<std::string> dir = model_steps::ArtifactFolder(lake, it->artifact_uri);
        if (!dir.ok()) continue;
        absl::StatusOr<std::string> text = ReadFile(*dir + "/" + model::kBundleMeta);
        if (!text.ok()) continue;
        json before = json::parse(*text, nullptr, false);
        if (!before.is_object() || before.value("type", "") != meta.value("type", "") ||
            !before.contains("weights")) {
          continue;
        }
        absl::StatusOr<double> d = model::WeightShift(meta["weights"], before["weights"]);
        std::string label = fmt::format("vs {}:{}", it->model, it->version);
        if (!d.ok()) return model::Unmeasured(g, std::string(d.status().message()));
        return model::Decide(g, *d, std::nullopt, label);
      }
    }
    model::GateResult r = model::Decide(g, 0.0, std::nullopt,
                                        fmt::format("no earlier {} version of {}: nothing to "
                                                    "compare with",
                                                    meta.value("type", ""), model_name));
    return r;
  }

  // Refits with the same rows, hyperparameters and seed and compares predictions.
  static model::GateResult Reproducible(const model::Gate& g, const TaskContext& ctx,
                                        storage::ArtifactStore& lake, const model::Bundle& bundle,
                                        const data::Table& rows, const model::Predictions& offline,
                                        const std::string& scratch) {
    const json& meta = bundle.meta;
    const json& ds = meta.value("dataset", json::object());
    absl::StatusOr<storage::DatasetVersionInfo> v = storage::ResolveDataset(
        lake, fmt::format("{}@{}", ds.value("name", ""), ds.value("version", "")));
    if (!v.ok()) return model::Unmeasured(g, std::string(v.status().message()));
    absl::StatusOr<std::string> dir = data_steps::DatasetDir(lake, *v);
    if (!dir.ok()) return model::Unmeasured(g, std::string(dir.status().message()));
    const std::string part = ds.value("part", "");
    model::Predictions again;
    if (bundle.model == nullptr) {
      // A Python model: its training command again, into a scratch model folder.
      const std::string model_dir = scratch + "/retrain/model";
      const std::string channel = ds.value("channel", "data");
      std::string var = "SM_CHANNEL_";
      for (char c : channel) var += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      absl::Status s = MakeDirs(model_dir);
      if (s.ok()) {
        s = model_steps::RunModelCommand(
            meta.value("command", ""), {"train"}, ctx.project_dir,
            {{"SM_MODEL_DIR", model_dir},
             {"SM_OUTPUT_DIR", scratch + "/retrain/output"},
             {"SM_CHANNELS", json::array({channel}).dump()},
             {"SM_HPS", model_steps::PythonHyperparameters(
                            ctx.params, meta.value("hyperparameters", json::object()))},
             {var, *dir}});
      }
      if (!s.ok()) return model::Unmeasured(g, std::string(s.message()));
      const std::string on_dir = data_steps::ChannelDir(ctx, ctx.step["fields"]["on"]);
      std::string on_part = data_steps::PartOf(ctx.step["fields"]["on"].get<std::string>());
      absl::StatusOr<model::Predictions> p =
          model_steps::PythonPredict(meta, model_dir, on_dir, on_part.empty() ? "test" : on_part,
                                     scratch + "/again", ctx.project_dir, {}, rows.num_rows());
      if (!p.ok()) return model::Unmeasured(g, std::string(p.status().message()));
      again = std::move(*p);
    } else {
      absl::StatusOr<json> manifest = data_steps::ReadDatasetManifest(*dir);
      if (!manifest.ok()) return model::Unmeasured(g, std::string(manifest.status().message()));
      absl::StatusOr<data::Table> train = data_steps::ReadDatasetPart(*dir, *manifest, part);
      if (!train.ok()) return model::Unmeasured(g, std::string(train.status().message()));
      const model::ModelType* type = model::FindModelType(meta.value("type", ""));
      absl::StatusOr<std::unique_ptr<model::Model>> m =
          type->Fit(*train, {.target = meta.value("target", ""),
                             .hyperparameters = meta.value("hyperparameters", json::object()),
                             .seed = meta.value("seed", uint64_t{0})});
      if (!m.ok()) return model::Unmeasured(g, std::string(m.status().message()));
      absl::StatusOr<model::Predictions> p = (*m)->Predict(rows);
      if (!p.ok()) return model::Unmeasured(g, std::string(p.status().message()));
      again = std::move(*p);
    }
    return model::DecideTolerance(g, model_steps::MaxAbsDiff(offline, again),
                                  fmt::format("retrained on {} with seed {}", ds.value("label", ""),
                                              meta.value("seed", uint64_t{0})));
  }

  // The evaluation rows as JSON instances through the serving path (a fresh load of the bundle,
  // the request parsed from its text, the bundled transform), against the offline predictions.
  static model::GateResult ServingParity(const model::Gate& g, const model::Bundle& bundle,
                                         const data::Table& rows,
                                         const std::optional<data::Table>& raw,
                                         const model::Predictions& offline) {
    if (bundle.model == nullptr) {
      return model::Unmeasured(
          g,
          "serving parity of Python models is checked by their own tests (the runner's serve "
          "and predict share one code path); remove this gate for a Python model");
    }
    const bool transformed =
        bundle.meta.contains("transform") && bundle.meta["transform"].is_object();
    if (transformed && !raw) {
      return model::Unmeasured(
          g,
          "the evaluation set has no raw input rows (a transform's split part has them): "
          "evaluate on a transform step's test part");
    }
    absl::StatusOr<model::Bundle> fresh = model::LoadBundle(bundle.dir);
    if (!fresh.ok()) return model::Unmeasured(g, std::string(fresh.status().message()));
    const std::string body =
        json{{"instances", model::TableToInstances(transformed ? *raw : rows)}}.dump();
    absl::StatusOr<json> response = model::ScoreInstances(*fresh, json::parse(body));
    if (!response.ok()) return model::Unmeasured(g, std::string(response.status().message()));
    absl::StatusOr<model::Predictions> served = model_steps::PredictionsFromJson(
        json::parse(response->dump())["predictions"], offline.task, offline.classes);
    if (!served.ok()) return model::Unmeasured(g, std::string(served.status().message()));
    return model::DecideTolerance(
        g, model_steps::MaxAbsDiff(offline, *served),
        fmt::format("{} rows as JSON requests{}", rows.num_rows(),
                    transformed ? " of raw columns through the bundled transform" : ""));
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeEvaluateStep() { return std::make_unique<EvaluateStep>(); }

}  // namespace ferry::pipeline
