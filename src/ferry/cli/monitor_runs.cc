// Monitor runs on the command line (docs/monitoring.md):
//   ferry monitor-runs [ENDPOINT] [--limit N] [--json]   the runs, newest first
//   ferry monitor-run show ID [--json]                   one run: its record, result and report

#include "ferry/cli/cli_common.h"
#include "ferry/common/units.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/artifact_store.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

json ObjectOf(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

// The window as asked (spec_json's "window_seconds", monitor/monitor.h MonitorSpecToJson), in
// days or hours when it is whole ones.
std::string WindowText(const json& spec) {
  if (!spec.contains("window_seconds") || !spec["window_seconds"].is_number()) return "-";
  const int64_t s = spec["window_seconds"].get<int64_t>();
  if (s > 0 && s % 86400 == 0) return fmt::format("{}d", s / 86400);
  if (s > 0 && s % 3600 == 0) return fmt::format("{}h", s / 3600);
  return HumanDuration(absl::Seconds(s));
}

// The local file of a report URI of a local lake, else the URI ("-" when there is none).
std::string ReportPath(storage::ArtifactStore& lake, const json& result, const char* key) {
  if (!result.contains(key) || !result[key].is_string()) return "-";
  const std::string uri = result[key].get<std::string>();
  absl::StatusOr<std::string> k = storage::KeyOf(lake, uri);
  if (!k.ok()) return uri;
  absl::StatusOr<std::string> path = lake.LocalPath(*k);
  return path.ok() ? *path : uri;
}

json RunJson(storage::ArtifactStore& lake, const state::JobRecord& r) {
  const json spec = ObjectOf(r.spec_json);
  const json result = ObjectOf(r.result_json);
  return {{"id", r.id},
          {"endpoint", r.subject},
          {"state", r.state},
          {"window", WindowText(spec)},
          {"alerts", result.value("alerts", json(nullptr))},
          {"rows", result.value("rows", json(nullptr))},
          {"report_json", ReportPath(lake, result, "report_json")},
          {"report_html", ReportPath(lake, result, "report_html")},
          {"created_at", ShowTime(r.created_at)},
          {"finished_at", ShowTime(r.finished_at)},
          {"message", r.message}};
}

int MonitorRunsMain(const GlobalOptions& g, const std::string& endpoint, int limit, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<std::vector<state::JobRecord>> runs =
      project->store->ListJobs(std::string(state::MonitorRunKind().name), endpoint, limit);
  if (!runs.ok()) return Fail(runs.status());
  if (as_json) {
    json out = json::array();
    for (const auto& r : *runs) out.push_back(RunJson(*project->lake, r));
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{:<24} {:<14} {:<8} {:<7} {:>6}  {:<20} {}\n", "RUN", "ENDPOINT", "STATE", "WINDOW",
             "ALERTS", "CREATED", "REPORT");
  for (const auto& r : *runs) {
    const json j = RunJson(*project->lake, r);
    fmt::print("{:<24} {:<14} {:<8} {:<7} {:>6}  {:<20} {}\n", r.id, r.subject, r.state,
               j["window"].get<std::string>(), j["alerts"].is_number() ? j["alerts"].dump() : "-",
               ShowTime(r.created_at),
               r.state == "failed" ? r.message : j["report_html"].get<std::string>());
  }
  if (runs->empty()) {
    fmt::print("(no monitor runs{}: ferry monitor ENDPOINT --window 7d)\n",
               endpoint.empty() ? "" : " of " + endpoint);
  }
  return kExitOk;
}

int MonitorRunShowMain(const GlobalOptions& g, const std::string& id, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<state::JobRecord> r = GetJobOfKind(
      *project->store, id, state::MonitorRunKind().name, "monitor run", "ferry monitor-runs");
  if (!r.ok()) return Fail(r.status());
  json j = RunJson(*project->lake, *r);
  j["spec"] = ObjectOf(r->spec_json);
  j["result"] = ObjectOf(r->result_json);
  j["started_at"] = ShowTime(r->started_at);
  j["actor"] = r->actor;
  if (as_json) {
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  fmt::print("monitor run {} of endpoint {}: {}{}\n", r->id, r->subject, r->state,
             r->message.empty() ? "" : " — " + r->message);
  fmt::print("  created {}  started {}  finished {}  by {}\n", ShowTime(r->created_at),
             ShowTime(r->started_at), ShowTime(r->finished_at), r->actor);
  fmt::print("  window {}  rows {}  alerts {}\n", j["window"].get<std::string>(),
             j["rows"].is_number() ? j["rows"].dump() : "-",
             j["alerts"].is_number() ? j["alerts"].dump() : "-");
  fmt::print("  spec {}\n", j["spec"].dump());
  fmt::print("  report.json: {}\n  report.html: {}\n", j["report_json"].get<std::string>(),
             j["report_html"].get<std::string>());
  return kExitOk;
}

}  // namespace

void RegisterMonitorRunsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto endpoint = std::make_shared<std::string>();
  auto limit = std::make_shared<int>(20);
  auto list_json = std::make_shared<bool>(false);
  CLI::App* list = app.add_subcommand("monitor-runs", "List monitor runs, newest first");
  list->add_option("ENDPOINT", *endpoint, "Only the runs of this endpoint");
  list->add_option("-n,--limit", *limit, "At most this many (default 20)");
  list->add_flag("--json", *list_json, "JSON output");
  list->callback([&g, &rc, endpoint, limit, list_json] {
    rc = MonitorRunsMain(g, *endpoint, *limit, *list_json);
  });

  CLI::App* run = app.add_subcommand("monitor-run", "Inspect a monitor run");
  run->require_subcommand(1);
  auto id = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  CLI::App* show = run->add_subcommand("show", "A monitor run: state, spec, result, reports");
  show->add_option("ID", *id, "The monitor run id (m...)")->required();
  show->add_flag("--json", *show_json, "JSON output");
  show->callback([&g, &rc, id, show_json] { rc = MonitorRunShowMain(g, *id, *show_json); });
}

}  // namespace ferry::cli
