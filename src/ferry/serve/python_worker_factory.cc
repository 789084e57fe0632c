// PythonWorkerFactory (worker_pool.h): Python models served by a WorkerPool, with the rows and
// predictions of the built-in models. In its own target because it reads predictions with the
// model steps' PredictionsFromJson (ferry_pipeline).

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ferry/common/status.h"
#include "ferry/model/bundle.h"
#include "ferry/pipeline/model_steps.h"
#include "ferry/serve/worker_pool.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace ferry::serve {

using nlohmann::json;

namespace {

// A Python model as the built-ins serve: rows typed by the input schema, through the bundle's
// transform, to the workers; their answer read with the bundle's task and classes.
class PythonModelPredictor final : public Predictor {
 public:
  PythonModelPredictor(std::unique_ptr<WorkerPool> pool, json meta, model::Task task)
      : pool_(std::move(pool)),
        meta_(std::move(meta)),
        schema_(meta_.value("input_schema", json::array())),
        task_(task),
        classes_(meta_.value("classes", std::vector<std::string>{})) {}

  absl::StatusOr<json> Predict(const json& rows) override {
    json instances = rows;
    if (!schema_.empty()) {
      FERRY_ASSIGN_OR_RETURN(data::Table raw, model::InstancesToTable(rows, schema_));
      FERRY_ASSIGN_OR_RETURN(data::Table features, model::PrepareFeatures(meta_, std::move(raw)));
      instances = model::TableToInstances(features);
    }
    FERRY_ASSIGN_OR_RETURN(json out, pool_->Predict(instances));
    absl::StatusOr<model::Predictions> p =
        pipeline::model_steps::PredictionsFromJson(out, task_, classes_);
    if (!p.ok()) {
      return absl::InternalError(
          fmt::format("the model's predictions do not fit its model.json (task {}, classes {}): {}",
                      meta_.value("task", ""), fmt::join(classes_, ", "), p.status().message()));
    }
    return model::PredictionsToJson(*p);
  }

  bool Ready() const override { return pool_->Ready(); }

 private:
  const std::unique_ptr<WorkerPool> pool_;
  const json meta_;
  const json schema_;
  const model::Task task_;
  const std::vector<std::string> classes_;
};

}  // namespace

ExternalPredictorFactory PythonWorkerFactory(std::string project_dir, WorkerPoolOptions defaults) {
  return [project_dir = std::move(project_dir), defaults = std::move(defaults)](
             const ServedModel& m) -> absl::StatusOr<std::shared_ptr<Predictor>> {
    const std::string command = m.meta.value("command", "");
    if (command.empty()) {
      return absl::FailedPreconditionError(fmt::format(
          "{}/{} has no \"command\": a '{}' model cannot be served by workers (only Python "
          "models trained with model: {{command: ...}} can)",
          m.folder, model::kBundleMeta, m.type));
    }
    const std::string task_name = m.meta.value("task", "");
    std::optional<model::Task> task = model::ParseTaskName(task_name);
    if (!task) {
      return absl::InvalidArgumentError(
          fmt::format("{}/{}: task '{}' is not binary, multiclass or regression", m.folder,
                      model::kBundleMeta, task_name));
    }
    WorkerPoolOptions o = defaults;
    o.command = command;
    o.model_dir = fmt::format("{}/{}", m.folder, model::kBundleModelDir);
    o.cwd = project_dir;
    o.env.emplace("FERRY_PROJECT_DIR", project_dir);  // as in a task; defaults.env wins
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<WorkerPool> pool, WorkerPool::Start(std::move(o)));
    return std::shared_ptr<Predictor>(
        std::make_shared<PythonModelPredictor>(std::move(pool), m.meta, *task));
  };
}

}  // namespace ferry::serve
