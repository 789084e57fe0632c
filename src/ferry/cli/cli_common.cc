#include "ferry/cli/cli_common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/common/units.h"
#include "fmt/format.h"

namespace ferry::cli {

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kOutOfRange:
      return kExitUsage;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return kExitConflict;
    default:
      return kExitInternal;
  }
}

int Fail(const absl::Status& status) {
  std::string msg(status.message());
  // Multi-line messages (lists of config errors) print as they are, one per line.
  if (msg.find('\n') != std::string::npos || msg.find(": error: ") != std::string::npos) {
    fmt::print(stderr, "{}\n", msg);
  } else {
    fmt::print(stderr, "ferry: error: {}\n", msg);
  }
  return ExitCodeFor(status);
}

absl::StatusOr<state::JobRecord> GetJobOfKind(state::StateStore& store, const std::string& id,
                                              std::string_view kind, std::string_view what,
                                              std::string_view list) {
  absl::StatusOr<state::JobRecord> job = store.GetJob(id);
  if (!job.ok()) return job.status();
  if (job->kind != kind) {
    return absl::NotFoundError(
        fmt::format("{} is a {}, not a {}: list them with `{}`", id, job->kind, what, list));
  }
  return job;
}

absl::StatusOr<Project> OpenProject(const GlobalOptions& global, const std::string& hint) {
  std::string cwd = std::filesystem::current_path().string();
  Project p;
  if (!global.project_dir.empty()) {
    FERRY_ASSIGN_OR_RETURN(p.config, config::LoadProject(global.project_dir));
  } else {
    FERRY_ASSIGN_OR_RETURN(p.config, config::FindProject(hint.empty() ? cwd : hint, cwd));
  }
  // Commands that only read (runs, show, logs, cancel) must not leave a new .ferry/ folder in a
  // place that is not a project.
  constexpr std::string_view kSqlite = "sqlite://";
  if (hint.empty() && p.config.file.empty() && p.config.state_uri.rfind(kSqlite, 0) == 0 &&
      !PathExists(p.config.state_uri.substr(kSqlite.size()))) {
    return absl::NotFoundError(fmt::format(
        "{} is not a ferry project (no ferry.yaml here or above, and no runs): cd into a project, "
        "use -C DIR, or create one with `ferry init DIR`",
        p.config.root_dir));
  }
  FERRY_ASSIGN_OR_RETURN(p.store, state::OpenStateStore(p.config.state_uri));
  FERRY_ASSIGN_OR_RETURN(p.lake, storage::OpenArtifactStore(p.config.lake_uri));
  return p;
}

std::string ShowTime(absl::Time t) {
  if (t == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::LocalTimeZone());
}

std::string FormatSpan(absl::Time from, absl::Time to) {
  if (from == absl::InfinitePast() || to == absl::InfinitePast()) return "-";
  return HumanDuration(to - from);
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseParams(
    const std::vector<std::string>& flags) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& kv : flags) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          fmt::format("--param '{}': write NAME=VALUE, e.g. --param since=2026-01-01", kv));
    }
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return out;
}

absl::Status CheckPipelineFile(const std::string& path) {
  if (PathExists(path)) return absl::OkStatus();
  return absl::NotFoundError(fmt::format("no such pipeline file: {}", path));
}

std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "ferry" : p.string();
}

}  // namespace ferry::cli
