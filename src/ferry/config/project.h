#pragma once
// ProjectConfig: the typed form of a project's ferry.yaml (the state store, the data lake, named
// connections, executor defaults, resource templates and project-wide parameter values).
// Relative paths are resolved against the folder holding ferry.yaml. A project with no
// ferry.yaml gets every default. Immutable once loaded.
//
// Example (ferry.yaml; every key is optional):
//   name: churn
//   state: sqlite://.ferry/state.db     # default; sqlite://relative/path is project-relative,
//                                       # sqlite:///absolute/path is absolute
//   lake: file://.ferry/lake            # default; file:// paths work the same way
//   executor: { kind: local, max_parallel: 2, kill_grace: 10s }
//   connections: { crm: { uri: "sqlite://data/crm.db" } }   # or just  crm: sqlite://data/crm.db
//                                       # postgresql: add password_env: VAR or password_file: PATH
//   params: { since: "2026-01-01" }
//   templates: { small: { cpu: 1, memory: 512Mi, timeout: 10m, retries: 2 } }

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/config/diagnostics.h"
#include "ferry/config/resources.h"
#include "nlohmann/json.hpp"

namespace ferry::config {

// A named source database for `sql` steps. ferry.yaml never holds a password (it lives in git):
// a URI with one is a config error; the password comes from `password_env` or `password_file`,
// else from libpq's own defaults (PGPASSWORD, ~/.pgpass).
//   connections:
//     crm: sqlite://data/crm.db
//     warehouse: { uri: "postgresql://reader@wh:5432/sales", password_env: WH_PASSWORD }
struct Connection {
  std::string name;
  // "sqlite:///abs/path" (relative paths made absolute like state_uri) or
  // "postgresql://user@host:port/db" / "postgres://..." as written.
  std::string uri;
  std::string password_env;   // name of the environment variable holding the password, or ""
  std::string password_file;  // absolute path of a file whose first line is the password, or ""
  SourceLoc loc;
};

struct ExecutorConfig {
  std::string kind = "local";
  int max_parallel = 0;  // 0 = number of cores
  absl::Duration kill_grace = absl::Seconds(10);
};

struct ProjectConfig {
  std::string root_dir;   // absolute folder of the project
  std::string file;       // absolute path of ferry.yaml; empty when the project has none
  std::string name;       // default: the folder's name
  std::string state_uri;  // absolute: "sqlite:///abs/path/state.db" or "postgresql://..."
  std::string lake_uri;   // absolute: "file:///abs/path" or "s3://bucket/prefix"
  ExecutorConfig executor;
  std::map<std::string, Connection> connections;
  std::map<std::string, ResourceTemplate> templates;
  nlohmann::json params = nlohmann::json::object();  // project-wide parameter values
};

// Loads `<root_dir>/ferry.yaml` (defaults when absent). Every error found is reported, with
// file:line:column, in one InvalidArgument status.
absl::StatusOr<ProjectConfig> LoadProject(const std::string& root_dir);

// The project that holds `path` (a file or folder): the nearest ancestor folder with a
// ferry.yaml, else `fallback_dir` with defaults.
absl::StatusOr<ProjectConfig> FindProject(const std::string& path, const std::string& fallback_dir);

// Merged resources for a template name (empty = only built-ins and `default`). NotFound names
// the known templates.
absl::StatusOr<Resources> ResolveTemplate(const ProjectConfig& project, const std::string& name);

}  // namespace ferry::config
