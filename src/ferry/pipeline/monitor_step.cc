// The `monitor` step kind: one monitor run over a window of an endpoint's inference log
// (monitor/monitor.h RunMonitor), ending at the run's start (FERRY_RUN_TS), never the clock.
//
//   watch:
//     monitor:
//       endpoint: churn
//       window: 1d                     # default 7d
//       alert: { psi: "> 0.2", missing_rate: "> 0.05" }   # or "psi>0.2,missing_rate>0.05"
//       segment_by: [plan]             # optional
//       metric: accuracy               # optional
//       baseline: training             # optional
//       fail_on_alert: false           # default: an alert does not fail the task
//
// The task fails when the monitor run fails, and when it alerted only with fail_on_alert. Either
// way output/data/monitor.json says what happened ({"id", "status", "alerts", "rows",
// "report_json", "report_html"}), so that a later step can branch on it. Reads the outside world:
// never a cache hit unless the step says `cache: true`.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/common/units.h"
#include "ferry/data/table.h"
#include "ferry/monitor/alerts.h"
#include "ferry/monitor/monitor.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/model_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/storage/artifact_store.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

using json = nlohmann::json;

constexpr char kDefaultAlerts[] = "psi>0.2,missing_rate>0.05";
const std::set<std::string>& MonitorKeys() {
  static const std::set<std::string> keys = {"endpoint", "window",   "alert",        "segment_by",
                                             "metric",   "baseline", "fail_on_alert"};
  return keys;
}

// `alert:` as the text ParseAlertRules reads: a string as it is, a map {psi: "> 0.2"} as
// "psi > 0.2,...". InvalidArgument for anything else.
absl::StatusOr<std::string> AlertText(const json& alert) {
  if (alert.is_null()) return std::string(kDefaultAlerts);
  if (alert.is_string()) return alert.get<std::string>();
  if (!alert.is_object()) {
    return absl::InvalidArgumentError(
        "alert must map metrics to conditions, e.g. alert: { psi: \"> 0.2\" }");
  }
  std::string text;
  for (auto it = alert.begin(); it != alert.end(); ++it) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(fmt::format(
          "alert: {}: write the condition as a string with its operator, e.g. {}: \"> {}\"",
          it.key(), it.key(), it->dump()));
    }
    text += fmt::format("{}{} {}", text.empty() ? "" : ",", it.key(), it->get<std::string>());
  }
  return text;
}

class MonitorStep final : public StepKind {
 public:
  std::string name() const override { return "monitor"; }
  bool DefaultCache() const override { return false; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    const config::SourceLoc loc = data_steps::FieldLoc(step, "monitor");
    auto error = [&](const std::string& what) {
      diags->Add(loc, fmt::format("step '{}': monitor: {}", step.name, what));
    };
    const json& m = step.fields["monitor"];
    if (!m.is_object()) {
      error("write a map, e.g. monitor: { endpoint: churn, window: 1d }");
      return;
    }
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!MonitorKeys().contains(it.key())) {
        error(
            fmt::format("unknown key '{}'; known: endpoint, window, alert, segment_by, metric, "
                        "baseline, fail_on_alert",
                        it.key()));
      }
    }
    model_steps::CheckEndpointAndWindow(m, "watch", "7d", error);
    if (m.contains("alert")) {
      absl::StatusOr<std::string> text = AlertText(m["alert"]);
      if (!text.ok()) {
        error(std::string(text.status().message()));
      } else if (!model_steps::Templated(m["alert"])) {
        absl::StatusOr<std::vector<monitor::AlertRule>> rules = monitor::ParseAlertRules(*text);
        if (!rules.ok()) error(fmt::format("alert: {}", rules.status().message()));
      }
    }
    if (m.contains("segment_by")) {
      const json& s = m["segment_by"];
      bool ok = s.is_string() || s.is_array();
      if (s.is_array()) {
        for (const json& c : s) ok = ok && c.is_string();
      }
      if (!ok) error("segment_by: list input columns, e.g. segment_by: [plan]");
    }
    for (const char* k : {"metric", "baseline"}) {
      if (m.contains(k) && !m[k].is_string()) error(fmt::format("{} must be a name", k));
    }
    if (m.contains("fail_on_alert") && !m["fail_on_alert"].is_boolean()) {
      error("fail_on_alert must be true or false");
    }
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const json& m = ctx.step["fields"]["monitor"];
    monitor::MonitorSpec spec;
    spec.endpoint = m["endpoint"].get<std::string>();
    if (m.contains("window")) {
      FERRY_ASSIGN_OR_RETURN(spec.window, ParseDuration(m["window"].get<std::string>()));
    }
    FERRY_ASSIGN_OR_RETURN(std::string alert_text, AlertText(m.value("alert", json())));
    FERRY_ASSIGN_OR_RETURN(spec.alerts, monitor::ParseAlertRules(alert_text));
    if (m.contains("segment_by")) {
      const json& s = m["segment_by"];
      if (s.is_string()) {
        spec.segment_by.push_back(s.get<std::string>());
      } else {
        for (const json& c : s) spec.segment_by.push_back(c.get<std::string>());
      }
    }
    spec.metric = m.value("metric", "");
    spec.baseline = m.value("baseline", "training");
    const bool fail_on_alert = m.value("fail_on_alert", false);
    std::optional<int64_t> now = data::ParseTimestamp(ctx.run_ts);
    spec.now = now ? absl::FromUnixMicros(*now) : absl::Now();

    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<state::StateStore> store, model_steps::OpenStore(ctx));
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                           storage::OpenArtifactStore(ctx.lake_uri));
    FERRY_ASSIGN_OR_RETURN(
        monitor::MonitorOutcome out,
        monitor::RunMonitor(*store, *lake, spec, SystemClock::Get(),
                            fmt::format("pipeline {} run {}", ctx.pipeline, ctx.run_id)));
    const json alerts = out.report.value("alerts", json::array());
    json result = {{"id", out.run.id},
                   {"endpoint", spec.endpoint},
                   {"status", out.run.state},
                   {"alerted", out.alerted},
                   {"alerts", alerts.size()},
                   {"rows", out.report.value("rows", 0)},
                   {"report_json", out.report_json},
                   {"report_html", out.report_html}};
    const std::string dir = ctx.workdir + "/output/data";
    FERRY_RETURN_IF_ERROR(MakeDirs(dir));
    FERRY_RETURN_IF_ERROR(
        WriteFileAtomic(dir + "/monitor.json", result.dump(2) + "\n", /*durable=*/false));
    std::printf("monitor run %s of endpoint %s: %s, %zu alerts, %lld rows\n", out.run.id.c_str(),
                spec.endpoint.c_str(), out.run.state.c_str(), alerts.size(),
                static_cast<long long>(out.report.value("rows", int64_t{0})));
    for (const json& a : alerts) std::printf("  %s\n", a.value("message", a.dump()).c_str());
    std::printf("report: %s\n", out.report_html.c_str());
    std::fflush(stdout);
    if (out.alerted && fail_on_alert) {
      return absl::FailedPreconditionError(
          fmt::format("monitor run {} of endpoint {} alerted ({} alerts; report {}); the step says "
                      "fail_on_alert: true",
                      out.run.id, spec.endpoint, alerts.size(), out.report_html));
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeMonitorStep() { return std::make_unique<MonitorStep>(); }

}  // namespace ferry::pipeline
