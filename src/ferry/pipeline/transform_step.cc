// The `transform` step kind: built-in preprocessing of an upstream step's dataset (select, drop,
// rename, cast, filter, impute, one-hot, standardize, min-max, split; docs/data.md). The fitted
// state (imputed values, frozen categories, means and scales) is saved as transform.json beside
// the output, so that serving applies exactly what training did. The output is a dataset version
// named after the step (or `dataset:`), with parts train/test when the ops split; a split also
// keeps the raw input rows of the test part (test.input.csv.zst), for serving-parity checks.
//
//   features:
//     transform: check
//     ops: [ {impute: {tenure: median}}, {one_hot: [plan]}, {standardize: [charges]},
//            {split: {test: 0.2, seed: 7, stratify: churned}} ]

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/data/transform.h"
#include "ferry/pipeline/data_steps.h"
#include "ferry/pipeline/resolve.h"
#include "ferry/pipeline/step_kind.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

class TransformStep final : public StepKind {
 public:
  std::string name() const override { return "transform"; }
  std::set<std::string> extra_keys() const override { return {"ops", "dataset"}; }
  bool value_is_step() const override { return true; }

  void Validate(const config::StepSpec& step, const config::ProjectConfig&,
                config::Diagnostics* diags) const override {
    data_steps::CheckOneStep(step, diags);
    if (!step.fields.contains("ops")) {
      diags->Add(step.loc, fmt::format("step '{}': a transform needs ops: a list of operations "
                                       "(e.g. ops: [{{impute: {{tenure: median}}}}])",
                                       step.name));
    } else if (step.fields["ops"].dump().find("{{") != std::string::npos) {
      // Templated values are known when the run starts; the ops are checked then.
    } else if (absl::StatusOr<std::vector<data::TransformOp>> ops =
                   data::ParseOps(step.fields["ops"]);
               !ops.ok()) {
      diags->Add(data_steps::FieldLoc(step, "ops"),
                 fmt::format("step '{}': {}", step.name, ops.status().message()));
    }
    data_steps::CheckDatasetName(step, diags);
  }

  absl::StatusOr<std::vector<std::string>> Argv(const ResolvedStep&,
                                                const std::string& self_exe) const override {
    return data_steps::BuiltinArgv(self_exe, name());
  }

  absl::Status RunTask(const TaskContext& ctx) const override {
    const nlohmann::json& fields = ctx.step["fields"];
    const std::string ref = fields["transform"].get<std::string>();
    const std::string in = data_steps::ChannelDir(ctx, ref);
    FERRY_ASSIGN_OR_RETURN(nlohmann::json manifest, data_steps::ReadDatasetManifest(in));
    FERRY_ASSIGN_OR_RETURN(data::Table table,
                           data_steps::ReadDatasetPart(in, manifest, data_steps::PartOf(ref)));
    FERRY_ASSIGN_OR_RETURN(std::vector<data::TransformOp> ops, data::ParseOps(fields["ops"]));
    // A split keeps the raw input rows of its test part (test.input.csv.zst), so that a later
    // step can send them through the serving path and compare with the test part: the input is
    // kept (a copy) until the fit says which rows those are.
    const bool splits = std::any_of(ops.begin(), ops.end(),
                                    [](const data::TransformOp& op) { return op.kind == "split"; });
    std::optional<data::Table> raw;
    if (splits) raw = table;
    FERRY_ASSIGN_OR_RETURN(data::TransformResult result, data::FitTransform(ops, std::move(table)));

    const std::string out = ctx.workdir + "/output/data";
    FERRY_RETURN_IF_ERROR(MakeDirs(out));
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(out + "/transform.json", result.state.dump(2), false));
    std::vector<std::string> extra_files = {"transform.json"};
    std::vector<std::pair<std::string, const data::Table*>> parts;
    if (result.test) {
      parts = {{"train", &result.train}, {"test", &*result.test}};
      FERRY_CHECK(raw.has_value());
      data::Table raw_test = raw->Take(result.test_input_rows);
      raw.reset();
      const std::string file = data_steps::RawPartFile("test");
      FERRY_RETURN_IF_ERROR(data::WriteCsvFile(raw_test, out + "/" + file));
      extra_files.push_back(file);
    } else {
      parts = {{"data", &result.train}};
    }
    data_steps::DatasetOrigin origin;
    origin.source = {{"kind", "transform"},
                     {"step", ctx.task},
                     {"ops", fields["ops"]},
                     {"state_file", "transform.json"}};
    nlohmann::json input = {{"dataset", manifest.value("dataset", "")},
                            {"version", manifest.value("version", "")}};
    if (!data_steps::PartOf(ref).empty()) input["part"] = data_steps::PartOf(ref);
    origin.inputs.push_back(input);
    origin.identity = fields["ops"].dump() + input.dump();
    std::string name = fields.contains("dataset") ? fields["dataset"].get<std::string>() : ctx.task;
    return data_steps::WriteAndPublishDataset(ctx, out, name, parts, origin, extra_files).status();
  }
};

}  // namespace

std::unique_ptr<StepKind> MakeTransformStep() { return std::make_unique<TransformStep>(); }

}  // namespace ferry::pipeline
