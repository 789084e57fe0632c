#pragma once
// LocalArtifactStore: the data lake in a local folder ("file:///abs/root"). A key is a file at
// root + "/" + key.
//
//  - Put writes a temp file beside the target ("<name>.tmp.<pid>.<random>"), fsyncs it and
//    renames it over the target, so readers see the old object or the new one. Leftover temp
//    files (from a crash) are never listed, and keys that look like temp files are refused.
//  - A version is committed when its folder holds manifest.json; a key is immutable when any of
//    its ancestor folders does (one stat per ancestor). "manifest.json" and "_TOMBSTONE.json"
//    are written only by Commit and Tombstone; Put refuses those names.
//  - Commit (Durability::kFlushed) fsyncs the files the manifest lists and their folders
//    (objects written in place through LocalPath included; everything under the version when
//    the manifest lists no files), then links manifest.json into place and fsyncs its folder, so
//    after a power loss a manifest never describes data that is not on disk. kOrdered keeps the
//    order and the atomic link but leaves the flushing to the OS.
//  - Keys are confined to the root lexically (NormalizeKey) and physically: the deepest existing
//    folder of a key must resolve (realpath) inside the resolved root, so a symlink in the lake
//    that points elsewhere is refused with InvalidArgument. List does not descend into symlinked
//    folders and skips symlinks that resolve outside the root.
//
// Thread-safety: safe to use from several threads. Within one process, the immutability check
// and the rename that publishes an object are atomic with respect to Commit and Tombstone; across
// processes, a Put racing a Commit of the same version is not detected (one writer owns a version
// until it commits it).
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto lake, LocalArtifactStore::Open("/p/.ferry/lake"));
//   FERRY_ASSIGN_OR_RETURN(std::string path, lake->LocalPath("runs/p/r1/prep/output/x.csv"));

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::storage {

class LocalArtifactStore final : public ArtifactStore {
 public:
  // Opens the lake in the absolute folder `root`, creating it when missing. InvalidArgument for a
  // relative root or "/".
  static absl::StatusOr<std::unique_ptr<LocalArtifactStore>> Open(const std::string& root);

  LocalArtifactStore(const LocalArtifactStore&) = delete;
  LocalArtifactStore& operator=(const LocalArtifactStore&) = delete;

  // "file://" + the root, lexically normal.
  std::string root_uri() const override;
  std::string Uri(std::string_view key) const override;

  absl::Status Put(std::string_view key, std::string_view data) override;
  absl::Status PutFile(std::string_view key, const std::string& local_path) override;
  absl::StatusOr<std::string> Get(std::string_view key) override;
  // True for objects only; folders are not objects.
  absl::StatusOr<bool> Exists(std::string_view key) override;
  // An empty prefix lists the whole lake.
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override;

  absl::Status Commit(std::string_view prefix, std::string_view manifest_json,
                      Durability durability = Durability::kFlushed) override;
  absl::Status CheckCommitted(std::string_view prefix) override;
  // AlreadyExists when the version is already tombstoned (the first tombstone is kept).
  absl::Status Tombstone(std::string_view prefix, std::string_view tombstone_json) override;

  // root + "/" + the normalised key; the folder need not exist.
  absl::StatusOr<std::string> LocalPath(std::string_view key) override;

  // The lake folder, lexically normal (as given to Open, not symlink-resolved).
  const std::string& root() const { return root_; }

 private:
  LocalArtifactStore(std::string root, std::string real_root);

  // Normalises `key` (NormalizeKey) and checks that its deepest existing folder resolves inside
  // the root; returns the normalised key.
  absl::StatusOr<std::string> Resolve(std::string_view key) const;
  std::string PathOf(std::string_view normalized_key) const;
  // InvalidArgument unless `path` (or, when absent, its deepest existing ancestor) resolves
  // inside the root.
  absl::Status CheckConfined(const std::string& path) const;
  // The committed (resp. tombstoned) version folder that holds `key`, if any; the key's proper
  // ancestors only.
  std::optional<std::string> CommittedAncestor(std::string_view key) const;
  std::optional<std::string> TombstonedAncestor(std::string_view key) const;
  absl::Status CheckWritable(std::string_view key) const;

  // The shared body of Put and PutFile: `fill` writes the object's bytes into an open temp file.
  absl::Status PutWith(std::string_view raw_key, const std::function<absl::Status(int fd)>& fill);

  const std::string root_;
  const std::string real_root_;  // realpath(root_), for confinement checks
  // Serialises "check immutability, then publish" steps: the rename in Put and the links that
  // create manifest.json and _TOMBSTONE.json.
  std::mutex publish_mu_;
};

}  // namespace ferry::storage
