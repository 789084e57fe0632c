#include "ferry/storage/local_artifact_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <utility>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::storage {
namespace {

namespace stdfs = std::filesystem;

constexpr size_t kSummaryChars = 200;

absl::Status ErrnoStatus(int err, std::string_view what, std::string_view path) {
  std::string msg = fmt::format("{} {}: {}", what, path, std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EISDIR:
    case ENOTDIR:
    case ENOTEMPTY:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// The folder part of an absolute path ("/a/b" -> "/a", "/a" -> "/").
std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return path.substr(0, slash);
}

std::string_view BaseName(std::string_view key) {
  size_t slash = key.rfind('/');
  return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

// Temp files are "<name>.tmp.<pid>.<random>" (the convention of common/fs.h WriteFileAtomic too).
bool IsTempName(std::string_view name) {
  size_t last = name.rfind('.');
  if (last == std::string_view::npos || !IsDigits(name.substr(last + 1))) return false;
  name = name.substr(0, last);
  size_t pid = name.rfind('.');
  if (pid == std::string_view::npos || !IsDigits(name.substr(pid + 1))) return false;
  return name.substr(0, pid).ends_with(".tmp");
}

// A one-line excerpt of a tombstone or similar small document, for messages.
std::string Summary(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else if (std::iscntrl(static_cast<unsigned char>(c))) {
      out += '?';
    } else {
      out += c;
    }
    if (out.size() > kSummaryChars) {
      out.resize(kSummaryChars);
      out += "...";
      break;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::Status WriteAll(int fd, std::string_view data, std::string_view what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot write", what);
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status CopyInto(int fd, const std::string& source, std::string_view what) {
  int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoStatus(errno, "cannot open", source);
  std::vector<char> buf(1 << 20);
  absl::Status status;
  while (status.ok()) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus(errno, "cannot read", source);
    } else if (n == 0) {
      break;
    } else {
      status = WriteAll(fd, std::string_view(buf.data(), static_cast<size_t>(n)), what);
    }
  }
  ::close(in);
  return status;
}

// Writes a temp file beside `target` through `fill` and, when `durable`, fsyncs it; returns the
// temp file's path. The caller publishes it (rename or link) or unlinks it.
absl::StatusOr<std::string> WriteTempBeside(const std::string& target,
                                            const std::function<absl::Status(int fd)>& fill,
                                            bool durable = true) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string tmp = fmt::format("{}.tmp.{}.{}", target, ::getpid(), rng());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "cannot create", tmp);
  absl::Status status = fill(fd);
  if (status.ok() && durable && ::fsync(fd) != 0) status = ErrnoStatus(errno, "cannot fsync", tmp);
  if (::close(fd) != 0 && status.ok()) status = ErrnoStatus(errno, "cannot close", tmp);
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return tmp;
}

absl::Status FsyncPath(const std::string& path, bool folder) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (folder ? O_DIRECTORY : 0));
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();  // a temp file that went away meanwhile
    return ErrnoStatus(errno, "cannot open for fsync", path);
  }
  absl::Status status;
  if (::fsync(fd) != 0) status = ErrnoStatus(errno, "cannot fsync", path);
  ::close(fd);
  return status;
}

// fsyncs every regular file under `dir` and collects its folders. Entries that vanish while it
// walks (another writer's temp file) are skipped, not errors.
absl::Status SyncTree(const std::string& dir, std::set<std::string>* folders) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "cannot list", dir);
  }
  folders->insert(dir);
  std::vector<std::pair<std::string, bool>> entries;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    std::string path = dir + "/" + name;
    if (::lstat(path.c_str(), &st) != 0) continue;  // gone meanwhile
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) entries.emplace_back(path, S_ISDIR(st.st_mode));
  }
  ::closedir(d);
  for (const auto& [path, is_dir] : entries) {
    FERRY_RETURN_IF_ERROR(is_dir ? SyncTree(path, folders) : FsyncPath(path, /*folder=*/false));
  }
  return absl::OkStatus();
}

