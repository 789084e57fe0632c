// `ferry labels ENDPOINT --input FILE [--id-column transaction_id] --label COLUMN [--json]`:
// ingests ground truth (outcomes keyed by the transaction ids the endpoint answered with) into
// labels/<ENDPOINT>/ in the lake, where `ferry monitor` and the `inference_log` step join it with
// the inference log (docs/monitoring.md).

#include "ferry/monitor/labels.h"

#include <unistd.h>

#include "ferry/cli/cli_common.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

struct LabelsOptions {
  std::string endpoint;
  std::string input;
  std::string id_column = "transaction_id";
  std::string label;
  bool as_json = false;
};

int LabelsMain(const GlobalOptions& g, const LabelsOptions& o) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<monitor::LabelIngest> ingest = monitor::IngestLabels(
      *project->lake, o.endpoint, o.input, o.id_column, o.label, SystemClock::Get());
  if (!ingest.ok()) return Fail(ingest.status());
  const std::string uri = project->lake->Uri(ingest->key);
  if (o.as_json) {
    fmt::print("{}\n", nlohmann::json{{"endpoint", o.endpoint},
                                      {"input", o.input},
                                      {"rows", ingest->rows},
                                      {"duplicates", ingest->duplicates},
                                      {"skipped", ingest->skipped},
                                      {"key", ingest->key},
                                      {"uri", uri}}
                           .dump(2));
    return kExitOk;
  }
  fmt::print("labels of endpoint {}: {} rows from {} ({} duplicate ids, {} skipped)\n", o.endpoint,
             ingest->rows, o.input, ingest->duplicates, ingest->skipped);
  fmt::print("written to {}\n", uri);
  return kExitOk;
}

}  // namespace

void RegisterLabelsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<LabelsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "labels", "Ingest ground truth keyed by transaction id, for `ferry monitor` to join");
  cmd->add_option("ENDPOINT", o->endpoint, "The endpoint whose answers these labels are for")
      ->required();
  cmd->add_option("--input", o->input, "A CSV or JSONL file (.zst too) with an id and a label")
      ->required();
  cmd->add_option("--id-column", o->id_column,
                  "The column holding the transaction id (default transaction_id)");
  cmd->add_option("--label", o->label, "The column holding the outcome, e.g. churned")->required();
  cmd->add_flag("--json", o->as_json, "JSON output");
  cmd->callback([&g, &rc, o] { rc = LabelsMain(g, *o); });
}

}  // namespace ferry::cli
