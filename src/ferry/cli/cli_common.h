#pragma once
// What the subcommands share: exit codes, error printing, opening a project's store and lake,
// and small formatting helpers. Each subcommand lives in its own file and registers itself with
// a Register*Command function called from main.cc. Not thread-safe (the CLI is single-threaded).

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ferry/common/status.h"
#include "ferry/config/project.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::cli {

// Exit codes (docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;  // the run ended in `failed`
inline constexpr int kExitUsage = 2;      // bad flags, invalid config or pipeline
inline constexpr int kExitNotFound = 3;   // no such run, task, file
inline constexpr int kExitConflict = 4;   // wrong state for that: already running, ended, ...
inline constexpr int kExitCancelled = 5;  // the run ended in `cancelled`
inline constexpr int kExitInternal = 10;  // the store, the lake or the OS failed

int ExitCodeFor(const absl::Status& status);
// Prints "ferry: error: <message>" to stderr and returns ExitCodeFor(status).
int Fail(const absl::Status& status);

struct GlobalOptions {
  std::string project_dir;  // -C/--project; empty = find from the current folder
};

// An opened project: its config, state store and lake.
struct Project {
  config::ProjectConfig config;
  std::unique_ptr<state::StateStore> store;
  std::unique_ptr<storage::ArtifactStore> lake;
};

// `hint` is a file or folder inside the project (a pipeline file), or empty for the current
// folder; -C wins over both.
absl::StatusOr<Project> OpenProject(const GlobalOptions& global, const std::string& hint);

// The job `id` (a BatchJob, a MonitorRun, ...) when it is of `kind`; NotFound naming what it is
// instead and the command that lists the right ones (`what`: "batch job", `list`: "ferry
// batch-jobs").
absl::StatusOr<state::JobRecord> GetJobOfKind(state::StateStore& store, const std::string& id,
                                              std::string_view kind, std::string_view what,
                                              std::string_view list);

std::string ShowTime(absl::Time t);  // "2026-11-27 12:17:03" local, "-" if unset
std::string FormatSpan(absl::Time from, absl::Time to);  // "1.2s", "-" if unset
// --param NAME=VALUE flags, in order; InvalidArgument for one without '='.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseParams(
    const std::vector<std::string>& flags);
// NotFound (exit 3) when a pipeline file named on the command line does not exist; loading it
// would report that as an invalid file (exit 2).
absl::Status CheckPipelineFile(const std::string& path);
std::string SelfExe();

void RegisterInitCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterServeCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterDeployCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterEndpointsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterKeysCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterValidateCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterRunCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterRunsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterShowCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterLogsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterCancelCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterStatesCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterRenderCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterTaskCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterDatasetsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterValidateDataCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterModelsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterExperimentsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterPredictCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterBatchCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterBatchJobsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterLabelsCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterMonitorCommand(CLI::App& app, GlobalOptions& g, int& rc);
void RegisterMonitorRunsCommand(CLI::App& app, GlobalOptions& g, int& rc);

}  // namespace ferry::cli
