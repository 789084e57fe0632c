#pragma once
// What the built-in data step kinds (sql, validate, transform) share: their process line, the
// locations of their fields, the project's files they name, and dataset folders — the layout a
// data task leaves in output/data and that the catalog publishes (docs/data.md):
//
//   data.csv.zst  profile.json           one part ("data"), or per part of a split:
//   train.csv.zst train.profile.json  test.csv.zst test.profile.json
//   manifest.json                        the dataset manifest (schema, rows, hashes, lineage)
//   transform.json test.input.csv.zst    a transform's fitted state, and with a split the raw
//                                        input rows that became the test part
//
// Stateless functions; thread-safe.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/config/diagnostics.h"
#include "ferry/config/pipeline_spec.h"
#include "ferry/data/table.h"
#include "ferry/data/validate.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/storage/datasets.h"
#include "nlohmann/json.hpp"

namespace ferry::pipeline::data_steps {

std::vector<std::string> BuiltinArgv(const std::string& self_exe, const std::string& kind);

// Where `key` of `step` was written (the step's name when it was not).
config::SourceLoc FieldLoc(const config::StepSpec& step, const std::string& key);

// A kind whose value names one upstream step (`validate: extract`), not a list: else an error.
void CheckOneStep(const config::StepSpec& step, config::Diagnostics* diags);

// Hard links `name` (a relative path) from folder `from` into folder `to`, replacing what is
// there; copies when a link is not possible (another file system).
absl::Status LinkOrCopy(const std::string& from, const std::string& to, const std::string& name);

// The optional `dataset:` field: a valid name, else an error.
void CheckDatasetName(const config::StepSpec& step, config::Diagnostics* diags);

// A required project-relative file field: adds an error unless it is a non-empty string naming a
// readable file inside the project. Returns the absolute path ("" on error).
std::string CheckProjectFile(const config::StepSpec& step, const config::ProjectConfig& project,
                             const std::string& key, const std::string& what,
                             config::Diagnostics* diags);

// The folder of the upstream step `ref` ("extract" or "features.train": the part after the dot
// is the dataset part) as this task sees it: input/data/<step>.
std::string ChannelDir(const TaskContext& ctx, const std::string& ref);
std::string PartOf(const std::string& ref);  // "train" for "features.train", "" for "features"

// What a dataset version is made of besides its data, for its manifest and its id.
struct DatasetOrigin {
  nlohmann::json source;  // {"kind": "sql", ...} / {"kind": "transform", ...}
  nlohmann::json inputs = nlohmann::json::array();  // [{"dataset", "version"}, ...]
  std::string identity;  // what, besides the content, determines the version id
};

// Writes `parts` (("data", t) or ("train", t), ("test", t)) with their profiles and the
// manifest into `dir` (files listed in `extra_files`, already in `dir`, are published too), and
// publishes the folder as a dataset version in the lake. Returns the manifest (with "version"
// and "ordinal"); prints one line about it to stdout (the task's log).
absl::StatusOr<nlohmann::json> WriteAndPublishDataset(
    const TaskContext& ctx, const std::string& dir, const std::string& name,
    const std::vector<std::pair<std::string, const data::Table*>>& parts,
    const DatasetOrigin& origin, const std::vector<std::string>& extra_files = {});

// The manifest of a dataset folder (a channel or a version in the lake).
absl::StatusOr<nlohmann::json> ReadDatasetManifest(const std::string& dir);
// The table of one part of a dataset folder ("" = the only part, or "train" when split).
absl::StatusOr<data::Table> ReadDatasetPart(const std::string& dir, const nlohmann::json& manifest,
                                            const std::string& part);

// The file of the raw input rows of a part: "test.input.csv.zst" for "test".
std::string RawPartFile(const std::string& part);
// The raw input rows of one part of a dataset folder (`RawPartFile(part)`, written by a transform
// step that splits: the rows of its input, before any op, that became that part, in the part's
// order), or nullopt when the manifest does not list that file. Columns get the input types of
// the folder's transform.json ("input_columns"), so that ApplyTransform sees them as the fit did;
// without a transform.json they are inferred. DataLoss when transform.json is malformed; the
// reader's error when it or the file cannot be read.
absl::StatusOr<std::optional<data::Table>> ReadRawPart(const std::string& dir,
                                                       const nlohmann::json& manifest,
                                                       const std::string& part);

// Validates `table` with the rules file `rules_path`; a rules file with `distribution.reference`
// gets that dataset version's profile from the lake at `lake_uri`. `now_micros` is "now" for
// freshness rules (the run's start in a pipeline).
absl::StatusOr<data::ValidationReport> CheckDataset(const std::string& rules_path,
                                                    const data::Table& table,
                                                    const std::string& dataset_label,
                                                    const std::string& lake_uri,
                                                    int64_t now_micros);

// The local folder of a dataset version of a local lake.
absl::StatusOr<std::string> DatasetDir(storage::ArtifactStore& lake,
                                       const storage::DatasetVersionInfo& version);

// The commit of the git checkout holding `dir` (read from .git, no subprocess), or "".
std::string GitCommit(const std::string& dir);

}  // namespace ferry::pipeline::data_steps
