// The `train` step kind: fits a model on an upstream step's dataset and leaves a model bundle
// (model/bundle.h) in output/data for `evaluate` and `register`; records an experiment in the
// state store (docs/models.md).
//
//   train:
//     train: features                # the upstream dataset; its `train` part when it is split
//     model: { type: logistic_regression, target: churned, hyperparameters: { C: 1.0 } }
//     seed: 7                        # optional (default 0)
//     experiment: churn              # optional: the experiment name (default: the pipeline's)
//
// A built-in type is fitted in this process; `model: { command: "python3 models/churn.py",
// target: churned }` runs `<command> train` under the runner contract instead (the model saves
// itself into SM_MODEL_DIR), and evaluation runs `<command> predict`.

#include <chrono>
#include <string>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/status.h"
#include "ferry/data/transform.h"
#include "ferry/model/bundle.h"
#include "ferry/model/model.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/model_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/storage/artifact_store.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

using json = nlohmann::json;

// The classes of a classification target as the built-ins order them, for a Python model.
json TaskOf(const data::Table& table, const std::string& target) {
  const data::Column* y = table.Find(target);
  if (y == nullptr || y->type() == data::ColumnType::kFloat64) {
    return {{"task", "regression"}, {"classes", json::array()}};
  }
  absl::StatusOr<model::Labels> labels = model::ToLabels(table, target);
  if (!labels.ok()) return {{"task", "regression"}, {"classes", json::array()}};
  return {{"task", labels->classes.size() > 2 ? "multiclass" : "binary"},
          {"classes", labels->classes}};
}

class TrainStep final : public StepKind {
 public:
  std::string name() const override { return "train"; }
  std::set<std::string> extra_keys() const override { return {"model", "seed", "experiment"}; }
  bool value_is_step() const override { return true; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    data_steps::CheckOneStep(step, diags);
    model_steps::CheckModelField(step, diags);
    if (step.fields.contains("seed") &&
        !(step.fields["seed"].is_number_integer() && step.fields["seed"].get<int64_t>() >= 0) &&
        !(step.fields["seed"].is_string() &&
          step.fields["seed"].get<std::string>().find("{{") != std::string::npos)) {
      diags->Add(data_steps::FieldLoc(step, "seed"),
                 fmt::format("step '{}': seed must be a whole number >= 0", step.name));
    }
    if (step.fields.contains("experiment") && !step.fields["experiment"].is_string()) {
      diags->Add(data_steps::FieldLoc(step, "experiment"),
                 fmt::format("step '{}': experiment must be a name", step.name));
    }
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const json& fields = ctx.step["fields"];
    const json& spec = fields["model"];
    const std::string ref = fields["train"].get<std::string>();
    const std::string in = data_steps::ChannelDir(ctx, ref);
    FERRY_ASSIGN_OR_RETURN(json manifest, data_steps::ReadDatasetManifest(in));
    std::string part = data_steps::PartOf(ref);
    if (part.empty()) part = manifest["parts"].contains("data") ? "data" : "train";
    FERRY_ASSIGN_OR_RETURN(data::Table table, data_steps::ReadDatasetPart(in, manifest, part));
    const std::string target = spec["target"].get<std::string>();
    if (table.Find(target) == nullptr) {
      return absl::InvalidArgumentError(fmt::format(
          "dataset {} has no target column '{}'; its columns: {}", manifest.value("dataset", ref),
          target, fmt::join(table.ColumnNames(), ", ")));
    }
    json transform = nullptr;
    if (PathExists(in + "/transform.json")) {
      FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(in + "/transform.json"));
      transform = json::parse(text, nullptr, false);
    }
    const json hps = spec.value("hyperparameters", json::object());
    const uint64_t seed = fields.contains("seed") ? fields["seed"].get<uint64_t>() : uint64_t{0};
    const std::string model_dir = ctx.workdir + "/model";
    const std::string out = ctx.workdir + "/output/data";
    FERRY_RETURN_IF_ERROR(MakeDirs(model_dir));
    FERRY_RETURN_IF_ERROR(MakeDirs(out));

