#pragma once
// The dataset catalog of the lake: dataset versions under datasets/<name>/<version>/, each a
// committed (immutable) version whose manifest.json describes it (schema, rows, content hash,
// source, lineage; docs/data.md). A version id is content-addressed (the producer derives it from
// its source and the content), so publishing the same content twice is a no-op that returns the
// existing version. Versions are also numbered 1, 2, ... in order of creation, so that a person
// can say `customers@3`. Stateless functions over an ArtifactStore; thread-safe as the store is.
//
// References: "customers" or "customers@latest" (the newest), "customers@3" (the third version
// created), "customers@3f2a9c" (a version id or a unique prefix of at least 4 characters).
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(DatasetVersionInfo v, ResolveDataset(*lake, "customers@3"));
//   v.manifest["rows"];  v.key;  // "datasets/customers/3f2a9c..."

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::storage {

struct DatasetRef {
  std::string name;
  std::string selector;  // "" (latest), "latest", an ordinal "3", or an id prefix
};
// InvalidArgument for a malformed reference, saying the accepted forms.
absl::StatusOr<DatasetRef> ParseDatasetRef(std::string_view ref);

struct DatasetVersionInfo {
  std::string name;
  std::string version;  // the content-addressed id (the folder name)
  int ordinal = 0;      // 1-based, in order of creation
  std::string key;      // "datasets/<name>/<version>"
  nlohmann::json manifest;
};

// Names of the datasets with at least one committed version, sorted.
absl::StatusOr<std::vector<std::string>> ListDatasetNames(ArtifactStore& lake);
// Committed, not tombstoned versions of `name`, oldest first (manifest created_at, then id).
absl::StatusOr<std::vector<DatasetVersionInfo>> ListDatasetVersions(ArtifactStore& lake,
                                                                    std::string_view name);
// NotFound names the dataset's versions (or the known datasets) to help pick another.
absl::StatusOr<DatasetVersionInfo> ResolveDataset(ArtifactStore& lake, std::string_view ref);

// Publishes the files of the local folder `dir` listed in `manifest["files"]` as
// datasets/<name>/<version>, manifest last and durable. When that version is already committed
// (same content), nothing is written and `*existed` is set.
absl::StatusOr<DatasetVersionInfo> PublishDataset(ArtifactStore& lake, std::string_view name,
                                                  std::string_view version, const std::string& dir,
                                                  const nlohmann::json& manifest, bool* existed);

}  // namespace ferry::storage
