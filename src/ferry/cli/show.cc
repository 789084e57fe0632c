// `ferry show RUN_ID [--json]`: a run, its tasks (states, times, attempts) and its events.

#include <algorithm>

#include "ferry/cli/cli_common.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

struct ShowOptions {
  std::string run_id;
  bool json = false;
  bool events = false;
};

int ShowMain(const GlobalOptions& g, const ShowOptions& o) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  state::StateStore& store = *project->store;
  auto run = store.GetRun(o.run_id);
  if (!run.ok()) return Fail(run.status());
  auto tasks = store.GetTasks(o.run_id);
  if (!tasks.ok()) return Fail(tasks.status());

  nlohmann::json jtasks = nlohmann::json::array();
  for (const auto& t : *tasks) {
    auto attempts = store.GetAttempts(o.run_id, t.task);
    if (!attempts.ok()) return Fail(attempts.status());
    nlohmann::json ja = nlohmann::json::array();
    for (const auto& a : *attempts) {
      ja.push_back({{"attempt", a.attempt},
                    {"pid", a.pid},  // the process (group) of the attempt; 0 until launched
                    {"started_at", ShowTime(a.started_at)},
                    {"finished_at", ShowTime(a.finished_at)},
                    {"duration", FormatSpan(a.started_at, a.finished_at)},
                    {"outcome", a.outcome},
                    {"exit_code", a.exit_code},
                    {"log", a.log_uri.empty() ? "" : project->lake->Uri(a.log_uri)}});
    }
    jtasks.push_back({{"task", t.task},
                      {"state", t.state},
                      {"version", t.version},
                      {"attempts", ja},
                      {"queued_at", ShowTime(t.queued_at)},
                      {"started_at", ShowTime(t.started_at)},
                      {"finished_at", ShowTime(t.finished_at)},
                      {"duration", FormatSpan(t.started_at, t.finished_at)},
                      {"exit_code", t.exit_code},
                      {"cache_key", t.cache_key},
                      {"output", t.output_uri.empty() ? "" : project->lake->Uri(t.output_uri)},
                      {"message", t.message}});
  }
  if (o.json) {
    nlohmann::json out = {
        {"id", run->id},
        {"pipeline", run->pipeline},
        {"file", run->pipeline_file},
        {"state", run->state},
        {"version", run->version},
        {"created_at", ShowTime(run->created_at)},
        {"started_at", ShowTime(run->started_at)},
        {"finished_at", ShowTime(run->finished_at)},
        {"params", nlohmann::json::parse(run->params_json.empty() ? "{}" : run->params_json)},
        {"message", run->message},
        {"tasks", jtasks}};
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  fmt::print("run       {}\npipeline  {} ({})\nstate     {}\nstarted   {}\nfinished  {}  ({})\n",
             run->id, run->pipeline, run->pipeline_file, run->state, ShowTime(run->started_at),
             ShowTime(run->finished_at), FormatSpan(run->started_at, run->finished_at));
  fmt::print("params    {}\n", run->params_json);
  if (!run->message.empty()) fmt::print("message   {}\n", run->message);
  fmt::print("\n{:<24} {:<15} {:>8} {:<20} {:>9} {:>5}  {}\n", "TASK", "STATE", "ATTEMPTS",
             "STARTED", "TIME", "EXIT", "MESSAGE");
  for (size_t i = 0; i < tasks->size(); ++i) {
    const auto& t = (*tasks)[i];
    fmt::print("{:<24} {:<15} {:>8} {:<20} {:>9} {:>5}  {}\n", t.task, t.state, t.attempts,
               ShowTime(t.started_at), FormatSpan(t.started_at, t.finished_at),
               t.attempts ? std::to_string(t.exit_code) : "-", t.message);
    if (jtasks[i]["attempts"].size() > 1) {
      for (const auto& a : jtasks[i]["attempts"]) {
        fmt::print("    attempt {}: {} (exit {}) {} {}\n", a["attempt"].get<int>(),
                   a["outcome"].get<std::string>(), a["exit_code"].get<int>(),
                   a["duration"].get<std::string>(), a["started_at"].get<std::string>());
      }
    }
  }
  if (o.events) {
    // The run's own events and each task's, merged in the order they happened (by sequence):
    // the store is asked for this run's resources only, not for every event it holds.
    std::vector<state::EventRecord> events;
    std::vector<std::string> resources = {o.run_id};
    for (const auto& t : *tasks) resources.push_back(o.run_id + "/" + t.task);
    for (const std::string& r : resources) {
      auto some = store.GetEvents(r);
      if (!some.ok()) return Fail(some.status());
      events.insert(events.end(), some->begin(), some->end());
    }
    std::sort(events.begin(), events.end(),
              [](const auto& a, const auto& b) { return a.seq < b.seq; });
    fmt::print("\nEVENTS\n");
    for (const auto& e : events) {
      fmt::print("{}  {:<40} {:>15} -> {:<15} {}  ({})\n", ShowTime(e.at), e.resource,
                 e.from.empty() ? "(new)" : e.from, e.to, e.reason, e.actor);
    }
  }
  return kExitOk;
}

}  // namespace

void RegisterShowCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* cmd = app.add_subcommand("show", "Show a run: tasks, states, times, attempts");
  cmd->add_option("run_id", o->run_id, "The run")->required();
  cmd->add_flag("--json", o->json, "JSON output");
  cmd->add_flag("--events", o->events, "Also list every state transition (the audit trail)");
  cmd->callback([&g, &rc, o] { rc = ShowMain(g, *o); });
}

}  // namespace ferry::cli
