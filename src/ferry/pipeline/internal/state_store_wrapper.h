#pragma once
// StateStoreWrapper: a StateStore that forwards every call to another one, so that a decorator
// (fault injection, counting) overrides only the calls it is about. Test-only. Borrows the
// target, which must outlive the wrapper; thread-safety is the target's.
// (The pattern of leveldb's EnvWrapper.)

#include <string>
#include <vector>

#include "ferry/state/state_store.h"

namespace ferry::pipeline::internal {

class StateStoreWrapper : public state::StateStore {
 public:
  explicit StateStoreWrapper(state::StateStore& target) : target_(target) {}

  absl::StatusOr<state::PipelineRunRecord> CreateRun(const state::NewRun& run) override {
    return target_.CreateRun(run);
  }
  absl::StatusOr<state::PipelineRunRecord> GetRun(const std::string& id) override {
    return target_.GetRun(id);
  }
  absl::StatusOr<std::vector<state::PipelineRunRecord>> ListRuns(const std::string& pipeline,
                                                                 int limit) override {
    return target_.ListRuns(pipeline, limit);
  }
  absl::StatusOr<state::PipelineRunRecord> TransitionRun(const state::RunTransition& t) override {
    return target_.TransitionRun(t);
  }
  absl::StatusOr<std::vector<state::TaskRunRecord>> GetTasks(const std::string& run_id) override {
    return target_.GetTasks(run_id);
  }
  absl::StatusOr<std::vector<state::TaskRunRecord>> TransitionTasks(
      const std::vector<state::TaskTransition>& batch, const std::string& actor) override {
    return target_.TransitionTasks(batch, actor);
  }
  absl::Status SetAttemptPid(const std::string& run_id, const std::string& task,
                             int64_t pid) override {
    return target_.SetAttemptPid(run_id, task, pid);
  }
  absl::StatusOr<std::vector<state::AttemptRecord>> GetAttempts(const std::string& run_id,
                                                                const std::string& task) override {
    return target_.GetAttempts(run_id, task);
  }
  absl::StatusOr<std::vector<state::EventRecord>> GetEvents(const std::string& resource) override {
    return target_.GetEvents(resource);
  }
  absl::Status PutCheckpoint(const state::CheckpointRecord& c) override {
    return target_.PutCheckpoint(c);
  }
  absl::StatusOr<state::CheckpointRecord> GetCheckpoint(const std::string& cache_key) override {
    return target_.GetCheckpoint(cache_key);
  }
  absl::StatusOr<state::ModelRecord> CreateModel(const std::string& name,
                                                 const std::string& description) override {
    return target_.CreateModel(name, description);
  }
  absl::StatusOr<state::ModelRecord> GetModel(const std::string& name) override {
    return target_.GetModel(name);
  }
  absl::StatusOr<std::vector<state::ModelRecord>> ListModels() override {
    return target_.ListModels();
  }
  absl::StatusOr<state::ModelVersionRecord> RegisterModelVersion(
      const state::NewModelVersion& v) override {
    return target_.RegisterModelVersion(v);
  }
  absl::StatusOr<state::ModelVersionRecord> GetModelVersion(const std::string& model,
                                                            int64_t version) override {
    return target_.GetModelVersion(model, version);
  }
  absl::StatusOr<std::vector<state::ModelVersionRecord>> ListModelVersions(
      const std::string& model) override {
    return target_.ListModelVersions(model);
  }
  absl::StatusOr<state::ModelVersionRecord> TransitionModelVersion(
      const state::ModelVersionTransition& t) override {
    return target_.TransitionModelVersion(t);
  }
  absl::StatusOr<state::ModelAliasRecord> SetAlias(const state::AliasMove& move) override {
    return target_.SetAlias(move);
  }
  absl::StatusOr<state::ModelAliasRecord> GetAlias(const std::string& model,
                                                   const std::string& alias) override {
    return target_.GetAlias(model, alias);
  }
  absl::StatusOr<std::vector<state::ModelAliasRecord>> ListAliases(
      const std::string& model) override {
    return target_.ListAliases(model);
  }
  absl::Status DeleteAlias(const std::string& model, const std::string& alias,
                           const std::string& actor) override {
    return target_.DeleteAlias(model, alias, actor);
  }
  absl::StatusOr<state::ExperimentRecord> RecordExperiment(const state::NewExperiment& e) override {
    return target_.RecordExperiment(e);
  }
  absl::StatusOr<state::ExperimentRecord> GetExperiment(int64_t id) override {
    return target_.GetExperiment(id);
  }
  absl::StatusOr<state::ExperimentRecord> FindExperiment(const std::string& run_id,
                                                         const std::string& task) override {
    return target_.FindExperiment(run_id, task);
  }
  absl::StatusOr<std::vector<state::ExperimentRecord>> ListExperiments(
      const state::ExperimentFilter& f) override {
    return target_.ListExperiments(f);
  }
  absl::Status SetExperimentMetrics(int64_t id, const std::string& section,
                                    const std::string& metrics_json) override {
    return target_.SetExperimentMetrics(id, section, metrics_json);
  }
  absl::Status SetExperimentModelVersion(int64_t id, const std::string& model_version) override {
    return target_.SetExperimentModelVersion(id, model_version);
  }
  absl::StatusOr<state::ModelVersionRecord> SetModelVersionArtifact(
      const std::string& model, int64_t version, const std::string& artifact_uri) override {
    return target_.SetModelVersionArtifact(model, version, artifact_uri);
  }

