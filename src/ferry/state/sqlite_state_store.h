#pragma once
// SqliteStateStore: the StateStore on one SQLite file, for a single machine. Several processes
// (`ferry run`, `ferry cancel`, the controller) open the same file; they coordinate through
// SQLite's locks: WAL journal, every write in a BEGIN IMMEDIATE transaction, a 10 s busy timeout.
// The unique partial indexes of the schema enforce one live attempt per task, one live run per
// (pipeline, idempotency key) and one pending-or-baking deployment per endpoint, whoever writes.
//
// Thread-safety: as StateStore says, one instance is used by one thread at a time (the connection
// is opened without SQLite's mutex). Open one instance per thread. Never carry an instance across
// fork(): the child opens its own.
//
// Times are stored as integer microseconds since the Unix epoch, NULL for InfinitePast; the
// records this store returns are therefore truncated to microseconds.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto store, SqliteStateStore::Open("/p/.ferry/state.db"));
//   FERRY_ASSIGN_OR_RETURN(auto tasks, store->GetTasks(run_id));

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/common/clock.h"
#include "ferry/state/state_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ferry::state {
namespace sqlite_internal {
enum class Query : int;  // every statement the store runs; defined in the .cc
class Statement;         // a borrowed, cached prepared statement
class WriteTransaction;  // BEGIN IMMEDIATE ... COMMIT, rolled back unless committed
}  // namespace sqlite_internal

class SqliteStateStore final : public StateStore {
 public:
  // Opens (creating it if missing, but not its folder) the database file at `path`, switches it
  // to WAL, and applies any schema migration it lacks. `clock` stamps every row and event; it is
  // borrowed and must outlive the store. FailedPrecondition when the file was migrated by a newer
  // ferry; Unavailable when another process keeps it locked past the busy timeout.
  static absl::StatusOr<std::unique_ptr<SqliteStateStore>> Open(
      const std::string& path, const Clock& clock = SystemClock::Get());

  // Creates the database at `path` with the schema as of migration `version` only, as an older
  // ferry left it, to test the migrations that follow.
  static absl::Status CreateAtSchemaVersionForTest(const std::string& path, int version);

  ~SqliteStateStore() override;
  SqliteStateStore(const SqliteStateStore&) = delete;
  SqliteStateStore& operator=(const SqliteStateStore&) = delete;

  absl::StatusOr<PipelineRunRecord> CreateRun(const NewRun& run) override;
  absl::StatusOr<PipelineRunRecord> GetRun(const std::string& id) override;
  absl::StatusOr<std::vector<PipelineRunRecord>> ListRuns(const std::string& pipeline,
                                                          int limit) override;
  absl::StatusOr<PipelineRunRecord> TransitionRun(const RunTransition& t) override;

  absl::StatusOr<std::vector<TaskRunRecord>> GetTasks(const std::string& run_id) override;
  absl::StatusOr<std::vector<TaskRunRecord>> TransitionTasks(
      const std::vector<TaskTransition>& batch, const std::string& actor) override;
  absl::Status SetAttemptPid(const std::string& run_id, const std::string& task,
                             int64_t pid) override;
  absl::StatusOr<std::vector<AttemptRecord>> GetAttempts(const std::string& run_id,
                                                         const std::string& task) override;

  absl::StatusOr<std::vector<EventRecord>> GetEvents(const std::string& resource) override;

  absl::Status PutCheckpoint(const CheckpointRecord& c) override;
  absl::StatusOr<CheckpointRecord> GetCheckpoint(const std::string& cache_key) override;

  absl::StatusOr<ModelRecord> CreateModel(const std::string& name,
                                          const std::string& description) override;
  absl::StatusOr<ModelRecord> GetModel(const std::string& name) override;
  absl::StatusOr<std::vector<ModelRecord>> ListModels() override;
  absl::StatusOr<ModelVersionRecord> RegisterModelVersion(const NewModelVersion& v) override;
  absl::StatusOr<ModelVersionRecord> GetModelVersion(const std::string& model,
                                                     int64_t version) override;
  absl::StatusOr<std::vector<ModelVersionRecord>> ListModelVersions(
      const std::string& model) override;
  absl::StatusOr<ModelVersionRecord> TransitionModelVersion(
      const ModelVersionTransition& t) override;
  absl::StatusOr<ModelAliasRecord> SetAlias(const AliasMove& move) override;
  absl::StatusOr<ModelAliasRecord> GetAlias(const std::string& model,
                                            const std::string& alias) override;
  absl::StatusOr<std::vector<ModelAliasRecord>> ListAliases(const std::string& model) override;
  absl::Status DeleteAlias(const std::string& model, const std::string& alias,
                           const std::string& actor) override;

