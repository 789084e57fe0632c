// The `batch` step kind: scores files with a registered model as a batch job (batch/batch_job.h,
// docs/batch.md) and records the job's id and result in its output.
//
//   score:
//     batch:
//       model: "churn:champion"                    # a model reference: churn:7, churn:champion
//       input: "lake://incoming/{{ today }}-*.csv" # or a list; local paths are project-relative
//       output: "lake://scores/{{ today }}"        # optional: default batch/<job-id>/output/
//       threads: 4                                 # optional: default one per core
//       max_bad_rows: 0                            # optional (1000)
//       max_bad_fraction: 0.01                     # optional (0.01)
//       log_endpoint: churn                        # optional: also write the inference log
//       time_column: event_time                    # optional, with log_endpoint
//
// A retried or resumed task resumes the same job (the submission's idempotency key is the
// resolved spec), so committed outputs are not scored twice; a job that already completed these
// inputs with the same model version is reported, not re-run. SIGTERM (a cancelled run) stops
// the job after the file in hand.

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "ferry/batch/batch_job.h"
#include "ferry/common/clock.h"
#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/common/suggest.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/model_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/artifact_store.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

using json = nlohmann::json;

const std::vector<std::string>& BatchKeys() {
  static const std::vector<std::string> keys = {"model",        "input",        "output",
                                                "threads",      "max_bad_rows", "max_bad_fraction",
                                                "log_endpoint", "time_column"};
  return keys;
}

std::atomic<bool> g_stop{false};
void OnStop(int) { g_stop.store(true); }

// Relative local paths name files of the project; URIs stay as they are.
std::string InProject(const std::string& project_dir, const std::string& path) {
  if (path.empty() || path.find("://") != std::string::npos) return path;
  std::filesystem::path p(path);
  return (p.is_absolute() ? p : std::filesystem::path(project_dir) / p).lexically_normal().string();
}

// A number field of the batch mapping as a number (a template's text once resolved).
absl::StatusOr<double> NumberOf(const json& v, const std::string& key) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    char* end = nullptr;
    const std::string s = v.get<std::string>();
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end != nullptr && *end == '\0') return d;
  }
  return absl::InvalidArgumentError(
      fmt::format("batch.{} must be a number, got {}", key, v.dump()));
}

