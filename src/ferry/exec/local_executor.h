#pragma once
// LocalExecutor: tasks as local processes. Each task gets its own session and process group
// (so cancellation reaches its children too), stdin from /dev/null, stdout+stderr appended to
// its log file, and an address-space limit when `memory` is set. Exits are observed through
// pidfds and ppoll, so waiting costs nothing while tasks run, and SIGINT/SIGTERM delivered to the
// caller interrupt Wait. When a task's main process exits, whatever it left in its process group
// is killed, and a task gets SIGKILL when the thread that launched it dies (PR_SET_PDEATHSIG), so
// no task outlives a `ferry run` killed with -9. Single-threaded use (see Executor).

#include <map>
#include <string>
#include <utility>

#include "ferry/exec/executor.h"

namespace ferry::exec {

class LocalExecutor final : public Executor {
 public:
  LocalExecutor() = default;
  ~LocalExecutor() override;

  std::string name() const override { return "local"; }
  absl::StatusOr<int64_t> Launch(const LaunchSpec& spec) override;
  absl::StatusOr<std::vector<ExitInfo>> Wait(absl::Duration timeout) override;
  absl::Status Terminate(int64_t handle, absl::Duration grace) override;
  absl::Status KillOrphan(int64_t handle) override;
  int live() const override { return static_cast<int>(procs_.size()); }

 private:
  struct Proc {
    int pidfd = -1;
    absl::Time kill_at = absl::InfiniteFuture();  // SIGKILL deadline after a Terminate
    bool terminated = false;
    bool killed = false;
  };
  // argv[0] as found on PATH, by (name, PATH): the search happens once per program instead of
  // as failed execs in every child.
  std::string FindProgram(const std::string& name, const std::string& path);

  std::map<int64_t, Proc> procs_;  // by pid
  std::map<std::pair<std::string, std::string>, std::string> programs_;
};

}  // namespace ferry::exec