  absl::StatusOr<ExperimentRecord> RecordExperiment(const NewExperiment& e) override;
  absl::StatusOr<ExperimentRecord> GetExperiment(int64_t id) override;
  absl::StatusOr<ExperimentRecord> FindExperiment(const std::string& run_id,
                                                  const std::string& task) override;
  absl::StatusOr<std::vector<ExperimentRecord>> ListExperiments(const ExperimentFilter& f) override;
  absl::Status SetExperimentMetrics(int64_t id, const std::string& section,
                                    const std::string& metrics_json) override;
  absl::Status SetExperimentModelVersion(int64_t id, const std::string& model_version) override;
  absl::StatusOr<ModelVersionRecord> SetModelVersionArtifact(
      const std::string& model, int64_t version, const std::string& artifact_uri) override;

  absl::StatusOr<EndpointRecord> CreateEndpoint(const NewEndpoint& e) override;
  absl::StatusOr<EndpointRecord> GetEndpoint(const std::string& name) override;
  absl::StatusOr<std::vector<EndpointRecord>> ListEndpoints() override;
  absl::StatusOr<EndpointRecord> TransitionEndpoint(const EndpointTransition& t) override;

  absl::StatusOr<DeploymentRecord> CreateDeployment(const NewDeployment& d) override;
  absl::StatusOr<DeploymentRecord> GetDeployment(const std::string& id) override;
  absl::StatusOr<std::vector<DeploymentRecord>> ListDeployments(const std::string& endpoint,
                                                                int limit) override;
  absl::StatusOr<DeploymentRecord> TransitionDeployment(const DeploymentTransition& t) override;

  absl::Status PutVariantStats(const VariantStatsRecord& s) override;
  absl::StatusOr<std::vector<VariantStatsRecord>> ListVariantStats(
      const std::string& endpoint) override;
  absl::Status DeleteVariantStats(const std::string& endpoint,
                                  const std::string& instance) override;

  absl::StatusOr<ApiKeyRecord> CreateApiKey(const ApiKeyRecord& k) override;
  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() override;
  absl::Status RevokeApiKey(const std::string& id) override;

  absl::StatusOr<JobRecord> CreateJob(const NewJob& job) override;
  absl::StatusOr<JobRecord> GetJob(const std::string& id) override;
  absl::StatusOr<std::vector<JobRecord>> ListJobs(const std::string& kind,
                                                  const std::string& subject, int limit) override;
  absl::StatusOr<JobRecord> TransitionJob(const JobTransition& t) override;
  absl::Status SetJobResult(const std::string& id, std::string_view state,
                            const std::string& result_json) override;

 private:
  using Query = sqlite_internal::Query;
  using Statement = sqlite_internal::Statement;
  using WriteTransaction = sqlite_internal::WriteTransaction;

  SqliteStateStore(sqlite3* db, std::string path, const Clock& clock);

  absl::Status Configure();
  // Applies the migrations up to version `up_to` that the database lacks.
  absl::Status Migrate(int up_to);
  absl::Status Prepare(Query first, Query last);
  // The cached prepared statement for `q`; reset and unbound when the returned object dies.
  Statement Use(Query q);
  // BEGIN IMMEDIATE, retried while another connection holds the write lock past the busy timeout.
  absl::StatusOr<WriteTransaction> BeginWrite();
  absl::Time Now() const;  // truncated to microseconds, as stored

  // One transition of a batch, inside the batch's write transaction; appends the new row to `out`.
  absl::Status PutCheckpointLocked(const CheckpointRecord& c, absl::Time now);
  absl::Status TransitionTaskLocked(const TaskTransition& t, const std::string& actor,
                                    absl::Time now, std::vector<TaskRunRecord>& out);
  absl::Status AppendEvent(std::string_view kind, const std::string& resource,
                           std::string_view from, std::string_view to, int64_t version,
                           const std::string& actor, const std::string& reason, absl::Time at);
  // The live run of `pipeline` holding idempotency key `key`, if any.
  absl::StatusOr<std::optional<PipelineRunRecord>> LiveRunWithKey(const std::string& pipeline,
                                                                  const std::string& key);
  // Version `version` of `model`; NotFound naming which of the two is missing.
  absl::StatusOr<ModelVersionRecord> ModelVersionLocked(const std::string& model, int64_t version);
  // The pending or baking deployment of `endpoint`, if any.
  absl::StatusOr<std::optional<DeploymentRecord>> InFlightDeployment(const std::string& endpoint);

  sqlite3* db_;
  std::string path_;
  const Clock& clock_;
  std::vector<sqlite3_stmt*> statements_;  // indexed by Query
};

}  // namespace ferry::state
