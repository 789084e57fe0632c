#pragma once
// ArtifactStore: the data lake. Every artifact (datasets, run outputs, models, logs, reports)
// lives under one root, addressed by keys that storage/layout.h builds ("runs/train/r.../prep/
// output/data/x.csv"). Keys are relative, '/'-separated, normalised, and never leave the root.
//
// Contract, for every backend (checked by artifact_store_test_base.h):
//  - Put is atomic: a reader sees the old object or the new one, never half of one.
//  - A *version* is a key prefix that becomes immutable once committed: Commit writes
//    `<prefix>/manifest.json` last; afterwards any Put under the prefix is FailedPrecondition
//    and a second Commit is AlreadyExists.
//  - Tombstone writes `<prefix>/_TOMBSTONE.json` (who, when, why); the data stays until garbage
//    collection, and readers of the version get FailedPrecondition naming the tombstone.
//  - Keys that are absolute, contain "..", or are otherwise outside the root: InvalidArgument.
//
// Thread-safety: implementations are safe to use from several threads.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto lake, OpenArtifactStore("file:///p/.ferry/lake"));
//   FERRY_RETURN_IF_ERROR(lake->Put("datasets/c/v1/data.csv", bytes));
//   FERRY_RETURN_IF_ERROR(lake->Commit("datasets/c/v1", manifest_json));

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::storage {

// How far a Commit goes before it returns.
enum class Durability {
  // The content the manifest lists, and the manifest, are on disk (fsync) before Commit returns:
  // for what cannot be recomputed (datasets, models).
  kFlushed,
  // Atomic and ordered (the manifest appears after the data, whole or not at all, so a crash of
  // any process never exposes half a version) but flushed by the OS in its own time: for task
  // checkpoints, which a resume recomputes if a power loss takes them (docs/layout.md).
  kOrdered,
};

class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;

  // "file:///abs/root" or "s3://bucket/prefix".
  virtual std::string root_uri() const = 0;
  // The URI of a key: root_uri() + "/" + key.
  virtual std::string Uri(std::string_view key) const = 0;

  virtual absl::Status Put(std::string_view key, std::string_view data) = 0;
  // Copies a local file in (atomically).
  virtual absl::Status PutFile(std::string_view key, const std::string& local_path) = 0;
  // NotFound when absent.
  virtual absl::StatusOr<std::string> Get(std::string_view key) = 0;
  virtual absl::StatusOr<bool> Exists(std::string_view key) = 0;
  // Keys under `prefix` (recursively), sorted.
  virtual absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) = 0;

  // Writes `<prefix>/manifest.json` = manifest_json, last, making the version immutable. The
  // content is made durable first: the files the manifest lists under "files" ([{"path":
  // "<relative path>"}, ...]) and their folders, or, when it lists none, everything under the
  // prefix. Files it does not list (logs, inputs) are not flushed. kOrdered skips the flushes.
  virtual absl::Status Commit(std::string_view prefix, std::string_view manifest_json,
                              Durability durability = Durability::kFlushed) = 0;
  // OK if committed, NotFound if not, FailedPrecondition if tombstoned.
  virtual absl::Status CheckCommitted(std::string_view prefix) = 0;
  // Writes `<prefix>/_TOMBSTONE.json`.
  virtual absl::Status Tombstone(std::string_view prefix, std::string_view tombstone_json) = 0;

  // For backends with a local filesystem: the absolute path of a key, so that a local process
  // can read or write it in place. Unimplemented for remote backends.
  virtual absl::StatusOr<std::string> LocalPath(std::string_view key) = 0;
};

// Picks the backend by scheme: "file://" (local). Other schemes: Unimplemented naming the option.
absl::StatusOr<std::unique_ptr<ArtifactStore>> OpenArtifactStore(const std::string& uri);

// The key of `uri` in `lake`: the inverse of ArtifactStore::Uri. InvalidArgument when `uri` is not
// under the lake's root (another lake, or not a URI of this backend).
absl::StatusOr<std::string> KeyOf(const ArtifactStore& lake, std::string_view uri);

// Normalises a key: strips "./", collapses "//", rejects "", absolute paths, "..", NUL, and
// backslashes with InvalidArgument naming the key.
absl::StatusOr<std::string> NormalizeKey(std::string_view key);

}  // namespace ferry::storage
