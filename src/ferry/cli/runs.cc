// `ferry runs [--pipeline P] [--limit N] [--json]`: the runs of a project, newest first.

#include "ferry/cli/cli_common.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

struct RunsOptions {
  std::string pipeline;
  int limit = 20;
  bool json = false;
};

int RunsMain(const GlobalOptions& g, const RunsOptions& o) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  auto runs = project->store->ListRuns(o.pipeline, o.limit);
  if (!runs.ok()) return Fail(runs.status());
  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *runs) {
      out.push_back({{"id", r.id},
                     {"pipeline", r.pipeline},
                     {"state", r.state},
                     {"created_at", ShowTime(r.created_at)},
                     {"started_at", ShowTime(r.started_at)},
                     {"finished_at", ShowTime(r.finished_at)},
                     {"message", r.message}});
    }
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("{:<24} {:<20} {:<11} {:<20} {:>9}\n", "RUN", "PIPELINE", "STATE", "STARTED", "TIME");
  for (const auto& r : *runs) {
    fmt::print("{:<24} {:<20} {:<11} {:<20} {:>9}\n", r.id, r.pipeline, r.state,
               ShowTime(r.started_at), FormatSpan(r.started_at, r.finished_at));
  }
  if (runs->empty()) fmt::print("(no runs yet: ferry run pipelines/<name>.yaml)\n");
  return kExitOk;
}

}  // namespace

void RegisterRunsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<RunsOptions>();
  CLI::App* cmd = app.add_subcommand("runs", "List runs, newest first");
  cmd->add_option("--pipeline", o->pipeline, "Only runs of this pipeline");
  cmd->add_option("-n,--limit", o->limit, "At most this many (default 20)");
  cmd->add_flag("--json", o->json, "JSON output");
  cmd->callback([&g, &rc, o] { rc = RunsMain(g, *o); });
}

}  // namespace ferry::cli
