#pragma once
// Small filesystem helpers over POSIX calls, each returning a Status that names the path.
// Stateless and thread-safe.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry {

// "<what> <path>: <strerror(errno)>", NotFound for ENOENT, PermissionDenied for EACCES/EPERM,
// Internal otherwise. Call it right after the failing system call (it reads errno).
absl::Status ErrnoError(std::string_view what, const std::string& path);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `data` to `path` atomically: a temp file in the same folder, fsync when `durable`,
// then rename over `path`. A reader sees the old content or the new, never half.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data, bool durable = true);

// mkdir -p.
absl::Status MakeDirs(const std::string& path);

bool PathExists(const std::string& path);

// Recursive removal; OK when absent.
absl::Status RemoveAll(const std::string& path);

// Regular files under `dir`, as paths relative to `dir`, sorted; symlinks are followed.
absl::StatusOr<std::vector<std::string>> ListFilesRecursive(const std::string& dir);

// The absolute, lexically normal form of `path` (no ".", "..", or double slashes); relative paths
// are taken from `base`.
std::string AbsolutePath(const std::string& path, const std::string& base);

}  // namespace ferry