  absl::StatusOr<state::EndpointRecord> CreateEndpoint(const state::NewEndpoint& e) override {
    return target_.CreateEndpoint(e);
  }
  absl::StatusOr<state::EndpointRecord> GetEndpoint(const std::string& name) override {
    return target_.GetEndpoint(name);
  }
  absl::StatusOr<std::vector<state::EndpointRecord>> ListEndpoints() override {
    return target_.ListEndpoints();
  }
  absl::StatusOr<state::EndpointRecord> TransitionEndpoint(
      const state::EndpointTransition& t) override {
    return target_.TransitionEndpoint(t);
  }
  absl::StatusOr<state::DeploymentRecord> CreateDeployment(const state::NewDeployment& d) override {
    return target_.CreateDeployment(d);
  }
  absl::StatusOr<state::DeploymentRecord> GetDeployment(const std::string& id) override {
    return target_.GetDeployment(id);
  }
  absl::StatusOr<std::vector<state::DeploymentRecord>> ListDeployments(const std::string& endpoint,
                                                                       int limit) override {
    return target_.ListDeployments(endpoint, limit);
  }
  absl::StatusOr<state::DeploymentRecord> TransitionDeployment(
      const state::DeploymentTransition& t) override {
    return target_.TransitionDeployment(t);
  }
  absl::Status PutVariantStats(const state::VariantStatsRecord& s) override {
    return target_.PutVariantStats(s);
  }
  absl::StatusOr<std::vector<state::VariantStatsRecord>> ListVariantStats(
      const std::string& endpoint) override {
    return target_.ListVariantStats(endpoint);
  }
  absl::Status DeleteVariantStats(const std::string& endpoint,
                                  const std::string& instance) override {
    return target_.DeleteVariantStats(endpoint, instance);
  }
  absl::StatusOr<state::ApiKeyRecord> CreateApiKey(const state::ApiKeyRecord& k) override {
    return target_.CreateApiKey(k);
  }
  absl::StatusOr<std::vector<state::ApiKeyRecord>> ListApiKeys() override {
    return target_.ListApiKeys();
  }
  absl::Status RevokeApiKey(const std::string& id) override { return target_.RevokeApiKey(id); }
  absl::StatusOr<state::JobRecord> CreateJob(const state::NewJob& job) override {
    return target_.CreateJob(job);
  }
  absl::StatusOr<state::JobRecord> GetJob(const std::string& id) override {
    return target_.GetJob(id);
  }
  absl::StatusOr<std::vector<state::JobRecord>> ListJobs(const std::string& kind,
                                                         const std::string& subject,
                                                         int limit) override {
    return target_.ListJobs(kind, subject, limit);
  }
  absl::StatusOr<state::JobRecord> TransitionJob(const state::JobTransition& t) override {
    return target_.TransitionJob(t);
  }
  absl::Status SetJobResult(const std::string& id, std::string_view state,
                            const std::string& result_json) override {
    return target_.SetJobResult(id, state, result_json);
  }

 protected:
  state::StateStore& target() { return target_; }

 private:
  state::StateStore& target_;
};

}  // namespace ferry::pipeline::internal
