// The `register` step kind: registers an evaluated model bundle as a new version of a model in
// the registry (the state store), copies it to models/<name>/<version>/ in the lake, marks it
// validated (its gates passed, or `evaluate` would have failed the run) and points an alias at
// it. Given several evaluate steps, it registers the best by a metric and prints the comparison.
//
//   register:
//     register: evaluate             # or [eval_logistic, eval_xgboost] with best_by: auc
//     model: churn
//     alias: champion                # optional
//     best_by: auc                   # with a list: the metric that picks the candidate
//
// A retried or resumed task registers nothing twice: the registration's idempotency key is
// "<run id>/<task>".

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
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

using json = nlohmann::json;

struct Candidate {
  std::string step;
  std::string dir;
  json meta;
  json metrics;  // metrics.json
};

std::vector<std::string> Refs(const json& value) {
  std::vector<std::string> out;
  if (value.is_string()) out.push_back(value.get<std::string>());
  if (value.is_array()) {
    for (const json& v : value) out.push_back(v.get<std::string>());
  }
  return out;
}

class RegisterStep final : public StepKind {
 public:
  std::string name() const override { return "register"; }
  std::set<std::string> extra_keys() const override { return {"model", "alias", "best_by"}; }
  bool value_is_step() const override { return true; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    if (!step.fields.contains("model") || !step.fields["model"].is_string()) {
      diags->Add(step.loc, fmt::format("step '{}': register needs model: the name to register "
                                       "the model under (e.g. model: churn)",
                                       step.name));
    } else if (absl::Status s = state::CheckModelName(step.fields["model"].get<std::string>());
               !s.ok() && step.fields["model"].get<std::string>().find("{{") == std::string::npos) {
      diags->Add(data_steps::FieldLoc(step, "model"),
                 fmt::format("step '{}': {}", step.name, s.message()));
    }
    if (step.fields.contains("alias")) {
      if (!step.fields["alias"].is_string()) {
        diags->Add(data_steps::FieldLoc(step, "alias"),
                   fmt::format("step '{}': alias must be a name", step.name));
      } else if (absl::Status s = state::CheckAliasName(step.fields["alias"].get<std::string>());
                 !s.ok()) {
        diags->Add(data_steps::FieldLoc(step, "alias"),
                   fmt::format("step '{}': {}", step.name, s.message()));
      }
    }
    const bool many = step.fields["register"].is_array() && step.fields["register"].size() > 1;
    if (many && !step.fields.contains("best_by")) {
      diags->Add(data_steps::FieldLoc(step, "register"),
                 fmt::format("step '{}': with several candidates, say which metric picks the "
                             "one to register: best_by: auc (or logloss, rmse, ...)",
                             step.name));
    }
    if (step.fields.contains("best_by")) {
      if (!step.fields["best_by"].is_string() ||
          !model::HigherIsBetter(step.fields["best_by"].get<std::string>()).ok()) {
        diags->Add(data_steps::FieldLoc(step, "best_by"),
                   fmt::format("step '{}': best_by must be a metric name: {}", step.name,
                               fmt::join(model::MetricNames(), ", ")));
      }
    }
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const json& fields = ctx.step["fields"];
    const std::string model_name = fields["model"].get<std::string>();
    std::vector<Candidate> candidates;
    for (const std::string& ref : Refs(fields["register"])) {
      Candidate c{.step = ref, .dir = data_steps::ChannelDir(ctx, ref)};
      FERRY_ASSIGN_OR_RETURN(std::string meta, ReadFile(c.dir + "/" + model::kBundleMeta));
      c.meta = json::parse(meta, nullptr, false);
      absl::StatusOr<std::string> metrics = ReadFile(c.dir + "/" + model::kBundleMetrics);
      if (!metrics.ok()) {
        return absl::FailedPreconditionError(fmt::format(
            "step '{}' left no {}: register an evaluate step's result, so that its gates are "
            "checked first (register: <evaluate step>)",
            ref, model::kBundleMetrics));
      }
      c.metrics = json::parse(*metrics, nullptr, false);
      candidates.push_back(std::move(c));
    }
    size_t best = 0;
    if (candidates.size() > 1) {
      const std::string metric = fields["best_by"].get<std::string>();
      FERRY_ASSIGN_OR_RETURN(bool higher, model::HigherIsBetter(metric));
      std::vector<double> values;
      std::printf("%-16s %-20s %12s\n", "candidate", "type", metric.c_str());
      for (const Candidate& c : candidates) {
        FERRY_ASSIGN_OR_RETURN(double v, model::MetricValue(c.metrics["metrics"], metric));
        values.push_back(v);
        std::printf("%-16s %-20s %12.4f\n", c.step.c_str(), c.meta.value("type", "").c_str(), v);
      }
      for (size_t i = 1; i < values.size(); ++i) {
        if (higher ? values[i] > values[best] : values[i] < values[best]) best = i;
      }
      std::printf("best by %s: %s\n", metric.c_str(), candidates[best].step.c_str());
    }
    const Candidate& chosen = candidates[best];

    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<state::StateStore> store, model_steps::OpenStore(ctx));
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                           storage::OpenArtifactStore(ctx.lake_uri));
    json metadata = {{"type", chosen.meta.value("type", "")},
                     {"task", chosen.meta.value("task", "")},
                     {"target", chosen.meta.value("target", "")},
                     {"dataset", chosen.meta.value("dataset", json(nullptr))},
                     {"git_commit", chosen.meta.value("git_commit", json(nullptr))},
                     {"experiment", chosen.meta.value("experiment", json(nullptr))},
                     {"hyperparameters", chosen.meta.value("hyperparameters", json(nullptr))},
                     {"gates", chosen.metrics.value("gates", json(nullptr))},
                     {"candidate", chosen.step}};
    FERRY_ASSIGN_OR_RETURN(
        state::ModelVersionRecord v,
        store->RegisterModelVersion(
            {.model = model_name,
             .artifact_uri = "",
             .run_id = ctx.run_id,
             .task = ctx.task,
             .idempotency_key = ctx.run_id + "/" + ctx.task,
             .metrics_json = chosen.metrics.value("metrics", json::object()).dump(),
             .metadata_json = metadata.dump(),
             .actor = "pipeline " + ctx.pipeline}));
    // The bundle's copy in the lake, committed (manifest last) before anyone is pointed at it.
    FERRY_ASSIGN_OR_RETURN(std::string key,
                           storage::layout::ModelVersion(model_name, std::to_string(v.version)));
    if (absl::Status s = lake->CheckCommitted(key); absl::IsNotFound(s)) {
      FERRY_ASSIGN_OR_RETURN(std::vector<std::string> files, ListFilesRecursive(chosen.dir));
      json listed = json::array();
      for (const std::string& f : files) {
        if (f == "report.txt") continue;
        FERRY_RETURN_IF_ERROR(lake->PutFile(key + "/" + f, chosen.dir + "/" + f));
        listed.push_back({{"path", f}});
      }
      json manifest = {{"model", model_name},
                       {"version", v.version},
                       {"files", listed},
                       {"run_id", ctx.run_id},
                       {"task", ctx.task}};
      FERRY_RETURN_IF_ERROR(lake->Commit(key, manifest.dump(2)));
    } else if (!s.ok()) {
      return s;
    }
    const std::string uri = lake->Uri(key);
    if (v.artifact_uri != uri) {
      FERRY_ASSIGN_OR_RETURN(v, store->SetModelVersionArtifact(model_name, v.version, uri));
    }
    if (v.state == state::model_state::kRegistered) {
      FERRY_ASSIGN_OR_RETURN(
          v, store->TransitionModelVersion({.model = model_name,
                                            .version = v.version,
                                            .from = state::model_state::kRegistered,
                                            .to = state::model_state::kValidated,
                                            .expected_revision = v.revision,
                                            .reason = "every gate of its evaluation passed",
                                            .actor = "pipeline " + ctx.pipeline}));
    }
    std::string alias_text;
    if (fields.contains("alias")) {
      const std::string alias = fields["alias"].get<std::string>();
      FERRY_RETURN_IF_ERROR(store
                                ->SetAlias({.model = model_name,
                                            .alias = alias,
                                            .version = v.version,
                                            .reason = fmt::format("registered by {}", ctx.task),
                                            .actor = "pipeline " + ctx.pipeline})
                                .status());
      alias_text = fmt::format(", alias {} -> {}", alias, v.version);
    }
    if (chosen.meta.contains("experiment") && chosen.meta["experiment"].contains("id")) {
      FERRY_RETURN_IF_ERROR(
          store->SetExperimentModelVersion(chosen.meta["experiment"]["id"].get<int64_t>(),
                                           fmt::format("{}:{}", model_name, v.version)));
    }
    json registered = {{"model", model_name},      {"version", v.version},
                       {"state", v.state},         {"artifact_uri", uri},
                       {"candidate", chosen.step}, {"alias", fields.value("alias", "")}};
    const std::string out = ctx.workdir + "/output/data";
    FERRY_RETURN_IF_ERROR(MakeDirs(out));
    FERRY_RETURN_IF_ERROR(
        WriteFileAtomic(out + "/registered.json", registered.dump(2) + "\n", /*durable=*/false));
    std::printf("registered %s:%lld (%s) from %s%s: %s\n", model_name.c_str(),
                static_cast<long long>(v.version), v.state.c_str(), chosen.step.c_str(),
                alias_text.c_str(), uri.c_str());
    std::fflush(stdout);
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeRegisterStep() { return std::make_unique<RegisterStep>(); }

}  // namespace ferry::pipeline
