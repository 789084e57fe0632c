#include "ferry/storage/artifact_store.h"

#include <cctype>
#include <utility>

#include "ferry/common/status.h"
#include "ferry/storage/local_artifact_store.h"
#include "fmt/format.h"

namespace ferry::storage {
namespace {

constexpr std::string_view kFileScheme = "file://";
constexpr std::string_view kS3Scheme = "s3://";

// The key as a person can read it in a message: control bytes (NUL included) as \xNN.
std::string Printable(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (std::iscntrl(static_cast<unsigned char>(c))) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out;
}

absl::Status BadKey(std::string_view key, std::string_view why) {
  return absl::InvalidArgumentError(fmt::format(
      "invalid lake key '{}': {}; keys are relative '/'-separated paths inside the lake root",
      Printable(key), why));
}

}  // namespace

absl::StatusOr<std::string> NormalizeKey(std::string_view key) {
  if (key.empty()) return BadKey(key, "the key is empty");
  if (key.find('\0') != std::string_view::npos) return BadKey(key, "it contains a NUL byte");
  if (key.find('\\') != std::string_view::npos) {
    return BadKey(key, "it contains a backslash (use '/')");
  }
  if (key.front() == '/') return BadKey(key, "it is an absolute path");
  std::string out;
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view part = key.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return BadKey(key, "it contains '..'");
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out.empty()) return BadKey(key, "it names the lake root itself");
  return out;
}

absl::StatusOr<std::unique_ptr<ArtifactStore>> OpenArtifactStore(const std::string& uri) {
  std::string_view rest(uri);
  if (rest.starts_with(kFileScheme)) {
    rest.remove_prefix(kFileScheme.size());
    if (!rest.starts_with('/')) {
      return absl::InvalidArgumentError(fmt::format(
          "lake URI '{}' does not name an absolute local folder; write file:///abs/path (three "
          "slashes; hosts are not supported)",
          uri));
    }
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<LocalArtifactStore> store,
                           LocalArtifactStore::Open(std::string(rest)));
    return std::unique_ptr<ArtifactStore>(std::move(store));
  }
  if (rest.starts_with(kS3Scheme)) {
    return absl::UnimplementedError(
        fmt::format("S3 data lakes are not built yet (lake URI '{}'); use a local lake such as "
                    "file:///abs/path/.ferry/lake",
                    uri));
  }
  return absl::InvalidArgumentError(
      fmt::format("unsupported lake URI '{}': supported schemes are file:///abs/path (local) and "
                  "s3://bucket/prefix (not built yet)",
                  uri));
}

absl::StatusOr<std::string> KeyOf(const ArtifactStore& lake, std::string_view uri) {
  const std::string root = lake.root_uri() + "/";
  if (uri.substr(0, root.size()) != root) {
    return absl::InvalidArgumentError(
        fmt::format("{} is not in the lake {} (the project's `lake:`); was it written by another "
                    "project?",
                    uri, lake.root_uri()));
  }
  return NormalizeKey(uri.substr(root.size()));
}

}  // namespace ferry::storage
