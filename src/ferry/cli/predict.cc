// `ferry predict REF --input rows.csv [--output FILE] [--json]`: offline predictions of a
// registered model version on the rows of a CSV file, through the serving code path of
// model/bundle.h (the input schema's column types, the bundled transform, Predict).
//
// A built-in model predicts in this process. A Python model (model.json type "python") runs its
// own `<command> predict` under /bin/sh in the project folder, on the prepared rows written as a
// JSON instances file (so that each value keeps its column's type), its output going to stderr.

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/data/csv.h"
#include "ferry/model/bundle.h"
#include "ferry/pipeline/model_steps.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

struct PredictOptions {
  std::string ref;
  std::string input;
  std::string output;
  bool json = false;
};

// A temporary folder, removed with everything in it when this goes out of scope.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Make() {
    const char* base = std::getenv("TMPDIR");
    std::string path =
        fmt::format("{}/ferry-predict-XXXXXX", base != nullptr && *base ? base : "/tmp");
    if (::mkdtemp(path.data()) == nullptr) {
      return ErrnoError("cannot create a temporary folder", path);
    }
    return TempDir(std::move(path));
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (!path_.empty()) (void)RemoveAll(path_);
  }
  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// A Python model's predictions of `rows` (already through the bundled transform).
absl::StatusOr<model::Predictions> PythonPredict(const Project& project, const model::Bundle& b,
                                                 const data::Table& rows) {
  FERRY_ASSIGN_OR_RETURN(TempDir tmp, TempDir::Make());
  const std::string in = tmp.path() + "/instances.json";
  FERRY_RETURN_IF_ERROR(WriteFileAtomic(
      in, json{{"instances", model::TableToInstances(rows)}}.dump(), /*durable=*/false));
  absl::StatusOr<model::Predictions> p = pipeline::model_steps::PythonPredict(
      b.meta, b.dir + "/" + model::kBundleModelDir, in, "", tmp.path(), project.config.root_dir,
      // As in a task: commands may locate their files from the project folder.
      {{"FERRY_PROJECT_DIR", project.config.root_dir}}, rows.num_rows());
  if (!p.ok()) {
    return absl::Status(
        p.status().code(),
        fmt::format("{}/{}: the Python model's predict command (run in {}): {}", b.dir,
                    model::kBundleMeta, project.config.root_dir, p.status().message()));
  }
  return p;
}

// The input rows, then `prediction` (the label, or the value) and `p_<class>` per class.
absl::StatusOr<data::Table> OutputTable(data::Table rows, const model::Predictions& p) {
  std::vector<std::string> added = {"prediction"};
  for (const std::string& c : p.classes) added.push_back("p_" + c);
  for (const std::string& name : added) {
    if (rows.Find(name) != nullptr) {
      return absl::InvalidArgumentError(fmt::format(
          "the input already has a column '{}', which the output adds: rename or drop it", name));
    }
  }
  if (p.task == model::Task::kRegression) {
    data::Column& v = rows.AddColumn("prediction", data::ColumnType::kFloat64);
    for (size_t r = 0; r < p.rows; ++r) v.AppendDouble(p.values[r]);
    return rows;
  }
  data::Column& label = rows.AddColumn("prediction", data::ColumnType::kString);
  for (size_t r = 0; r < p.rows; ++r) label.AppendString(p.classes[p.ArgMax(r)]);
  for (size_t c = 0; c < p.classes.size(); ++c) {
    data::Column& col = rows.AddColumn("p_" + p.classes[c], data::ColumnType::kFloat64);
    for (size_t r = 0; r < p.rows; ++r) col.AppendDouble(p.Probability(r, c));
  }
  return rows;
}

absl::Status Predict(const GlobalOptions& g, const PredictOptions& o) {
  FERRY_ASSIGN_OR_RETURN(Project project, OpenProject(g, ""));
  FERRY_ASSIGN_OR_RETURN(state::ModelVersionRecord v,
                         state::ResolveModelRef(*project.store, o.ref));
  const std::string label = fmt::format("{}:{}", v.model, v.version);
  if (!PathExists(o.input)) {
    return absl::NotFoundError(fmt::format("no such input file: {}", o.input));
  }
  FERRY_ASSIGN_OR_RETURN(std::string dir,
                         pipeline::model_steps::ArtifactFolder(*project.lake, v.artifact_uri));
  absl::StatusOr<model::Bundle> loaded = model::LoadBundle(dir);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        fmt::format("model {}: {}", label, loaded.status().message()));
  }
  const model::Bundle& bundle = *loaded;

  // The columns a request carries get the types the model was trained with; others, and the
  // ones the transform drops first (model::OptionalInputs, which a file may leave out), are
  // inferred.
  const std::vector<std::string> optional = model::OptionalInputs(bundle.meta);
  auto is_optional = [&](const std::string& name) {
    return std::find(optional.begin(), optional.end(), name) != optional.end();
  };
  data::CsvReadOptions read;
  std::vector<std::string> needed;
  for (const json& c : bundle.meta.value("input_schema", json::array())) {
    const std::string name = c.value("name", "");
    if (is_optional(name)) continue;
    FERRY_ASSIGN_OR_RETURN(data::ColumnType type, data::ParseTypeName(c.value("type", "float64")));
    read.types[name] = type;
    needed.push_back(name);
  }
  FERRY_ASSIGN_OR_RETURN(data::CsvReadResult csv, data::ReadCsvFile(o.input, read));
  std::vector<std::string> missing;
  for (const std::string& name : needed) {
    if (csv.table.Find(name) == nullptr) missing.push_back(name);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{} lacks column(s) {} that model {} needs; its input columns: {}", o.input,
                    fmt::join(missing, ", "), label, fmt::join(needed, ", ")));
  }
  FERRY_ASSIGN_OR_RETURN(data::Table prepared, model::PrepareFeatures(bundle.meta, csv.table));
  model::Predictions p;
  if (bundle.model != nullptr) {
    FERRY_ASSIGN_OR_RETURN(p, bundle.model->Predict(prepared));
  } else {
    FERRY_ASSIGN_OR_RETURN(p, PythonPredict(project, bundle, prepared));
  }

  std::string text;
  if (o.json) {
    text = json{{"model", label}, {"predictions", model::PredictionsToJson(p)}}.dump(2) + "\n";
  } else {
    FERRY_ASSIGN_OR_RETURN(data::Table out, OutputTable(std::move(csv.table), p));
    text = data::WriteCsvString(out);
  }
  if (o.output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return absl::OkStatus();
  }
  FERRY_RETURN_IF_ERROR(WriteFileAtomic(o.output, text));
  fmt::print(stderr, "predicted {} row(s) with {} into {}\n", p.rows, label, o.output);
  return absl::OkStatus();
}

}  // namespace

void RegisterPredictCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "Predict the rows of a CSV file with a registered model version");
  cmd->add_option("REF", o->ref, "The model version: churn:7, churn:champion, churn (the newest)")
      ->required();
  cmd->add_option("-i,--input", o->input, "The rows: a CSV file (.csv or .csv.zst) with a header")
      ->required();
  cmd->add_option("-o,--output", o->output, "Write here (atomically) instead of stdout");
  cmd->add_flag("--json", o->json,
                "JSON {\"model\": ..., \"predictions\": [...]} (as an endpoint answers) instead "
                "of CSV");
  cmd->callback([&g, &rc, o] {
    absl::Status s = Predict(g, *o);
    rc = s.ok() ? kExitOk : Fail(s);
  });
}

}  // namespace ferry::cli