// Makes a version's content durable before its manifest appears. The manifest is the version's
// table of contents: when it lists `files` ([{"path": "output/data/x.csv", ...}]), exactly those
// files are fsynced, with every folder between them and the version's folder; otherwise every
// regular file and folder under the version is. Files a manifest does not describe (a task's logs
// and inputs) are diagnostics, not data, and do not cost a flush each.
absl::Status SyncVersion(const std::string& dir, std::string_view manifest_json) {
  nlohmann::json manifest = nlohmann::json::parse(manifest_json, nullptr, false);
  std::set<std::string> folders;
  if (manifest.is_object() && manifest.contains("files") && manifest["files"].is_array()) {
    for (const nlohmann::json& f : manifest["files"]) {
      if (!f.is_object() || !f.contains("path") || !f["path"].is_string()) continue;
      FERRY_ASSIGN_OR_RETURN(std::string rel, NormalizeKey(f["path"].get<std::string>()));
      FERRY_RETURN_IF_ERROR(FsyncPath(dir + "/" + rel, /*folder=*/false));
      for (size_t slash = rel.rfind('/'); slash != std::string::npos && slash > 0;
           slash = rel.rfind('/', slash - 1)) {
        folders.insert(dir + "/" + rel.substr(0, slash));
      }
    }
  } else {
    FERRY_RETURN_IF_ERROR(SyncTree(dir, &folders));
  }
  for (const std::string& folder : folders) FERRY_RETURN_IF_ERROR(FsyncPath(folder, true));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalArtifactStore>> LocalArtifactStore::Open(
    const std::string& root) {
  if (root.empty() || root.front() != '/' || root.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("lake root '{}' is not an absolute folder path", root));
  }
  std::string normal = AbsolutePath(root, "/");
  if (normal == "/") {
    return absl::InvalidArgumentError("the lake root may not be '/'; use a folder of its own");
  }
  FERRY_RETURN_IF_ERROR(MakeDirs(normal));
  char real[PATH_MAX];
  if (::realpath(normal.c_str(), real) == nullptr) {
    return ErrnoStatus(errno, "cannot resolve lake root", normal);
  }
  struct stat st;
  if (::stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(fmt::format("lake root {} is not a folder", normal));
  }
  return std::unique_ptr<LocalArtifactStore>(new LocalArtifactStore(normal, real));
}

LocalArtifactStore::LocalArtifactStore(std::string root, std::string real_root)
    : root_(std::move(root)), real_root_(std::move(real_root)) {}

std::string LocalArtifactStore::root_uri() const { return "file://" + root_; }

std::string LocalArtifactStore::Uri(std::string_view key) const {
  return fmt::format("{}/{}", root_uri(), key);
}

std::string LocalArtifactStore::PathOf(std::string_view normalized_key) const {
  return fmt::format("{}/{}", root_, normalized_key);
}

absl::Status LocalArtifactStore::CheckConfined(const std::string& path) const {
  std::string existing = path;
  struct stat st;
  while (::lstat(existing.c_str(), &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) return ErrnoStatus(errno, "cannot inspect", existing);
    if (existing.size() <= root_.size()) break;
    existing = ParentOf(existing);
  }
  char real[PATH_MAX];
  if (::realpath(existing.c_str(), real) == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("{} does not resolve to a place inside the lake {} ({}); is it a dangling "
                    "symlink?",
                    existing, root_, std::strerror(errno)));
  }
  std::string_view resolved(real);
  bool inside = real_root_ == "/" || resolved == real_root_ ||
                (resolved.starts_with(real_root_) && resolved.size() > real_root_.size() &&
                 resolved[real_root_.size()] == '/');
  if (!inside) {
    return absl::InvalidArgumentError(fmt::format(
        "{} resolves to {}, outside the lake {}; symlinks in the lake must stay inside it",
        existing, resolved, root_));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LocalArtifactStore::Resolve(std::string_view key) const {
  FERRY_ASSIGN_OR_RETURN(std::string normalized, NormalizeKey(key));
  FERRY_RETURN_IF_ERROR(CheckConfined(PathOf(normalized)));
  return normalized;
}

std::optional<std::string> LocalArtifactStore::CommittedAncestor(std::string_view key) const {
  for (size_t slash = key.find('/'); slash != std::string_view::npos;
       slash = key.find('/', slash + 1)) {
    std::string_view folder = key.substr(0, slash);
    if (IsFile(PathOf(layout::ManifestOf(folder)))) return std::string(folder);
  }
  return std::nullopt;
}

std::optional<std::string> LocalArtifactStore::TombstonedAncestor(std::string_view key) const {
  for (size_t slash = key.find('/'); slash != std::string_view::npos;
       slash = key.find('/', slash + 1)) {
    std::string_view folder = key.substr(0, slash);
    std::string tombstone = layout::TombstoneOf(folder);
    if (key == tombstone) continue;  // the tombstone itself stays readable
    if (IsFile(PathOf(tombstone))) return std::string(folder);
  }
  return std::nullopt;
}

absl::Status LocalArtifactStore::CheckWritable(std::string_view key) const {
  std::string_view name = BaseName(key);
  if (name == layout::kManifest || name == layout::kTombstone) {
    return absl::InvalidArgumentError(fmt::format(
        "cannot write '{}': {} is written only by Commit (manifest) or Tombstone", key, name));
  }
  if (IsTempName(name)) {
    return absl::InvalidArgumentError(fmt::format(
        "cannot write '{}': names ending in .tmp.<digits>.<digits> are reserved for temp files",
        key));
  }
  if (std::optional<std::string> version = CommittedAncestor(key)) {
    return absl::FailedPreconditionError(
        fmt::format("cannot write '{}': it is part of committed version {}; versions are "
                    "immutable: write a new version",
                    key, *version));
  }
  return absl::OkStatus();
}

absl::Status LocalArtifactStore::PutWith(std::string_view raw_key,
                                         const std::function<absl::Status(int fd)>& fill) {
  FERRY_ASSIGN_OR_RETURN(std::string key, Resolve(raw_key));
  FERRY_RETURN_IF_ERROR(CheckWritable(key));
  std::string path = PathOf(key);
  std::string folder = ParentOf(path);
  FERRY_RETURN_IF_ERROR(MakeDirs(folder));
  FERRY_RETURN_IF_ERROR(CheckConfined(folder));
  FERRY_ASSIGN_OR_RETURN(std::string tmp, WriteTempBeside(path, fill));
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(publish_mu_);
    status = CheckWritable(key);  // a Commit may have happened while the bytes were written
    if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
      status = ErrnoStatus(errno, "cannot rename a temp file onto", path);
    }
  }
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

