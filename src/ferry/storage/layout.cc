#include "ferry/storage/layout.h"

#include <unistd.h>

#include <climits>
#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry::storage::layout {
namespace {

// One name given to a layout function and what it names, for the error message.
struct Name {
  std::string_view what;  // "dataset name", "run id", ...
  std::string_view value;
};

absl::Status ValidateNames(std::initializer_list<Name> names) {
  for (const Name& name : names) {
    if (!IsValidName(name.value)) {
      return absl::InvalidArgumentError(fmt::format(
          "invalid {} '{}': names are letters, digits, '_', '-', '.' and may not contain '..'",
          name.what, name.value));
    }
  }
  return absl::OkStatus();
}

// Joins already validated parts with '/'.
std::string Join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

std::string CurrentDir() {
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof buf) == nullptr) return "/";
  return buf;
}

}  // namespace

absl::StatusOr<std::string> DatasetVersion(std::string_view name, std::string_view version) {
  FERRY_RETURN_IF_ERROR(ValidateNames({{"dataset name", name}, {"dataset version", version}}));
  return Join({"datasets", name, version});
}

absl::StatusOr<std::string> RunDir(std::string_view pipeline, std::string_view run_id) {
  FERRY_RETURN_IF_ERROR(ValidateNames({{"pipeline name", pipeline}, {"run id", run_id}}));
  return Join({"runs", pipeline, run_id});
}

absl::StatusOr<std::string> RunParams(std::string_view pipeline, std::string_view run_id) {
  FERRY_ASSIGN_OR_RETURN(std::string dir, RunDir(pipeline, run_id));
  return Join({dir, "params.json"});
}

absl::StatusOr<std::string> RunHyperparameters(std::string_view pipeline, std::string_view run_id) {
  FERRY_ASSIGN_OR_RETURN(std::string dir, RunDir(pipeline, run_id));
  return Join({dir, "hyperparameters.json"});
}

absl::StatusOr<std::string> TaskDir(std::string_view pipeline, std::string_view run_id,
                                    std::string_view task) {
  FERRY_ASSIGN_OR_RETURN(std::string dir, RunDir(pipeline, run_id));
  FERRY_RETURN_IF_ERROR(ValidateNames({{"task name", task}}));
  return Join({dir, task});
}

absl::StatusOr<std::string> TaskLog(std::string_view pipeline, std::string_view run_id,
                                    std::string_view task, int attempt) {
  FERRY_ASSIGN_OR_RETURN(std::string dir, TaskDir(pipeline, run_id, task));
  if (attempt < 1) {
    return absl::InvalidArgumentError(fmt::format(
        "invalid attempt number {} for task '{}': attempts count from 1", attempt, task));
  }
  return fmt::format("{}/logs/{}.log", dir, attempt);
}

absl::StatusOr<std::string> ModelVersion(std::string_view name, std::string_view version) {
  FERRY_RETURN_IF_ERROR(ValidateNames({{"model name", name}, {"model version", version}}));
  return Join({"models", name, version});
}

absl::StatusOr<std::string> InferenceSegment(std::string_view endpoint, absl::Time hour,
                                             std::string_view segment) {
  FERRY_RETURN_IF_ERROR(ValidateNames({{"endpoint name", endpoint}, {"segment name", segment}}));
  if (hour == absl::InfinitePast() || hour == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError(fmt::format(
        "invalid hour for inference segment '{}' of endpoint '{}': the time is infinite", segment,
        endpoint));
  }
  std::string folder = absl::FormatTime("%Y/%m/%d/%H", hour, absl::UTCTimeZone());
  return fmt::format("inference/{}/{}/{}.jsonl.zst", endpoint, folder, segment);
}

absl::StatusOr<std::string> LabelsDir(std::string_view endpoint) {
  FERRY_RETURN_IF_ERROR(ValidateNames({{"endpoint name", endpoint}}));
  return Join({"labels", endpoint});
}

absl::StatusOr<std::string> BatchJob(std::string_view job_id) {
  FERRY_RETURN_IF_ERROR(ValidateNames({{"batch job id", job_id}}));
  return Join({"batch", job_id});
}

absl::StatusOr<std::string> MonitoringReport(std::string_view endpoint,
                                             std::string_view report_id) {
  FERRY_RETURN_IF_ERROR(
      ValidateNames({{"endpoint name", endpoint}, {"monitoring report id", report_id}}));
  return Join({"monitoring", endpoint, report_id});
}

std::string ManifestOf(std::string_view version_prefix) {
  return Join({version_prefix, kManifest});
}

std::string TombstoneOf(std::string_view version_prefix) {
  return Join({version_prefix, kTombstone});
}

absl::StatusOr<std::string> ConfineToRoot(std::string_view root, std::string_view path) {
  if (root.find('\0') != std::string_view::npos || path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("a path or root folder contains a NUL byte");
  }
  if (root.empty()) return absl::InvalidArgumentError("the root folder is empty");
  std::string abs_root = AbsolutePath(std::string(root), CurrentDir());
  std::string abs_path = AbsolutePath(std::string(path), abs_root);
  bool inside = abs_path == abs_root || abs_root == "/" ||
                (abs_path.size() > abs_root.size() && abs_path.starts_with(abs_root) &&
                 abs_path[abs_root.size()] == '/');
  if (!inside) {
    return absl::InvalidArgumentError(
        fmt::format("path '{}' resolves to {}, which is outside {}; give a path inside that folder",
                    path, abs_path, abs_root));
  }
  return abs_path;
}

}  // namespace ferry::storage::layout
