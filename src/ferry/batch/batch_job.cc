#include "ferry/batch/batch_job.h"

#include "absl/status/status.h"

namespace ferry::batch {

nlohmann::json BatchSpecToJson(const BatchSpec&) { return nlohmann::json::object(); }

absl::StatusOr<BatchSpec> BatchSpecFromJson(const nlohmann::json&) {
  return absl::UnimplementedError("batch jobs are not implemented yet");
}

nlohmann::json BatchResultToJson(const BatchResult&) { return nlohmann::json::object(); }

absl::StatusOr<state::JobRecord> SubmitBatchJob(state::StateStore&, storage::ArtifactStore&,
                                                const std::string&, const BatchSpec&, const Clock&,
                                                const std::string&) {
  return absl::UnimplementedError("batch jobs are not implemented yet");
}

absl::StatusOr<BatchResult> RunBatchJob(state::StateStore&, storage::ArtifactStore&,
                                        const std::string&, const std::string&, const Clock&,
                                        const ProgressFn&, const std::atomic<bool>*) {
  return absl::UnimplementedError("batch jobs are not implemented yet");
}

}  // namespace ferry::batch