absl::Status LocalArtifactStore::Put(std::string_view key, std::string_view data) {
  return PutWith(key, [&](int fd) { return WriteAll(fd, data, key); });
}

absl::Status LocalArtifactStore::PutFile(std::string_view key, const std::string& local_path) {
  struct stat st;
  if (::stat(local_path.c_str(), &st) != 0) {
    int err = errno;
    return ErrnoStatus(err, fmt::format("cannot put '{}' from", key), local_path);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        fmt::format("cannot put '{}' from {}: not a regular file", key, local_path));
  }
  return PutWith(key, [&](int fd) { return CopyInto(fd, local_path, key); });
}

absl::StatusOr<std::string> LocalArtifactStore::Get(std::string_view raw_key) {
  FERRY_ASSIGN_OR_RETURN(std::string key, Resolve(raw_key));
  if (std::optional<std::string> version = TombstonedAncestor(key)) {
    std::string tombstone = layout::TombstoneOf(*version);
    absl::StatusOr<std::string> why = ReadFile(PathOf(tombstone));
    return absl::FailedPreconditionError(
        fmt::format("cannot read '{}': version {} is retired ({}: {})", key, *version, tombstone,
                    why.ok() ? Summary(*why) : std::string(why.status().message())));
  }
  std::string path = PathOf(key);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(fmt::format("no object '{}' in the lake {}", key, root_uri()));
    }
    return ErrnoStatus(errno, "cannot inspect", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::NotFoundError(
        fmt::format("'{}' in the lake {} is a folder, not an object", key, root_uri()));
  }
  return ReadFile(path);
}

absl::StatusOr<bool> LocalArtifactStore::Exists(std::string_view raw_key) {
  FERRY_ASSIGN_OR_RETURN(std::string key, Resolve(raw_key));
  std::string path = PathOf(key);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return false;
    return ErrnoStatus(errno, "cannot inspect", path);
  }
  return S_ISREG(st.st_mode);
}

absl::StatusOr<std::vector<std::string>> LocalArtifactStore::List(std::string_view prefix) {
  std::string folder = root_;
  std::string key_prefix;
  if (!prefix.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::string key, Resolve(prefix));
    folder = PathOf(key);
    key_prefix = key + "/";
  }
  std::vector<std::string> keys;
  struct stat st;
  if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return keys;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(folder, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    std::string path = it->path().string();
    // Temp files are skipped before they are inspected: a concurrent Put renames them away, and
    // their stat would fail.
    if (IsTempName(BaseName(path))) continue;
    stdfs::file_status status = it->symlink_status(ec);
    if (ec == std::errc::no_such_file_or_directory) {
      ec.clear();  // removed or renamed since the folder was read: not listed
      continue;
    }
    if (ec) break;
    bool object = stdfs::is_regular_file(status);
    if (stdfs::is_symlink(status)) {
      // Listed when it resolves to a file inside the lake; symlinked folders are not descended.
      object = CheckConfined(path).ok() && IsFile(path);
    }
    if (object) keys.push_back(key_prefix + path.substr(folder.size() + 1));
  }
  if (ec) return absl::InternalError(fmt::format("cannot list {}: {}", folder, ec.message()));
  std::sort(keys.begin(), keys.end());
  return keys;
}

