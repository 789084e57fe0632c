// The `validate` step kind: checks the dataset of an upstream step against a rules file and
// fails the run when an error-level rule fails (warnings are recorded). The report goes to
// output/data/report.{json,txt}; the dataset itself is passed on unchanged (hard links), so that
// the next step reads the validated data (docs/data.md).
//
//   check:
//     validate: extract                 # the upstream step (its dataset); `features.test` = a part
//     rules: checks/customers.yaml      # project-relative; its content is part of the cache key

#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/data/table.h"
#include "ferry/data/validate.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

class ValidateStep final : public StepKind {
 public:
  std::string name() const override { return "validate"; }
  std::set<std::string> extra_keys() const override { return {"rules"}; }
  bool value_is_step() const override { return true; }
  std::vector<std::string> Files(const ResolvedStep& step) const override {
    return {step.fields["rules"].get<std::string>()};
  }

  void Validate(const config::StepSpec& step, const config::ProjectConfig& project,
                config::Diagnostics* diags) const override {
    data_steps::CheckOneStep(step, diags);
    std::string rules =
        data_steps::CheckProjectFile(step, project, "rules", "a rules file (.yaml)", diags);
    if (rules.empty() || rules.find("{{") != std::string::npos) return;
    absl::StatusOr<data::RuleSet> parsed = data::LoadRules(rules);
    if (!parsed.ok()) {
      diags->Add(data_steps::FieldLoc(step, "rules"),
                 fmt::format("step '{}': rules file {} is not valid:\n{}", step.name,
                             step.fields["rules"].get<std::string>(), parsed.status().message()));
    }
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const nlohmann::json& fields = ctx.step["fields"];
    const std::string ref = fields["validate"].get<std::string>();
    const std::string in = data_steps::ChannelDir(ctx, ref);
    FERRY_ASSIGN_OR_RETURN(nlohmann::json manifest, data_steps::ReadDatasetManifest(in));
    FERRY_ASSIGN_OR_RETURN(data::Table table,
                           data_steps::ReadDatasetPart(in, manifest, data_steps::PartOf(ref)));
    std::optional<int64_t> now = data::ParseTimestamp(ctx.run_ts);
    if (!now) return absl::InvalidArgumentError("FERRY_RUN_TS is not set or not a timestamp");
    std::string label =
        fmt::format("{}@{}", manifest.value("dataset", ref), manifest.value("ordinal", 0));
    FERRY_ASSIGN_OR_RETURN(
        data::ValidationReport report,
        data_steps::CheckDataset(AbsolutePath(fields["rules"].get<std::string>(), ctx.project_dir),
                                 table, label, ctx.lake_uri, *now));

    const std::string out = ctx.workdir + "/output/data";
    FERRY_RETURN_IF_ERROR(MakeDirs(out));
    for (const nlohmann::json& f : manifest["files"]) {
      FERRY_RETURN_IF_ERROR(data_steps::LinkOrCopy(in, out, f["path"].get<std::string>()));
    }
    FERRY_RETURN_IF_ERROR(data_steps::LinkOrCopy(in, out, "manifest.json"));
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(out + "/report.json", report.ToJson().dump(2), false));
    std::string text = report.ToText();
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(out + "/report.txt", text, false));
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    if (!report.passed()) {
      return absl::FailedPreconditionError(
          fmt::format("validation of {} failed: {} error(s), {} warning(s); report: {}", label,
                      report.errors(), report.warnings(), out + "/report.txt"));
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeValidateStep() { return std::make_unique<ValidateStep>(); }

}  // namespace ferry::pipeline
