#pragma once
// The data lake's namespace, in one place: nobody else concatenates lake paths (docs/layout.md).
//
//   datasets/<name>/<version>/{data.csv.zst, manifest.json, profile.json}
//   runs/<pipeline>/<run-id>/{params.json, hyperparameters.json}
//   runs/<pipeline>/<run-id>/<task>/{input/..., model/..., output/..., logs/<attempt>.log,
//                                     manifest.json}
//   models/<name>/<version>/{model/..., model.json, metrics.json, profile.json}
//   inference/<endpoint>/<yyyy>/<mm>/<dd>/<hh>/<segment>.jsonl.zst
//   labels/<endpoint>/...
//   batch/<job-id>/{input-manifest.json, output/...}
//   monitoring/<endpoint>/<report-id>/{report.json, report.html}
//   <any version>/_TOMBSTONE.json
//
// Every function validates each name it is given (common/ids.h IsValidName) and returns
// InvalidArgument for a name that could escape its folder. Stateless and thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::storage::layout {

inline constexpr std::string_view kManifest = "manifest.json";
inline constexpr std::string_view kTombstone = "_TOMBSTONE.json";

absl::StatusOr<std::string> DatasetVersion(std::string_view name, std::string_view version);
absl::StatusOr<std::string> RunDir(std::string_view pipeline, std::string_view run_id);
absl::StatusOr<std::string> RunParams(std::string_view pipeline, std::string_view run_id);
// The same parameters with every value a string, as SageMaker passes hyperparameters.
absl::StatusOr<std::string> RunHyperparameters(std::string_view pipeline, std::string_view run_id);
// The task's folder (its checkpoint version: manifest.json is written there last).
absl::StatusOr<std::string> TaskDir(std::string_view pipeline, std::string_view run_id,
                                    std::string_view task);
absl::StatusOr<std::string> TaskLog(std::string_view pipeline, std::string_view run_id,
                                    std::string_view task, int attempt);
absl::StatusOr<std::string> ModelVersion(std::string_view name, std::string_view version);
absl::StatusOr<std::string> InferenceSegment(std::string_view endpoint, absl::Time hour,
                                             std::string_view segment);
absl::StatusOr<std::string> LabelsDir(std::string_view endpoint);
absl::StatusOr<std::string> BatchJob(std::string_view job_id);
absl::StatusOr<std::string> MonitoringReport(std::string_view endpoint, std::string_view report_id);

// `<version prefix>/manifest.json` and `<version prefix>/_TOMBSTONE.json`.
std::string ManifestOf(std::string_view version_prefix);
std::string TombstoneOf(std::string_view version_prefix);

// Confines a user-given path to a root folder: the lexically normal absolute form of `path`
// (relative paths are taken from `root`), or InvalidArgument when it lands outside `root`.
absl::StatusOr<std::string> ConfineToRoot(std::string_view root, std::string_view path);

}  // namespace ferry::storage::layout
