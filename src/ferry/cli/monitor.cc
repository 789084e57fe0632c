// `ferry monitor ENDPOINT [--window 7d] [--baseline training] [--alert 'psi>0.2,...']
//                [--segment plan] [--metric accuracy] [--retrain PIPELINE.yaml] [--json]`
// runs one monitor over a window of the endpoint's inference log (monitor/monitor.h RunMonitor),
// prints a summary and where report.json and report.html are, and exits 0 when the run passed,
// 3 when it alerted, 1 when it failed (2 for bad flags). With --retrain and an alert it starts
// `ferry run PIPELINE` detached (its own session, output to .ferry/logs/) and says so.

#include "ferry/monitor/monitor.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/common/units.h"
#include "ferry/monitor/alerts.h"
#include "ferry/storage/artifact_store.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

constexpr int kExitAlerted = 3;  // docs/cli.md: `ferry monitor` only
constexpr char kDefaultAlerts[] = "psi>0.2,missing_rate>0.05";

struct MonitorOptions {
  std::string endpoint;
  std::string window = "7d";
  std::string baseline = "training";
  std::string alert = kDefaultAlerts;
  std::vector<std::string> segment;
  std::string metric;
  std::string retrain;
  bool as_json = false;
};

// "0.213" for a number, "-" for null or a missing key.
std::string Num(const json& obj, const std::string& key, int digits = 3) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number()) return "-";
  return fmt::format("{:.{}f}", obj[key].get<double>(), digits);
}

// The local file of a report's URI when the lake is a folder; the URI itself otherwise.
std::string ReportLocation(storage::ArtifactStore& lake, const std::string& uri) {
  absl::StatusOr<std::string> key = storage::KeyOf(lake, uri);
  if (!key.ok()) return uri;
  absl::StatusOr<std::string> path = lake.LocalPath(*key);
  return path.ok() ? *path : uri;
}

struct Retraining {
  std::string command;
  std::string log;
  pid_t pid = -1;
  std::string run_id;  // empty when it did not print one in time
};