    json meta;
    json train_metrics = nullptr;
    std::string type;
    Sha256 code;
    const auto start = std::chrono::steady_clock::now();
    if (spec.contains("type")) {
      type = spec["type"].get<std::string>();
      const model::ModelType* mt = model::FindModelType(type);
      if (mt == nullptr) {
        return absl::InvalidArgumentError(
            fmt::format("unknown model type '{}'; the built-in types: {}", type,
                        fmt::join(model::ModelTypeNames(), ", ")));
      }
      FERRY_ASSIGN_OR_RETURN(
          std::unique_ptr<model::Model> m,
          mt->Fit(table, {.target = target, .hyperparameters = hps, .seed = seed}));
      FERRY_RETURN_IF_ERROR(m->Save(model_dir));
      meta = model::BundleMeta(*m, table, target, transform);
      FERRY_ASSIGN_OR_RETURN(model::Predictions p, m->Predict(table));
      FERRY_ASSIGN_OR_RETURN(train_metrics, model_steps::Score(table, target, p));
      if (!p.classes.empty()) meta["classes"] = p.classes;
      code.Field("builtin");
      code.Field(type);
    } else {
      type = "python";
      const std::string command = spec["command"].get<std::string>();
      FERRY_RETURN_IF_ERROR(model_steps::RunModelCommand(
          command, {"train"}, ctx.project_dir,
          {{"SM_HPS", model_steps::PythonHyperparameters(ctx.params, hps)}}));
      json features = json::array();
      for (const json& c : data::TableSchema(table)) {
        if (c["name"] != target) features.push_back(c);
      }
      json input_schema = features;
      if (transform.is_object() && transform.contains("input_columns")) {
        input_schema = json::array();
        for (const json& c : transform["input_columns"]) {
          if (c.value("name", "") != target) input_schema.push_back(c);
        }
      }
      json task = TaskOf(table, target);
      meta = {{"type", "python"},
              {"command", command},
              {"task", task["task"]},
              {"classes", task["classes"]},
              {"target", target},
              {"features", features},
              {"input_schema", input_schema},
              {"transform", transform}};
      code.Field("python");
      code.Field(command);
      for (const json& f : ctx.step.value("files", json::array())) {
        FERRY_ASSIGN_OR_RETURN(std::string h,
                               Sha256File(AbsolutePath(f.get<std::string>(), ctx.project_dir)));
        code.Field(h);
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    FERRY_RETURN_IF_ERROR(model_steps::LinkTree(model_dir, out + "/" + model::kBundleModelDir));
    if (manifest["parts"][part].contains("profile")) {
      const std::string profile = manifest["parts"][part]["profile"].get<std::string>();
      FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(in + "/" + profile));
      FERRY_RETURN_IF_ERROR(
          WriteFileAtomic(out + "/" + model::kBundleProfile, text, /*durable=*/false));
    }
    const std::string dataset =
        fmt::format("{}@{}", manifest.value("dataset", ref), manifest.value("ordinal", 0));
    meta["hyperparameters"] = hps;
    meta["seed"] = seed;
    meta["dataset"] = {
        {"name", manifest.value("dataset", "")},   {"version", manifest.value("version", "")},
        {"ordinal", manifest.value("ordinal", 0)}, {"part", part},
        {"channel", ref.substr(0, ref.find('.'))}, {"label", dataset}};
    std::string commit = data_steps::GitCommit(ctx.project_dir);
    meta["git_commit"] = commit.empty() ? json(nullptr) : json(commit);
    meta["metrics"] = {{"train", train_metrics}};
    meta["trained"] = {{"run_id", ctx.run_id},
                       {"pipeline", ctx.pipeline},
                       {"task", ctx.task},
                       {"seconds", seconds},
                       {"at", ctx.run_ts}};
    meta["code_hash"] = code.HexDigest().substr(0, 16);

    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<state::StateStore> store, model_steps::OpenStore(ctx));
    state::NewExperiment e;
    e.name = fields.value("experiment", ctx.pipeline);
    e.run_id = ctx.run_id;
    e.task = ctx.task;
    e.model_type = type;
    e.params_json = json{{"hyperparameters", hps}, {"seed", seed}}.dump();
    e.metrics_json =
        (train_metrics.is_null() ? json::object() : json{{"train", train_metrics}}).dump();
    e.dataset = dataset;
    e.dataset_version = manifest.value("version", "");
    e.code_hash = meta["code_hash"];
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                           storage::OpenArtifactStore(ctx.lake_uri));
    FERRY_ASSIGN_OR_RETURN(std::string task_key,
                           storage::layout::TaskDir(ctx.pipeline, ctx.run_id, ctx.task));
    e.artifact_uri = lake->Uri(task_key + "/output/data");
    e.duration_seconds = seconds;
    FERRY_ASSIGN_OR_RETURN(state::ExperimentRecord rec, store->RecordExperiment(e));
    meta["experiment"] = {{"id", rec.id}, {"name", rec.name}};
    // model.json last: a bundle folder with model.json is complete.
    FERRY_RETURN_IF_ERROR(
        WriteFileAtomic(out + "/" + model::kBundleMeta, meta.dump(1) + "\n", /*durable=*/false));
    std::string summary = fmt::format("trained {} on {} ({} rows) in {:.3f} s: experiment {}", type,
                                      dataset, table.num_rows(), seconds, rec.id);
    if (train_metrics.is_object()) {
      for (const char* k : {"roc_auc", "accuracy", "log_loss", "rmse", "r2"}) {
        if (train_metrics.contains(k) && train_metrics[k].is_number()) {
          summary += fmt::format(", train {} {:.4f}", k, train_metrics[k].get<double>());
        }
      }
    }
    std::fputs((summary + "\n").c_str(), stdout);
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeTrainStep() { return std::make_unique<TrainStep>(); }

}  // namespace ferry::pipeline
