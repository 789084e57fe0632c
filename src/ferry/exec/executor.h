#pragma once
// Executor: where a task's process runs. The scheduler hands it a LaunchSpec (argv, environment,
// working folder, log file, resources) and learns of exits through Wait; it never knows whether
// the process runs locally, in a container, or on a Slurm node. Every task, built-in step kinds
// included, is a process launched through an Executor.
//
// Thread-safety: one thread drives an Executor (the scheduler's loop).
//
// Example:
//   LocalExecutor exec;
//   FERRY_ASSIGN_OR_RETURN(int64_t h, exec.Launch(spec));
//   while (...) {
//     FERRY_ASSIGN_OR_RETURN(std::vector<ExitInfo> exits, exec.Wait(absl::Seconds(1)));
//     ...
//   }

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/config/resources.h"

namespace ferry::exec {

struct LaunchSpec {
  std::string label;                       // "run/task#attempt", for messages
  std::vector<std::string> argv;           // argv[0] is looked up on PATH
  std::map<std::string, std::string> env;  // added to (and overriding) the inherited environment
  std::string cwd;                         // working folder; must exist
  std::string log_path;                    // stdout and stderr are appended here
  config::Resources resources;             // memory is enforced where the backend can
};

struct ExitInfo {
  int64_t handle = 0;
  int exit_code = 0;    // the process's exit status, or 128 + signal when killed by one
  int signal = 0;       // the signal that ended it, 0 when it exited
  std::string message;  // e.g. "killed by SIGKILL after the 10s grace period"
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string name() const = 0;

  // Starts the process; returns its handle (for local processes: the pid, which is also the
  // process group id). Errors: the program cannot be started (NotFound, PermissionDenied).
  virtual absl::StatusOr<int64_t> Launch(const LaunchSpec& spec) = 0;

  // Blocks until at least one launched process has ended or `timeout` passes or the calling
  // thread is interrupted by a signal; returns the exits seen (possibly none).
  virtual absl::StatusOr<std::vector<ExitInfo>> Wait(absl::Duration timeout) = 0;

  // Asks the process (its whole group) to stop: SIGTERM now, SIGKILL once `grace` has passed
  // (Wait enforces that). Its exit is reported by Wait as usual.
  virtual absl::Status Terminate(int64_t handle, absl::Duration grace) = 0;

  // Kills what is left of a process started by an earlier, dead owner (after `ferry run` was
  // killed): SIGKILL to the group. OK when nothing is left.
  virtual absl::Status KillOrphan(int64_t handle) = 0;

  // How many launched processes have not been reported by Wait yet.
  virtual int live() const = 0;
};

// Picks the executor named in the project config ("local"; "container" and "slurm" arrive later
// and are reported as Unimplemented).
absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor(const std::string& kind);

}  // namespace ferry::exec
