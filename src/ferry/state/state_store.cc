#include "ferry/state/state_store.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/state/kinds.h"
#include "ferry/state/sqlite_state_store.h"
#include "fmt/format.h"

namespace ferry::state {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite://";
constexpr std::string_view kPostgresSchemes[] = {"postgresql://", "postgres://"};

constexpr std::string_view kLatest = "latest";
// Version numbers stay far below INT64_MAX; more digits is a typo, not a version.
constexpr size_t kMaxVersionDigits = 18;

absl::Status BadModelRef(std::string_view ref, std::string_view why) {
  return absl::InvalidArgumentError(
      fmt::format("model reference '{}': {}; write NAME (the latest version), NAME:VERSION "
                  "(churn:7), NAME:ALIAS (churn:champion) or NAME:latest",
                  ref, why));
}

}  // namespace

std::string NewDeploymentId(const Clock& clock) { return NewJobId('d', clock); }

std::string NewJobId(char prefix, const Clock& clock) {
  thread_local std::mt19937 rng(std::random_device{}());
  const std::string t = absl::FormatTime("%Y%m%d-%H%M%S", clock.Now(), absl::UTCTimeZone());
  return fmt::format("{}{}-{:06x}", prefix, t, rng() & 0xffffff);
}

absl::Status CheckModelName(std::string_view name) {
  if (IsValidName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("'{}' is not a valid model name: use letters, digits, '_', '-' and '.' (not "
                  "first, and no '..'), at most 128 characters",
                  name));
}

absl::Status CheckAliasName(std::string_view alias) {
  if (!IsValidName(alias)) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a valid alias: use letters, digits, '_', '-' and '.' (not first, "
                    "and no '..'), at most 128 characters",
                    alias));
  }
  if (alias == kLatest) {
    return absl::InvalidArgumentError(
        "'latest' cannot be an alias: NAME:latest always means the newest usable version");
  }
  if (std::all_of(alias.begin(), alias.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' cannot be an alias: NAME:{} means version {}; put a letter in it", alias,
                    alias, alias));
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelRef> ParseModelRef(std::string_view ref) {
  const size_t colon = ref.find(':');
  ModelRef out;
  out.model = std::string(ref.substr(0, colon));
  if (!IsValidName(out.model)) {
    return BadModelRef(ref, fmt::format("'{}' is not a valid model name", out.model));
  }
  if (colon == std::string_view::npos) return out;
  const std::string_view rest = ref.substr(colon + 1);
  if (rest.empty()) return BadModelRef(ref, "nothing after ':'");
  if (rest == kLatest) return out;
  if (std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (rest.size() > kMaxVersionDigits) return BadModelRef(ref, "the version number is too long");
    for (char c : rest) out.version = out.version * 10 + (c - '0');
    if (out.version == 0) return BadModelRef(ref, "versions are numbered from 1");
    return out;
  }
  if (!IsValidName(rest)) return BadModelRef(ref, fmt::format("'{}' is not a valid alias", rest));
  out.alias = std::string(rest);
  return out;
}

absl::StatusOr<ModelVersionRecord> ResolveModelRef(StateStore& store, std::string_view ref) {
  FERRY_ASSIGN_OR_RETURN(ModelRef parsed, ParseModelRef(ref));
  if (parsed.version > 0) return store.GetModelVersion(parsed.model, parsed.version);
  if (!parsed.alias.empty()) {
    FERRY_ASSIGN_OR_RETURN(ModelAliasRecord alias, store.GetAlias(parsed.model, parsed.alias));
    return store.GetModelVersion(parsed.model, alias.version);
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<ModelVersionRecord> versions,
                         store.ListModelVersions(parsed.model));
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (IsUsableModelState(it->state)) return std::move(*it);
  }
  return absl::NotFoundError(fmt::format(
      "model {} has no version to use for '{}': {}", parsed.model, ref,
      versions.empty() ? std::string("none is registered yet")
                       : fmt::format("all {} are rejected or tombstoned", versions.size())));
}

absl::StatusOr<std::unique_ptr<StateStore>> OpenStateStore(const std::string& uri) {
  const std::string_view u = uri;
  if (u.starts_with(kSqliteScheme)) {
    const std::string path(u.substr(kSqliteScheme.size()));
    if (!path.starts_with('/')) {
      return absl::InvalidArgumentError(
          fmt::format("state store URI '{}' needs an absolute path: sqlite:///abs/path/state.db "
                      "(three slashes)",
                      uri));
    }
    if (path.ends_with('/')) {
      return absl::InvalidArgumentError(
          fmt::format("state store URI '{}' names a folder; name the database file", uri));
    }
    FERRY_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<SqliteStateStore> store, SqliteStateStore::Open(path));
    return std::unique_ptr<StateStore>(std::move(store));
  }
  for (std::string_view scheme : kPostgresSchemes) {
    if (u.starts_with(scheme)) {
      // The URI is not echoed: it may carry a password.
      return absl::UnimplementedError(
          "PostgreSQL state stores (postgresql://...) are not built yet; use "
          "sqlite:///abs/path/state.db");
    }
  }
  const size_t scheme_end = u.find("://");
  // Only the scheme is echoed: the rest may carry a password.
  const std::string named = scheme_end == std::string_view::npos
                                ? fmt::format("'{}' (no scheme)", uri)
                                : fmt::format("scheme {}", u.substr(0, scheme_end + 3));
  return absl::InvalidArgumentError(fmt::format(
      "unsupported state store URI, {}; supported: sqlite:///abs/path/state.db (postgresql:// is "
      "planned)",
      named));
}

}  // namespace ferry::state
