#include "ferry/pipeline/step_kind.h"

#include "fmt/format.h"

namespace ferry::pipeline {

absl::Status StepKind::RunTask(const TaskContext&) const {
  return absl::UnimplementedError(
      fmt::format("step kind '{}' runs its own process, not `ferry task`", name()));
}

void StepKindRegistry::Add(std::unique_ptr<StepKind> kind) { kinds_.push_back(std::move(kind)); }

const StepKind* StepKindRegistry::Find(const std::string& name) const {
  for (const auto& k : kinds_) {
    if (k->name() == name) return k.get();
  }
  return nullptr;
}

config::StepKindSchemas StepKindRegistry::Schemas() const {
  config::StepKindSchemas out;
  for (const auto& k : kinds_) {
    out[k->name()] = {
        .keys = k->extra_keys(), .value_is_step = k->value_is_step(), .step_keys = k->step_keys()};
  }
  return out;
}

const StepKindRegistry& StepKindRegistry::Default() {
  static const StepKindRegistry* registry = [] {
    auto* r = new StepKindRegistry();
    // One line per built-in kind; each kind is one self-contained file.
    r->Add(MakeCommandStep());
    r->Add(MakeSqlStep());
    r->Add(MakeValidateStep());
    r->Add(MakeTransformStep());
    r->Add(MakeTrainStep());
    r->Add(MakeEvaluateStep());
    r->Add(MakeRegisterStep());
    r->Add(MakeBatchStep());
    r->Add(MakeMonitorStep());
    r->Add(MakeInferenceLogStep());
    return r;
  }();
  return *registry;
}

absl::StatusOr<config::PipelineSpec> LoadAndValidate(const std::string& path,
                                                     const config::ProjectConfig& project,
                                                     const StepKindRegistry& registry,
                                                     config::Diagnostics* diags) {
  config::Diagnostics local;
  config::Diagnostics& d = diags ? *diags : local;
  size_t before = d.size();
  config::PipelineSpec spec = config::ParsePipeline(path, project, registry.Schemas(), &d);
  // An evaluate step compares with the model its register step names, unless it says `model:`.
  for (const config::StepSpec& step : spec.steps) {
    if (step.kind != "register" || !step.fields.contains("model")) continue;
    const nlohmann::json& value = step.fields["register"];
    for (const nlohmann::json& ref : value.is_array() ? value : nlohmann::json::array({value})) {
      for (config::StepSpec& other : spec.steps) {
        if (ref.is_string() && other.name == ref.get<std::string>() && other.kind == "evaluate" &&
            !other.fields.contains("model")) {
          other.fields["model"] = step.fields["model"];
        }
      }
    }
  }
  // The kinds check their own fields even when the file has other errors: all errors at once.
  for (const config::StepSpec& step : spec.steps) {
    if (const StepKind* kind = registry.Find(step.kind)) kind->Validate(step, project, &d);
  }
  if (d.size() != before) {
    config::Diagnostics mine;
    for (size_t i = before; i < d.size(); ++i) mine.Add(d.items()[i].loc, d.items()[i].message);
    return mine.ToStatus();
  }
  return spec;
}

}  // namespace ferry::pipeline
