// The `inference_log` step kind — train like you serve: a window of an endpoint's inference log,
// optionally joined with its labels by transaction id (monitor/dataset.h InferenceDataset),
// published as a dataset version exactly as a sql step publishes one (data.csv.zst, profile.json,
// manifest.json), so that a following transform or train step reads it the same way.
//
//   fresh:
//     inference_log:
//       endpoint: churn
//       window: 30d                # default 7d; ends at the run's start (FERRY_RUN_TS)
//       join_labels: true          # default false; rows without a label are dropped
//       label: churned             # the label column's name (default "label")
//       dataset: churn_served      # default "<endpoint>_log"
//
// The columns: the inputs as served, plus transaction_id, time and model (and the label). The
// log grows under the same spec, so the step is not a cache hit unless it says `cache: true`; the
// version is content-addressed, so an unchanged window is the existing version.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/common/units.h"
#include "ferry/data/table.h"
#include "ferry/monitor/dataset.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/model_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/storage/artifact_store.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

using json = nlohmann::json;

std::string Iso(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

class InferenceLogStep final : public StepKind {
 public:
  std::string name() const override { return "inference_log"; }
  bool DefaultCache() const override { return false; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    const config::SourceLoc loc = data_steps::FieldLoc(step, "inference_log");
    auto error = [&](const std::string& what) {
      diags->Add(loc, fmt::format("step '{}': inference_log: {}", step.name, what));
    };
    const json& m = step.fields["inference_log"];
    if (!m.is_object()) {
      error("write a map, e.g. inference_log: { endpoint: churn, window: 30d }");
      return;
    }
    static const std::set<std::string> kKeys = {"endpoint", "window", "join_labels", "label",
                                                "dataset"};
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!kKeys.contains(it.key())) {
        error(fmt::format("unknown key '{}'; known: endpoint, window, join_labels, label, dataset",
                          it.key()));
      }
    }
    model_steps::CheckEndpointAndWindow(m, "read", "30d", error);
    if (m.contains("join_labels") && !m["join_labels"].is_boolean()) {
      error("join_labels must be true or false");
    }
    if (m.contains("label") && (!m["label"].is_string() || m["label"].get<std::string>().empty())) {
      error("label must name the label column (label: churned)");
    }
    if (m.contains("dataset") &&
        (!m["dataset"].is_string() || (!model_steps::Templated(m["dataset"]) &&
                                       !IsValidName(m["dataset"].get<std::string>())))) {
      error("dataset must be a name (letters, digits, _ . -)");
    }
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const json& m = ctx.step["fields"]["inference_log"];
    const std::string endpoint = m["endpoint"].get<std::string>();
    absl::Duration window = absl::Hours(24 * 7);
    if (m.contains("window")) {
      FERRY_ASSIGN_OR_RETURN(window, ParseDuration(m["window"].get<std::string>()));
    }
    const bool join = m.value("join_labels", false);
    const std::string label = m.value("label", "label");
    const std::string dataset = m.value("dataset", endpoint + "_log");
    std::optional<int64_t> now = data::ParseTimestamp(ctx.run_ts);
    const absl::Time to = now ? absl::FromUnixMicros(*now) : absl::Now();
    const absl::Time from = to - window;

    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                           storage::OpenArtifactStore(ctx.lake_uri));
    FERRY_ASSIGN_OR_RETURN(data::Table table,
                           monitor::InferenceDataset(*lake, endpoint, from, to, join, label));
    if (table.num_rows() == 0) {
      return absl::FailedPreconditionError(fmt::format(
          "the inference log of endpoint {} has no rows{} in [{}, {}): serve traffic (`ferry "
          "serve --endpoint {}`){}, or widen window:",
          endpoint, join ? " with a label" : "", Iso(from), Iso(to), endpoint,
          join ? fmt::format(", ingest labels (`ferry labels {} ...`)", endpoint) : ""));
    }
    std::printf("inference log of %s, %s .. %s: %zu rows%s\n", endpoint.c_str(), Iso(from).c_str(),
                Iso(to).c_str(), table.num_rows(), join ? " with labels" : "");

    data_steps::DatasetOrigin origin;
    origin.source = {{"kind", "inference_log"}, {"endpoint", endpoint},
                     {"from", Iso(from)},       {"to", Iso(to)},
                     {"join_labels", join},     {"label", join ? json(label) : json(nullptr)}};
    origin.identity = origin.source.dump();
    return data_steps::WriteAndPublishDataset(ctx, ctx.workdir + "/output/data", dataset,
                                              {{"data", &table}}, origin)
        .status();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeInferenceLogStep() { return std::make_unique<InferenceLogStep>(); }

}  // namespace ferry::pipeline