// Starts `ferry -C ROOT run PIPELINE --idempotency-key retrain-<monitor run>` in its own session,
// stdout and stderr to `log`, and waits (at most 10 s) for the first line naming its run.
absl::StatusOr<Retraining> StartRetraining(const config::ProjectConfig& project,
                                           const std::string& pipeline,
                                           const std::string& monitor_run) {
  Retraining r;
  const std::string logs = project.root_dir + "/.ferry/logs";
  FERRY_RETURN_IF_ERROR(MakeDirs(logs));
  r.log = fmt::format("{}/retrain-{}.log", logs, monitor_run);
  std::vector<std::string> args = {SelfExe(),
                                   "-C",
                                   project.root_dir,
                                   "run",
                                   pipeline,
                                   "--idempotency-key",
                                   "retrain-" + monitor_run};
  r.command = absl::StrJoin(args, " ");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int fd = ::open(r.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("open the retraining log", r.log);
  r.pid = ::fork();
  if (r.pid < 0) {
    ::close(fd);
    return ErrnoError("fork for the retraining run of", pipeline);
  }
  if (r.pid == 0) {  // the child: only async-signal-safe calls until exec
    ::setsid();
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  const std::regex first_line(R"(^run (r[0-9]{8}-[0-9]{6}-[0-9a-f]{6}) of pipeline )");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    std::ifstream in(r.log);
    std::string line;
    std::smatch m;
    if (std::getline(in, line) && std::regex_search(line, m, first_line)) {
      r.run_id = m[1];
      break;
    }
    int status = 0;
    if (::waitpid(r.pid, &status, WNOHANG) == r.pid) break;  // it ended before naming a run
    absl::SleepFor(absl::Milliseconds(50));
  }
  return r;
}

void PrintSummary(const monitor::MonitorOutcome& out, const std::string& json_path,
                  const std::string& html_path) {
  const json& rep = out.report;
  const json& window = rep.value("window", json::object());
  fmt::print("monitor run {} of endpoint {}: {}\n", out.run.id, out.run.subject, out.run.state);
  fmt::print("window {} .. {} ({} days); {} rows, {} labelled\n", window.value("from", "?"),
             window.value("to", "?"), window.value("days", 0), rep.value("rows", 0),
             rep.value("labelled_rows", 0));
  if (rep.contains("baseline") && rep["baseline"].is_object()) {
    const json& b = rep["baseline"];
    fmt::print("baseline: {} profile of {}:{} ({} rows)\n", b.value("kind", "?"),
               b.value("model", "?"), b.contains("version") ? b["version"].dump() : "?",
               b.contains("rows") ? b["rows"].dump() : "?");
  }
  std::set<std::string> alerted;
  for (const json& a : rep.value("alerts", json::array())) {
    if (a.contains("feature") && a["feature"].is_string()) alerted.insert(a["feature"]);
  }
  fmt::print("\n{:<20} {:<11} {:>7} {:>7} {:>9} {:>8}\n", "FEATURE", "KIND", "PSI", "KS", "KS_P",
             "MISSING");
  for (const json& f : rep.value("features", json::array())) {
    const json drift = f.value("drift", json::object());
    const json quality = f.value("quality", json::object());
    const std::string name = f.value("name", "?");
    fmt::print("{:<20} {:<11} {:>7} {:>7} {:>9} {:>8}{}\n", name, f.value("kind", "?"),
               Num(drift, "psi"), Num(drift, "ks"),
               drift.contains("ks_pvalue") && drift["ks_pvalue"].is_number()
                   ? fmt::format("{:.2g}", drift["ks_pvalue"].get<double>())
                   : "-",
               Num(quality, "missing_rate"), alerted.contains(name) ? "  ALERT" : "");
  }
  const json quality = rep.value("quality", json::object());
  std::vector<std::string> failures;
  for (const json& c : quality.value("checks", json::array())) {
    if (c.value("passed", true)) continue;
    failures.push_back(fmt::format("{}{}{}: {} (threshold {})", c.value("check", "?"),
                                   c.contains("feature") && c["feature"].is_string()
                                       ? " " + c["feature"].get<std::string>()
                                       : "",
                                   c.contains("segment") && c["segment"].is_string()
                                       ? " [" + c["segment"].get<std::string>() + "]"
                                       : "",
                                   Num(c, "value", 4), Num(c, "threshold", 4)));
  }
  for (const char* k : {"missing_columns", "new_columns"}) {
    if (quality.contains(k) && quality[k].is_array() && !quality[k].empty()) {
      std::vector<std::string> names;
      for (const json& n : quality[k])
        names.push_back(n.is_string() ? n.get<std::string>() : n.dump());
      failures.push_back(fmt::format("{}: {}", k, absl::StrJoin(names, ", ")));
    }
  }
  fmt::print("\nquality: {}\n", failures.empty() ? "every check passed" : "");
  for (const std::string& f : failures) fmt::print("  {}\n", f);

  const json perf = rep.value("performance", json());
  if (perf.is_object() && perf.contains("trend") && perf["trend"].is_object()) {
    const json& t = perf["trend"];
    std::string ci = "?";
    if (t.contains("ci95") && t["ci95"].is_array() && t["ci95"].size() == 2 &&
        t["ci95"][0].is_number() && t["ci95"][1].is_number()) {
      const double lo = t["ci95"][0].get<double>(), hi = t["ci95"][1].get<double>();
      ci = fmt::format("{:.4f}", (hi - lo) / 2);
    }
    fmt::print("\n{} trend: {} ± {} per day (95% CI), over {} days, r² {}\n",
               t.value("metric", "metric"), Num(t, "slope_per_day", 4), ci, t.value("days", 0),
               Num(t, "r2"));
  } else if (perf.is_object()) {
    fmt::print("\nperformance: {} (too few days for a trend)\n", perf.value("metric", "?"));
  } else {
    fmt::print("\nperformance: no labels joined (ingest them with `ferry labels {}`)\n",
               out.run.subject);
  }
  const json alerts = rep.value("alerts", json::array());
  fmt::print("\nalerts: {}\n", alerts.empty() ? "none" : std::to_string(alerts.size()));
  for (const json& a : alerts) fmt::print("  {}\n", a.value("message", a.dump()));
  fmt::print("\nreport.json: {}\nreport.html: {}\n", json_path, html_path);
}

int MonitorMain(const GlobalOptions& g, const MonitorOptions& o) {
  monitor::MonitorSpec spec;
  spec.endpoint = o.endpoint;
  absl::StatusOr<absl::Duration> window = ParseDuration(o.window);
  if (!window.ok() || *window <= absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError(
        fmt::format("--window {}: {}", o.window,
                    window.ok() ? "must be positive" : std::string(window.status().message()))));
  }
  spec.window = *window;
  spec.baseline = o.baseline;
  absl::StatusOr<std::vector<monitor::AlertRule>> rules = monitor::ParseAlertRules(o.alert);
  if (!rules.ok()) {
    return Fail(absl::InvalidArgumentError(fmt::format("--alert: {}", rules.status().message())));
  }
  spec.alerts = *std::move(rules);
  spec.segment_by = o.segment;
  spec.metric = o.metric;
  std::string retrain;
  if (!o.retrain.empty()) {
    retrain = std::filesystem::absolute(o.retrain).lexically_normal().string();
    if (!PathExists(retrain)) {
      return Fail(absl::InvalidArgumentError(
          fmt::format("--retrain {}: no such pipeline file", o.retrain)));
    }
  }
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());

  absl::StatusOr<monitor::MonitorOutcome> out =
      monitor::RunMonitor(*project->store, *project->lake, spec, SystemClock::Get(),
                          fmt::format("ferry monitor pid {}", getpid()));
  if (!out.ok()) {
    // Every failure of the run itself is exit 1 (3 means alerted).
    Fail(out.status());
    return kExitRunFailed;
  }
  const std::string json_path = ReportLocation(*project->lake, out->report_json);
  const std::string html_path = ReportLocation(*project->lake, out->report_html);

  std::optional<Retraining> retraining;
  absl::Status retrain_status;
  if (out->alerted && !retrain.empty()) {
    absl::StatusOr<Retraining> r = StartRetraining(project->config, retrain, out->run.id);
    if (r.ok()) {
      retraining = *std::move(r);
    } else {
      retrain_status = r.status();
    }
  }

  if (o.as_json) {
    json doc = {{"id", out->run.id},        {"endpoint", out->run.subject},
                {"state", out->run.state},  {"alerted", out->alerted},
                {"report_json", json_path}, {"report_html", html_path},
                {"report", out->report},    {"retrain", nullptr}};
    if (retraining) {
      doc["retrain"] = {
          {"pipeline", retrain},
          {"pid", retraining->pid},
          {"run_id", retraining->run_id.empty() ? json(nullptr) : json(retraining->run_id)},
          {"command", retraining->command},
          {"log", retraining->log}};
    } else if (!retrain_status.ok()) {
      doc["retrain"] = {{"pipeline", retrain}, {"error", std::string(retrain_status.message())}};
    }
    fmt::print("{}\n", doc.dump(2));
  } else {
    PrintSummary(*out, json_path, html_path);
    if (retraining) {
      fmt::print("\nretraining triggered: {} ({}; log {})\n",
                 retraining->run_id.empty() ? fmt::format("pid {}", retraining->pid)
                                            : "run " + retraining->run_id,
                 retraining->command, retraining->log);
    } else if (!retrain.empty() && out->alerted) {
      fmt::print("\nretraining NOT started: {}\n", retrain_status.message());
    } else if (!retrain.empty()) {
      fmt::print("\nno alert: no retraining\n");
    }
  }
  return out->alerted ? kExitAlerted : kExitOk;
}

}  // namespace

void RegisterMonitorCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<MonitorOptions>();
  CLI::App* cmd = app.add_subcommand(
      "monitor",
      "Drift, data quality and degradation of an endpoint over a window of its inference log "
      "(exit 0 passed, 3 alerted, 1 failed)");
  cmd->add_option("ENDPOINT", o->endpoint, "The endpoint")->required();
  cmd->add_option("--window", o->window, "How far back from now (default 7d; 36h, 30d, ...)");
  cmd->add_option("--baseline", o->baseline,
                  "What the window is compared with (default training: the training profile of "
                  "the model version that served most rows)");
  cmd->add_option("--alert", o->alert,
                  fmt::format("Alert rules, comma-separated (default '{}'); metrics: psi, ks, "
                              "ks_pvalue, wasserstein, js, chi2_pvalue, missing_rate, "
                              "type_errors, unseen_categories, new_columns, missing_columns, "
                              "stale_hours, rows, accuracy, auc, log_loss, rmse, mae, "
                              "slope_per_day",
                              kDefaultAlerts));
  cmd->add_option("--segment", o->segment,
                  "An input column whose values define segments (repeatable: --segment plan)")
      ->allow_extra_args(false);
  cmd->add_option("--metric", o->metric,
                  "The performance metric of the trend (default accuracy, or rmse for a "
                  "regression)");
  cmd->add_option("--retrain", o->retrain,
                  "On an alert, start this pipeline (as `ferry run` does, in the background)");
  cmd->add_flag("--json", o->as_json, "JSON output");
  cmd->callback([&g, &rc, o] { rc = MonitorMain(g, *o); });
}

}  // namespace ferry::cli
