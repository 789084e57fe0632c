#include "ferry/state/state_store.h"

#include <filesystem>
#include <string>
#include <string_view>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/state/sqlite_state_store.h"
#include "fmt/format.h"

namespace ferry::state {
namespace {

constexpr std::string_view kSqliteScheme = "sqlite://";
constexpr std::string_view kPostgresSchemes[] = {"postgresql://", "postgres://"};

}  // namespace

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
