// `ferry validate-data RULES (--dataset REF [--part P] | --file CSV [--on-bad-row ...]) [--json]`:
// checks a dataset version of the lake, or a CSV file, against a rules file, as a `validate` step
// would, and prints the report. Exit 0 when no error-level rule fails, 1 when one does
// (docs/data.md).

#include "absl/time/clock.h"
#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/data/csv.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/storage/datasets.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

struct ValidateDataOptions {
  std::string rules;
  std::string dataset;
  std::string part;
  std::string file;
  std::string on_bad_row = "fail";
  size_t max_bad_rows = 0;
  std::string quarantine;
  bool json = false;
};

// The CSV file named by --file, read under the malformed-row policy of the flags.
absl::StatusOr<data::Table> ReadFileArg(const ValidateDataOptions& o) {
  if (!PathExists(o.file)) {
    return absl::NotFoundError(fmt::format("data file {} not found", o.file));
  }
  data::CsvReadOptions opts;
  FERRY_ASSIGN_OR_RETURN(opts.on_bad_row, data::ParseBadRowPolicy(o.on_bad_row));
  opts.max_bad_rows = o.max_bad_rows;
  opts.quarantine_path = o.quarantine;
  if (opts.on_bad_row == data::BadRowPolicy::kQuarantine && o.quarantine.empty()) {
    return absl::InvalidArgumentError("--on-bad-row quarantine needs --quarantine FILE");
  }
  FERRY_ASSIGN_OR_RETURN(data::CsvReadResult r, data::ReadCsvFile(o.file, opts));
  if (r.bad_row_count > 0) {
    fmt::print(stderr, "{}: {} bad row(s) {}{}\n", o.file, r.bad_row_count,
               opts.on_bad_row == data::BadRowPolicy::kQuarantine ? "quarantined to " : "skipped",
               o.quarantine);
  }
  return std::move(r.table);
}

int ValidateDataMain(const GlobalOptions& g, const ValidateDataOptions& o) {
  if (!PathExists(o.rules)) {
    return Fail(absl::NotFoundError(fmt::format("rules file {} not found", o.rules)));
  }
  if (o.dataset.empty() == o.file.empty()) {
    return Fail(absl::InvalidArgumentError("give exactly one of --dataset REF and --file CSV"));
  }
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<data::Table> table;
  std::string label = o.file;
  if (!o.file.empty()) {
    table = ReadFileArg(o);
  } else {
    auto v = storage::ResolveDataset(*project->lake, o.dataset);
    if (!v.ok()) return Fail(v.status());
    auto dir = pipeline::data_steps::DatasetDir(*project->lake, *v);
    if (!dir.ok()) return Fail(dir.status());
    table = pipeline::data_steps::ReadDatasetPart(*dir, v->manifest, o.part);
    label = fmt::format("{}@{}", v->name, v->ordinal);
    if (!o.part.empty()) label += "." + o.part;
  }
  if (!table.ok()) return Fail(table.status());
  auto report = pipeline::data_steps::CheckDataset(o.rules, *table, label, project->config.lake_uri,
                                                   absl::ToUnixMicros(absl::Now()));
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
  cmd->add_option("--dataset", o->dataset,
                  "A dataset version: NAME, NAME@N, NAME@ID or NAME@latest");
  cmd->add_option("--file", o->file, "A CSV file (.csv or .csv.zst) instead of a dataset");
  cmd->add_option("--on-bad-row", o->on_bad_row, "--file: fail (default), skip or quarantine");
  cmd->add_option("--max-bad-rows", o->max_bad_rows, "--file: the most bad rows tolerated");
  cmd->add_option("--quarantine", o->quarantine, "--file: where quarantined rows go (CSV)");
  cmd->add_option("--part", o->part, "train or test, for a split dataset (default: train)");
  cmd->add_flag("--json", o->json, "JSON report");
  cmd->callback([&g, &rc, o] { rc = ValidateDataMain(g, *o); });
}

}  // namespace ferry::cli
