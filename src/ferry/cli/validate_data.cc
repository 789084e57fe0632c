// `ferry validate-data RULES --dataset REF [--part P] [--json]`: checks a dataset version of the
// lake against a rules file, as a `validate` step would, and prints the report. Exit 0 when no
// error-level rule fails, 1 when one does (docs/data.md).

#include "absl/time/clock.h"
#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/storage/datasets.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

struct ValidateDataOptions {
  std::string rules;
  std::string dataset;
  std::string part;
  bool json = false;
};

int ValidateDataMain(const GlobalOptions& g, const ValidateDataOptions& o) {
  if (!PathExists(o.rules)) {
    return Fail(absl::NotFoundError(fmt::format("rules file {} not found", o.rules)));
  }
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  auto v = storage::ResolveDataset(*project->lake, o.dataset);
  if (!v.ok()) return Fail(v.status());
  auto dir = pipeline::data_steps::DatasetDir(*project->lake, *v);
  if (!dir.ok()) return Fail(dir.status());
  auto table = pipeline::data_steps::ReadDatasetPart(*dir, v->manifest, o.part);
  if (!table.ok()) return Fail(table.status());
  std::string label = fmt::format("{}@{}", v->name, v->ordinal);
  if (!o.part.empty()) label += "." + o.part;
  auto report = pipeline::data_steps::CheckDataset(
      o.rules, *table, label, project->config.lake_uri, absl::ToUnixMicros(absl::Now()));
  if (!report.ok()) return Fail(report.status());
  if (o.json) {
    fmt::print("{}\n", report->ToJson().dump(2));
  } else {
    fmt::print("{}", report->ToText());
  }
  return report->passed() ? kExitOk : kExitRunFailed;
}

}  // namespace

void RegisterValidateDataCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<ValidateDataOptions>();
  CLI::App* cmd = app.add_subcommand(
      "validate-data", "Check a dataset version against a rules file (exit 1 when a rule fails)");
  cmd->add_option("RULES", o->rules, "The rules file (YAML; docs/data.md)")->required();
  cmd->add_option("--dataset", o->dataset, "NAME, NAME@N, NAME@ID or NAME@latest")->required();
  cmd->add_option("--part", o->part, "train or test, for a split dataset (default: train)");
  cmd->add_flag("--json", o->json, "JSON report");
  cmd->callback([&g, &rc, o] { rc = ValidateDataMain(g, *o); });
}

}  // namespace ferry::cli