absl::Status LocalArtifactStore::Commit(std::string_view raw_prefix, std::string_view manifest_json,
                                        Durability durability) {
  const bool flush = durability == Durability::kFlushed;
  FERRY_ASSIGN_OR_RETURN(std::string prefix, Resolve(raw_prefix));
  auto inside_committed = [&]() -> absl::Status {
    if (std::optional<std::string> version = CommittedAncestor(prefix)) {
      return absl::FailedPreconditionError(
          fmt::format("cannot commit {}: it is part of committed version {}; versions are "
                      "immutable: write a new version",
                      prefix, *version));
    }
    return absl::OkStatus();
  };
  auto already = [&]() {
    return absl::AlreadyExistsError(
        fmt::format("version {} is already committed ({} exists); versions are immutable: write "
                    "a new version",
                    prefix, layout::ManifestOf(prefix)));
  };
  FERRY_RETURN_IF_ERROR(inside_committed());
  std::string folder = PathOf(prefix);
  std::string manifest = PathOf(layout::ManifestOf(prefix));
  FERRY_RETURN_IF_ERROR(MakeDirs(folder));
  FERRY_RETURN_IF_ERROR(CheckConfined(folder));
  if (PathExists(manifest)) return already();
  // The data first, durably; then the manifest (fsynced, published with link, its folder
  // fsynced so that the name is durable too).
  if (flush) FERRY_RETURN_IF_ERROR(SyncVersion(folder, manifest_json));
  FERRY_ASSIGN_OR_RETURN(
      std::string tmp,
      WriteTempBeside(
          manifest, [&](int fd) { return WriteAll(fd, manifest_json, manifest); }, flush));
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(publish_mu_);
    status = inside_committed();
    // link() refuses to replace an existing manifest, unlike rename().
    if (status.ok() && ::link(tmp.c_str(), manifest.c_str()) != 0) {
      status = errno == EEXIST ? already() : ErrnoStatus(errno, "cannot create", manifest);
    }
  }
  ::unlink(tmp.c_str());
  FERRY_RETURN_IF_ERROR(status);
  return flush ? FsyncPath(folder, /*folder=*/true) : absl::OkStatus();
}

absl::Status LocalArtifactStore::CheckCommitted(std::string_view raw_prefix) {
  FERRY_ASSIGN_OR_RETURN(std::string prefix, Resolve(raw_prefix));
  std::string tombstone = layout::TombstoneOf(prefix);
  if (IsFile(PathOf(tombstone))) {
    absl::StatusOr<std::string> why = ReadFile(PathOf(tombstone));
    return absl::FailedPreconditionError(
        fmt::format("version {} is retired ({}: {})", prefix, tombstone,
                    why.ok() ? Summary(*why) : std::string(why.status().message())));
  }
  if (IsFile(PathOf(layout::ManifestOf(prefix)))) return absl::OkStatus();
  return absl::NotFoundError(fmt::format("version {} is not committed in the lake {} (no {})",
                                         prefix, root_uri(), layout::kManifest));
}

absl::Status LocalArtifactStore::Tombstone(std::string_view raw_prefix,
                                           std::string_view tombstone_json) {
  FERRY_ASSIGN_OR_RETURN(std::string prefix, Resolve(raw_prefix));
  if (!IsFile(PathOf(layout::ManifestOf(prefix)))) {
    return absl::NotFoundError(fmt::format(
        "cannot retire version {}: it is not committed in the lake {}", prefix, root_uri()));
  }
  std::string folder = PathOf(prefix);
  std::string tombstone = PathOf(layout::TombstoneOf(prefix));
  FERRY_ASSIGN_OR_RETURN(std::string tmp, WriteTempBeside(tombstone, [&](int fd) {
                           return WriteAll(fd, tombstone_json, tombstone);
                         }));
  absl::Status status;
  {
    std::lock_guard<std::mutex> lock(publish_mu_);
    if (::link(tmp.c_str(), tombstone.c_str()) != 0) {
      if (errno == EEXIST) {
        absl::StatusOr<std::string> why = ReadFile(tombstone);
        status = absl::AlreadyExistsError(
            fmt::format("version {} is already retired ({}); the first tombstone is kept", prefix,
                        why.ok() ? Summary(*why) : std::string(why.status().message())));
      } else {
        status = ErrnoStatus(errno, "cannot create", tombstone);
      }
    }
  }
  ::unlink(tmp.c_str());
  FERRY_RETURN_IF_ERROR(status);
  return FsyncPath(folder, /*folder=*/true);
}

absl::StatusOr<std::string> LocalArtifactStore::LocalPath(std::string_view key) {
  FERRY_ASSIGN_OR_RETURN(std::string normalized, Resolve(key));
  return PathOf(normalized);
}

}  // namespace ferry::storage
