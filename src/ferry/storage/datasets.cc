#include "ferry/storage/datasets.h"

#include <algorithm>
#include <map>
#include <set>

#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::storage {
namespace {

constexpr std::string_view kRefForms =
    "write NAME, NAME@latest, NAME@N (the N-th version) or NAME@ID (a version id or a prefix of "
    "it)";

std::string Describe(const std::vector<DatasetVersionInfo>& versions) {
  std::string out;
  for (const DatasetVersionInfo& v : versions) {
    if (!out.empty()) out += ", ";
    out += fmt::format("@{} ({})", v.ordinal, v.version.substr(0, 12));
  }
  return out;
}

}  // namespace

absl::StatusOr<DatasetRef> ParseDatasetRef(std::string_view ref) {
  DatasetRef out;
  size_t at = ref.find('@');
  out.name = std::string(ref.substr(0, at));
  if (at != std::string_view::npos) out.selector = std::string(ref.substr(at + 1));
  bool selector_ok = std::all_of(out.selector.begin(), out.selector.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c));
  });
  if (!IsValidName(out.name) || !selector_ok ||
      (at != std::string_view::npos && out.selector.empty())) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a dataset reference; {}", ref, kRefForms));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ListDatasetNames(ArtifactStore& lake) {
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys, lake.List("datasets"));
  std::set<std::string> names;
  for (const std::string& key : keys) {
    // datasets/<name>/<version>/manifest.json
    size_t a = key.find('/');
    size_t b = key.find('/', a + 1);
    size_t c = b == std::string::npos ? b : key.find('/', b + 1);
    if (c != std::string::npos && key.substr(c + 1) == layout::kManifest) {
      names.insert(key.substr(a + 1, b - a - 1));
    }
  }
  std::vector<std::string> out;
  for (const std::string& n : names) {
    FERRY_ASSIGN_OR_RETURN(std::vector<DatasetVersionInfo> v, ListDatasetVersions(lake, n));
    if (!v.empty()) out.push_back(n);
  }
  return out;
}

absl::StatusOr<std::vector<DatasetVersionInfo>> ListDatasetVersions(ArtifactStore& lake,
                                                                    std::string_view name) {
  if (!IsValidName(name)) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a dataset name", name));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                         lake.List(fmt::format("datasets/{}", name)));
  std::vector<DatasetVersionInfo> out;
  std::string prefix = fmt::format("datasets/{}/", name);
  for (const std::string& key : keys) {
    if (!key.starts_with(prefix)) continue;
    std::string rest = key.substr(prefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string::npos || rest.substr(slash + 1) != layout::kManifest) continue;
    DatasetVersionInfo v;
    v.name = std::string(name);
    v.version = rest.substr(0, slash);
    FERRY_ASSIGN_OR_RETURN(v.key, layout::DatasetVersion(name, v.version));
    if (!lake.CheckCommitted(v.key).ok()) continue;  // tombstoned
    FERRY_ASSIGN_OR_RETURN(std::string text, lake.Get(key));
    v.manifest = nlohmann::json::parse(text, nullptr, false);
    if (!v.manifest.is_object()) {
      return absl::DataLossError(fmt::format("{} is not valid JSON", lake.Uri(key)));
    }
    out.push_back(std::move(v));
  }
  auto created = [](const DatasetVersionInfo& v) {
    return v.manifest.value("created_at", std::string());
  };
  std::sort(out.begin(), out.end(), [&](const DatasetVersionInfo& a, const DatasetVersionInfo& b) {
    return std::make_pair(created(a), a.version) < std::make_pair(created(b), b.version);
  });
  for (size_t i = 0; i < out.size(); ++i) out[i].ordinal = static_cast<int>(i) + 1;
  return out;
}

absl::StatusOr<DatasetVersionInfo> ResolveDataset(ArtifactStore& lake, std::string_view ref) {
  FERRY_ASSIGN_OR_RETURN(DatasetRef r, ParseDatasetRef(ref));
  FERRY_ASSIGN_OR_RETURN(std::vector<DatasetVersionInfo> versions,
                         ListDatasetVersions(lake, r.name));
  if (versions.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDatasetNames(lake));
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    return absl::NotFoundError(
        fmt::format("no dataset '{}' in the lake {}; datasets: {}", r.name, lake.root_uri(),
                    known.empty() ? "(none yet: a sql or transform step creates them)" : known));
  }
  if (r.selector.empty() || r.selector == "latest") return versions.back();
  bool numeric = std::all_of(r.selector.begin(), r.selector.end(),
                             [](char c) { return c >= '0' && c <= '9'; });
  // All digits: the N-th version when there is one (ids are hex, so a long all-digit selector
  // may also be an id prefix).
  if (numeric && r.selector.size() <= 9) {
    size_t n = std::stoul(r.selector);
    if (n >= 1 && n <= versions.size()) return versions[n - 1];
    if (r.selector.size() < 4) {
      return absl::NotFoundError(fmt::format("dataset '{}' has {} version(s), no @{}: {}", r.name,
                                             versions.size(), r.selector, Describe(versions)));
    }
  }
  if (r.selector.size() < 4) {
    return absl::InvalidArgumentError(
        fmt::format("'{}': a version id prefix needs at least 4 characters", ref));
  }
  std::vector<const DatasetVersionInfo*> hits;
  for (const DatasetVersionInfo& v : versions) {
    if (v.version.starts_with(r.selector)) hits.push_back(&v);
  }
  if (hits.size() == 1) return *hits.front();
  return absl::NotFoundError(fmt::format("{} version of dataset '{}' matches '{}': {}",
                                         hits.empty() ? "no" : "more than one", r.name, r.selector,
                                         Describe(versions)));
}

absl::StatusOr<DatasetVersionInfo> PublishDataset(ArtifactStore& lake, std::string_view name,
                                                  std::string_view version, const std::string& dir,
                                                  const nlohmann::json& manifest, bool* existed) {
  FERRY_ASSIGN_OR_RETURN(std::string key, layout::DatasetVersion(name, version));
  *existed = false;
  absl::Status committed = lake.CheckCommitted(key);
  if (committed.ok()) {
    *existed = true;
  } else if (!absl::IsNotFound(committed)) {
    return committed;  // tombstoned: a retired version is not brought back silently
  } else {
    for (const nlohmann::json& f : manifest.at("files")) {
      const std::string path = f.at("path").get<std::string>();
      FERRY_RETURN_IF_ERROR(lake.PutFile(fmt::format("{}/{}", key, path), dir + "/" + path));
    }
    absl::Status s = lake.Commit(key, manifest.dump(2), Durability::kFlushed);
    if (absl::IsAlreadyExists(s)) {
      *existed = true;  // a concurrent producer of the same content won
    } else if (!s.ok()) {
      return s;
    }
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<DatasetVersionInfo> versions, ListDatasetVersions(lake, name));
  for (DatasetVersionInfo& v : versions) {
    if (v.version == version) return std::move(v);
  }
  return absl::InternalError(fmt::format("dataset {} vanished after its commit", key));
}

}  // namespace ferry::storage