class BatchStep final : public StepKind {
 public:
  std::string name() const override { return "batch"; }
  // A model alias may move and lake files may change under the same text: never a cache hit
  // unless the pipeline says so.
  bool DefaultCache() const override { return false; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    const json& b = step.fields["batch"];
    auto loc = [&](const std::string& key) {
      return data_steps::FieldLoc(step, key.empty() ? "batch" : "batch." + key);
    };
    if (!b.is_object()) {
      diags->Add(loc(""), fmt::format("step '{}': batch must be a mapping, e.g. batch: {{ model: "
                                      "\"churn:champion\", input: \"data/*.csv\" }}",
                                      step.name));
      return;
    }
    for (const auto& [key, value] : b.items()) {
      if (std::find(BatchKeys().begin(), BatchKeys().end(), key) == BatchKeys().end()) {
        diags->Add(loc(key), fmt::format("step '{}': unknown key '{}' in batch{}", step.name, key,
                                         UnknownKeyHint(key, BatchKeys())));
      }
    }
    if (!b.contains("model") || !b["model"].is_string() || b["model"].get<std::string>().empty()) {
      diags->Add(b.contains("model") ? loc("model") : loc(""),
                 fmt::format("step '{}': batch needs model: a registered model version "
                             "(churn:7, churn:champion or churn for its latest)",
                             step.name));
    }
    const json input = b.value("input", json());
    bool inputs_ok = (input.is_string() && !input.get<std::string>().empty()) ||
                     (input.is_array() && !input.empty());
    for (const json& i : input.is_array() ? input : json::array()) {
      if (!i.is_string() || i.get<std::string>().empty()) inputs_ok = false;
    }
    if (!inputs_ok) {
      diags->Add(b.contains("input") ? loc("input") : loc(""),
                 fmt::format("step '{}': batch needs input: a file or glob (data/*.csv, "
                             "lake://incoming/*.csv) or a list of them",
                             step.name));
    }
    for (const char* key : {"output", "log_endpoint", "time_column"}) {
      if (b.contains(key) && !b[key].is_string()) {
        diags->Add(loc(key), fmt::format("step '{}': batch.{} must be text", step.name, key));
      }
    }
    if (b.contains("threads") && !model_steps::Templated(b["threads"]) &&
        !(b["threads"].is_number_integer() && b["threads"].get<int64_t>() >= 0)) {
      diags->Add(loc("threads"),
                 fmt::format("step '{}': batch.threads must be a whole number >= 0 (0 = one per "
                             "core)",
                             step.name));
    }
    if (b.contains("max_bad_rows") && !model_steps::Templated(b["max_bad_rows"]) &&
        !(b["max_bad_rows"].is_number_integer() && b["max_bad_rows"].get<int64_t>() >= 0)) {
      diags->Add(
          loc("max_bad_rows"),
          fmt::format("step '{}': batch.max_bad_rows must be a whole number >= 0", step.name));
    }
    if (b.contains("max_bad_fraction") && !model_steps::Templated(b["max_bad_fraction"]) &&
        !(b["max_bad_fraction"].is_number() && b["max_bad_fraction"].get<double>() >= 0 &&
          b["max_bad_fraction"].get<double>() <= 1)) {
      diags->Add(
          loc("max_bad_fraction"),
          fmt::format("step '{}': batch.max_bad_fraction must be a number from 0 to 1", step.name));
    }
    if (b.contains("time_column") && !b.contains("log_endpoint")) {
      diags->Add(loc("time_column"),
                 fmt::format("step '{}': batch.time_column only applies with log_endpoint (the "
                             "inference log it dates rows in)",
                             step.name));
    }
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const json& b = ctx.step["fields"]["batch"];
    batch::BatchSpec spec;
    spec.model_ref = b.value("model", "");
    const json input = b.value("input", json());
    for (const json& i : input.is_array() ? input : json::array({input})) {
      spec.inputs.push_back(InProject(ctx.project_dir, i.get<std::string>()));
    }
    spec.output = InProject(ctx.project_dir, b.value("output", ""));
    if (b.contains("threads")) {
      FERRY_ASSIGN_OR_RETURN(double t, NumberOf(b["threads"], "threads"));
      spec.threads = static_cast<int>(t);
    }
    if (b.contains("max_bad_rows")) {
      FERRY_ASSIGN_OR_RETURN(double n, NumberOf(b["max_bad_rows"], "max_bad_rows"));
      spec.bad_rows.max_bad_rows = static_cast<int64_t>(n);
    }
    if (b.contains("max_bad_fraction")) {
      FERRY_ASSIGN_OR_RETURN(spec.bad_rows.max_bad_fraction,
                             NumberOf(b["max_bad_fraction"], "max_bad_fraction"));
    }
    spec.log_endpoint = b.value("log_endpoint", "");
    spec.time_column = b.value("time_column", "");

    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<state::StateStore> store, model_steps::OpenStore(ctx));
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                           storage::OpenArtifactStore(ctx.lake_uri));
    const std::string actor =
        fmt::format("pipeline {} run {} task {}", ctx.pipeline, ctx.run_id, ctx.task);
    FERRY_ASSIGN_OR_RETURN(
        state::JobRecord job,
        batch::SubmitBatchJob(*store, *lake, ctx.project_dir, spec, SystemClock::Get(), actor));
    std::printf("batch job %s: %s on %zu input pattern(s)\n", job.id.c_str(), job.subject.c_str(),
                spec.inputs.size());
    std::fflush(stdout);

    json result;
    if (job.state == state::batch_state::kCompleted) {
      std::printf("batch job %s already completed these inputs with %s\n", job.id.c_str(),
                  job.subject.c_str());
      result = json::parse(job.result_json, nullptr, false);
    } else {
      struct sigaction sa;
      std::memset(&sa, 0, sizeof sa);
      sa.sa_handler = OnStop;
      sa.sa_flags = SA_RESTART;
      sigemptyset(&sa.sa_mask);
      ::sigaction(SIGTERM, &sa, nullptr);
      int last_files = -1;
      absl::StatusOr<batch::BatchResult> r = batch::RunBatchJob(
          *store, *lake, ctx.project_dir, job.id, SystemClock::Get(),
          [&last_files](const batch::BatchProgress& p) {
            if (p.files_done == last_files) return;
            last_files = p.files_done;
            std::printf("batch: %d/%d files, %lld rows\n", p.files_done, p.files_total,
                        static_cast<long long>(p.rows_done));
            std::fflush(stdout);
          },
          &g_stop);
      if (!r.ok()) {
        return absl::Status(r.status().code(),
                            fmt::format("batch job {}: {}", job.id, r.status().message()));
      }
      result = batch::BatchResultToJson(*r);
    }
    FERRY_ASSIGN_OR_RETURN(job, store->GetJob(job.id));
    json out = {{"job", job.id},
                {"state", job.state},
                {"model", job.subject},
                {"spec", json::parse(job.spec_json, nullptr, false)},
                {"result", result}};
    const std::string dir = ctx.workdir + "/output/data";
    FERRY_RETURN_IF_ERROR(MakeDirs(dir));
    FERRY_RETURN_IF_ERROR(
        WriteFileAtomic(dir + "/batch.json", out.dump(2) + "\n", /*durable=*/false));
    std::printf("batch job %s %s: %zu files, %lld rows, %lld scored, %lld bad\n", job.id.c_str(),
                job.state.c_str(), result.value("files", json::array()).size(),
                static_cast<long long>(result.value("rows", int64_t{0})),
                static_cast<long long>(result.value("scored", int64_t{0})),
                static_cast<long long>(result.value("bad", int64_t{0})));
    std::fflush(stdout);
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeBatchStep() { return std::make_unique<BatchStep>(); }

}  // namespace ferry::pipeline
