#include "ferry/exec/executor.h"

#include "ferry/exec/local_executor.h"
#include "fmt/format.h"

namespace ferry::exec {

absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor(const std::string& kind) {
  if (kind.empty() || kind == "local") return std::make_unique<LocalExecutor>();
  if (kind == "container" || kind == "slurm") {
    return absl::UnimplementedError(fmt::format(
        "the '{}' executor is not available in this build yet; use executor.kind: local", kind));
  }
  return absl::InvalidArgumentError(
      fmt::format("unknown executor kind '{}'; expected local, container or slurm", kind));
}

}  // namespace ferry::exec
