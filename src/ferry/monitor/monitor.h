#pragma once
// The monitor: one run of drift, data-quality and performance monitoring of an endpoint over a
// window of its inference log, against the training baseline of the model that served it. A run
// is a MonitorRun resource (state/kinds.h):
//
//     queued ──> running ──> passed
//       │          ├──> alerted   (a threshold crossed: the report says which)
//       └──────────┴──> failed    (the report could not be made)
//
// and leaves monitoring/<endpoint>/<run-id>/{report.json, report.html} in the lake
// (docs/monitoring.md documents the report's stable schema "ferry.monitor.report/1").
// RunMonitor is safe to call from several threads or processes at once (each run has its own id
// and its own report folder); the store and the lake are borrowed.
//
// Example:
//   MonitorSpec spec{.endpoint = "churn", .window = absl::Hours(24 * 7)};
//   FERRY_ASSIGN_OR_RETURN(MonitorOutcome out, RunMonitor(*store, *lake, spec, clock, "alice"));
//   if (out.alerted) return 3;

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/common/clock.h"
#include "ferry/monitor/alerts.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::monitor {

inline constexpr std::string_view kReportSchema = "ferry.monitor.report/1";

struct MonitorSpec {
  std::string endpoint;
  absl::Duration window = absl::Hours(24 * 7);
  std::string baseline =
      "training";                 // the training profile of the model version that served most rows
  std::vector<AlertRule> alerts;  // empty: DefaultAlertRules() (psi > 0.2, missing_rate > 0.05)
  std::vector<std::string> segment_by;    // input columns whose values define segments ("plan")
  std::string metric;                     // "" = accuracy (classification) / rmse (regression)
  absl::Time now = absl::InfinitePast();  // window end; InfinitePast = clock.Now()
  double stale_after_hours = 24;
};

struct MonitorOutcome {
  state::JobRecord run;                  // the MonitorRun, in its final state
  nlohmann::json report;                 // report.json
  std::string report_json, report_html;  // their URIs (file:// or s3://) in the lake
  bool alerted = false;
};

// Creates a MonitorRun (store.CreateJob kind "MonitorRun", subject = endpoint, id
// NewJobId('m', clock)), moves it queued -> running, builds the report (window, drift per feature
// and per day, quality, labels joined by transaction id, performance per day and per segment,
// trend, alerts), writes monitoring/<endpoint>/<run-id>/{report.json, report.html}
// (storage/layout.h MonitoringReport), and moves it to passed or alerted (result_json:
// {"report_json", "report_html", "alerts": n, "rows": n}); on error, to failed with the message,
// and returns the error. InvalidArgument for a bad spec (endpoint name, window, baseline kind,
// segment column); NotFound when no model version can be found for the baseline.
absl::StatusOr<MonitorOutcome> RunMonitor(state::StateStore& store, storage::ArtifactStore& lake,
                                          const MonitorSpec& spec, const Clock& clock,
                                          const std::string& actor);

// The MonitorSpec as JSON (what the run's spec_json holds).
nlohmann::json MonitorSpecToJson(const MonitorSpec& spec);

}  // namespace ferry::monitor
