#include "ferry/state/sqlite_state_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::state {
namespace {

constexpr int kBusyTimeoutMs = 10'000;
// How many times BEGIN IMMEDIATE (and the switch to WAL) is tried when the lock stays taken past
// the busy timeout: a long checkpoint or a burst of writers, not a stuck process.
constexpr int kBusyAttempts = 3;

std::string DatabaseName(sqlite3* db) {
  const char* name = db == nullptr ? nullptr : sqlite3_db_filename(db, "main");
  return name == nullptr || *name == '\0' ? "sqlite database" : name;
}

// A SQLite result code as a canonical Status naming the database and what was being done.
absl::Status SqliteError(sqlite3* db, int rc, std::string_view what,
                         std::string_view subject = {}) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = fmt::format("{}: {}{}{}: {}", DatabaseName(db), what,
                                    subject.empty() ? "" : " ", subject, detail);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(
          fmt::format("{} (another process kept the database locked for over {} s; try again)",
                      message, kBusyTimeoutMs / 1000));
    case SQLITE_CONSTRAINT:
      return absl::FailedPreconditionError(message);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(
          fmt::format("{} (check that the folder exists and is writable)", message));
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_IOERR:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace

namespace sqlite_internal {

enum class Query : int {
  // Transaction control; prepared before the schema exists.
  kBegin,
  kCommit,
  kRollback,
  // The schema version; prepared once the schema_version table exists.
  kSchemaVersion,
  kRecordSchemaVersion,
  // Everything else; prepared after migration.
  kInsertRun,
  kFirstData = kInsertRun,
  kGetRun,
  kRunState,
  kLiveRunWithKey,
  kListRuns,
  kListRunsOfPipeline,
  kUpdateRun,
  kInsertTask,
  kGetTasks,
  kTaskState,
  kUpdateTask,
  kOpenAttempt,
  kCloseAttempt,
  kSetAttemptPid,
  kSetTaskPid,
  kGetAttempts,
  kInsertEvent,
  kGetEvents,
  kGetAllEvents,
  kPutCheckpoint,
  kGetCheckpoint,
  kInsertModel,
  kGetModel,
  kListModels,
  kNextModelVersion,
  kModelVersionWithKey,
  kInsertModelVersion,
  kGetModelVersion,
  kListModelVersions,
  kModelVersionState,
  kUpdateModelVersion,
  kAliasesOfVersion,
  kGetAlias,
  kListAliases,
  kPutAlias,
  kDeleteAlias,
  kInsertExperiment,
  kUpdateExperiment,
  kGetExperiment,
  kFindExperiment,
  kListExperiments,
  kSetExperimentMetrics,
  kSetExperimentModelVersion,
  kSetModelVersionArtifact,
  kInsertEndpoint,
  kGetEndpoint,
  kListEndpoints,
  kEndpointState,
  kUpdateEndpoint,
  kInsertDeployment,
  kGetDeployment,
  kDeploymentState,
  kDeploymentWithKey,
  kInFlightDeployment,
  kListDeployments,
  kListDeploymentsOfEndpoint,
  kUpdateDeployment,
  kPutVariantStats,
  kListVariantStats,
  kDeleteVariantStats,
  kInsertApiKey,
  kListApiKeys,
  kRevokeApiKey,
  kInsertJob,
  kGetJob,
  kJobState,
  kJobWithKey,
  kListJobs,
  kListJobsOfSubject,
  kUpdateJob,
  kSetJobResult,
  kLast = kSetJobResult,
};

class Statement {
 public:
  explicit Statement(sqlite3_stmt* s) : s_(s) {}
  Statement(Statement&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (s_ == nullptr) return;
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  // Binders; `i` is the 1-based parameter number (?i). The text is copied.
  Statement& Text(int i, std::string_view v) {
    // SQLite binds a null pointer as NULL; an empty view is the empty string here.
    const char* data = v.data() != nullptr ? v.data() : "";
    return Check(sqlite3_bind_text64(s_, i, data, v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& Int(int i, int64_t v) { return Check(sqlite3_bind_int64(s_, i, v)); }
  Statement& Real(int i, double v) { return Check(sqlite3_bind_double(s_, i, v)); }
  Statement& Null(int i) { return Check(sqlite3_bind_null(s_, i)); }
  // InfinitePast is stored as NULL.
  Statement& Time(int i, absl::Time t) {
    return t == absl::InfinitePast() ? Null(i) : Int(i, absl::ToUnixMicros(t));
  }
  // Optional values: NULL when unset (the UPDATEs keep the column with COALESCE).
  Statement& OptText(int i, const std::optional<std::string>& v) {
    return v.has_value() ? Text(i, *v) : Null(i);
  }
  template <typename T>
  Statement& OptInt(int i, const std::optional<T>& v) {
    return v.has_value() ? Int(i, static_cast<int64_t>(*v)) : Null(i);
  }
  Statement& OptTime(int i, const std::optional<absl::Time>& v) {
    return v.has_value() ? Time(i, *v) : Null(i);
  }

  // SQLITE_ROW, SQLITE_DONE, or an (extended) error code.
  int Step() { return sqlite3_step(s_); }
  // True when a row is ready, false when done.
  // `what` and `subject` ("cannot update", "r1/train") name the failure; they are only
  // formatted when there is one.
  absl::StatusOr<bool> Next(std::string_view what, std::string_view subject = {}) {
    int rc = Step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(sqlite3_db_handle(s_), rc, what, subject);
  }
  // Runs a statement that returns no rows.
  absl::Status Run(std::string_view what, std::string_view subject = {}) {
    int rc = Step();
    if (rc == SQLITE_DONE) return absl::OkStatus();
    return SqliteError(sqlite3_db_handle(s_), rc, what, subject);
  }
  int Changes() const { return sqlite3_changes(sqlite3_db_handle(s_)); }

  // Column readers; `c` is 0-based.
  std::string ColText(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(s_, c));
  }
  int64_t ColInt(int c) const { return sqlite3_column_int64(s_, c); }
  double ColReal(int c) const { return sqlite3_column_double(s_, c); }
  absl::Time ColTime(int c) const {
    return sqlite3_column_type(s_, c) == SQLITE_NULL ? absl::InfinitePast()
                                                     : absl::FromUnixMicros(ColInt(c));
  }

 private:
  // A failed bind is a bug of ours (wrong index) or out of memory.
  Statement& Check(int rc) {
    FERRY_CHECK(rc == SQLITE_OK);
    return *this;
  }

  sqlite3_stmt* s_;
};

class WriteTransaction {
 public:
  WriteTransaction(sqlite3_stmt* commit, sqlite3_stmt* rollback)
      : commit_(commit), rollback_(rollback) {}
  WriteTransaction(WriteTransaction&& other) noexcept
      : commit_(std::exchange(other.commit_, nullptr)),
        rollback_(std::exchange(other.rollback_, nullptr)) {}
  WriteTransaction& operator=(WriteTransaction&&) = delete;
  // Rolls back unless committed. A failed statement may have ended the transaction already;
  // ROLLBACK then reports "no transaction is active", which is fine.
  ~WriteTransaction() {
    if (rollback_ != nullptr) Statement(rollback_).Step();
  }

  absl::Status Commit() {
    FERRY_RETURN_IF_ERROR(Statement(commit_).Run("cannot commit"));
    rollback_ = nullptr;
    return absl::OkStatus();
  }

 private:
  sqlite3_stmt* commit_;
  sqlite3_stmt* rollback_;
};

}  // namespace sqlite_internal

namespace {

using sqlite_internal::Query;
using sqlite_internal::Statement;
using sqlite_internal::WriteTransaction;

// The live states of a PipelineRun: the non-terminal ones of PipelineRunKind(). They are spelled
// out in the unique index below and in kLiveRunWithKey, which must match it for SQLite to use it.
#define FERRY_LIVE_RUN_STATES "('queued', 'running', 'cancelling')"
// The in-flight states of a Deployment: the non-terminal ones of DeploymentKind(). Spelled out in
// the unique index below and in kInFlightDeployment, which must match it for SQLite to use it.
#define FERRY_IN_FLIGHT_DEPLOYMENT_STATES "('pending', 'baking')"

struct Migration {
  int version;
  const char* sql;
};

// Applied in order, each in its own transaction; never edit a step once released, add one.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE pipeline_runs (
  id TEXT NOT NULL PRIMARY KEY,
  pipeline TEXT NOT NULL,
  pipeline_file TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  version INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '',
  spec_json TEXT NOT NULL DEFAULT '',
  owner_pid INTEGER NOT NULL DEFAULT 0,
  owner_host TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX pipeline_runs_by_created ON pipeline_runs (created_at);
CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created_at);
CREATE UNIQUE INDEX pipeline_runs_one_live_per_key ON pipeline_runs (pipeline, idempotency_key)
  WHERE idempotency_key <> '' AND state IN )sql" FERRY_LIVE_RUN_STATES R"sql(;

CREATE TABLE task_runs (
  run_id TEXT NOT NULL REFERENCES pipeline_runs (id),
  task TEXT NOT NULL,
  seq INTEGER NOT NULL,
  state TEXT NOT NULL,
  version INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL DEFAULT 0,
  exit_code INTEGER NOT NULL DEFAULT 0,
  cache_key TEXT NOT NULL DEFAULT '',
  output_uri TEXT NOT NULL DEFAULT '',
  output_hash TEXT NOT NULL DEFAULT '',
  queued_at INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  retry_at INTEGER,
  message TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, task)
) WITHOUT ROWID;
CREATE UNIQUE INDEX task_runs_in_creation_order ON task_runs (run_id, seq);

CREATE TABLE task_attempts (
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  pid INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  outcome TEXT NOT NULL DEFAULT '',
  exit_code INTEGER NOT NULL DEFAULT 0,
  log_uri TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, task, attempt),
  FOREIGN KEY (run_id, task) REFERENCES task_runs (run_id, task)
) WITHOUT ROWID;
CREATE UNIQUE INDEX task_attempts_one_live ON task_attempts (run_id, task)
  WHERE finished_at IS NULL;

CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  resource TEXT NOT NULL,
  from_state TEXT NOT NULL,
  to_state TEXT NOT NULL,
  version INTEGER NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX events_by_resource ON events (resource, seq);

CREATE TABLE checkpoints (
  cache_key TEXT NOT NULL PRIMARY KEY,
  pipeline TEXT NOT NULL,
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  output_uri TEXT NOT NULL,
  output_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
)sql"},
    // The model registry. `models.latest_version` hands out version numbers: incrementing it is
    // the one write concurrent registrations of a model serialize on, in any database.
    {2, R"sql(
CREATE TABLE models (
  name TEXT NOT NULL PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  latest_version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE model_versions (
  model TEXT NOT NULL REFERENCES models (name),
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  revision INTEGER NOT NULL,
  artifact_uri TEXT NOT NULL DEFAULT '',
  run_id TEXT NOT NULL DEFAULT '',
  task TEXT NOT NULL DEFAULT '',
  idempotency_key TEXT NOT NULL DEFAULT '',
  metrics_json TEXT NOT NULL DEFAULT '',
  metadata_json TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (model, version)
) WITHOUT ROWID;
CREATE UNIQUE INDEX model_versions_one_per_key ON model_versions (model, idempotency_key)
  WHERE idempotency_key <> '';

CREATE TABLE model_aliases (
  model TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (model, alias),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
) WITHOUT ROWID;
CREATE INDEX model_aliases_by_version ON model_aliases (model, version);
)sql"},
    // Experiments: one row per training run. AUTOINCREMENT so that an id is never given out
    // twice, even after the newest row is gone. Not tied to pipeline_runs by a foreign key: an
    // experiment may be recorded outside a run (empty run_id), and it outlives the run's rows.
    // The JSON columns hold objects, checked by the store before every write.
    {3, R"sql(
CREATE TABLE experiments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  run_id TEXT NOT NULL DEFAULT '',
  task TEXT NOT NULL DEFAULT '',
  model_type TEXT NOT NULL DEFAULT '',
  params_json TEXT NOT NULL DEFAULT '{}',
  metrics_json TEXT NOT NULL DEFAULT '{}',
  dataset TEXT NOT NULL DEFAULT '',
  dataset_version TEXT NOT NULL DEFAULT '',
  code_hash TEXT NOT NULL DEFAULT '',
  artifact_uri TEXT NOT NULL DEFAULT '',
  duration_seconds REAL NOT NULL DEFAULT 0,
  model_version TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX experiments_one_per_task ON experiments (run_id, task) WHERE run_id <> '';
CREATE INDEX experiments_by_name ON experiments (name, id);
CREATE INDEX experiments_by_model_type ON experiments (model_type, id);
)sql"},
    // Serving: endpoints and their deployments (state machines, like runs), the stats serving
    // processes publish, and API keys. Endpoint names are never reused (a deleted endpoint keeps
    // its row and its history). `deployments_one_in_flight` is the rule "one deployment in flight
    // per endpoint": of two concurrent creations, the second insert fails on it, in any process.
    // JSON columns hold what the store checked before writing (objects, a latency histogram).
    {4, R"sql(
CREATE TABLE endpoints (
  name TEXT NOT NULL PRIMARY KEY,
  state TEXT NOT NULL,
  version INTEGER NOT NULL,
  config_json TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

CREATE TABLE deployments (
  id TEXT NOT NULL PRIMARY KEY,
  endpoint TEXT NOT NULL REFERENCES endpoints (name),
  state TEXT NOT NULL,
  version INTEGER NOT NULL,
  strategy TEXT NOT NULL,
  spec_json TEXT NOT NULL DEFAULT '{}',
  from_config_json TEXT NOT NULL DEFAULT '{}',
  to_config_json TEXT NOT NULL DEFAULT '',
  idempotency_key TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  baking_since INTEGER,
  finished_at INTEGER,
  message TEXT NOT NULL DEFAULT '',
  actor TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deployments_by_created ON deployments (created_at);
CREATE INDEX deployments_by_endpoint ON deployments (endpoint, created_at);
CREATE UNIQUE INDEX deployments_one_in_flight ON deployments (endpoint)
  WHERE state IN )sql" FERRY_IN_FLIGHT_DEPLOYMENT_STATES R"sql(;
CREATE UNIQUE INDEX deployments_one_per_key ON deployments (endpoint, idempotency_key)
  WHERE idempotency_key <> '';

CREATE TABLE variant_stats (
  endpoint TEXT NOT NULL,
  instance TEXT NOT NULL,
  variant TEXT NOT NULL,
  model TEXT NOT NULL DEFAULT '',
  model_version INTEGER NOT NULL DEFAULT 0,
  endpoint_version INTEGER NOT NULL DEFAULT 0,
  ready INTEGER NOT NULL DEFAULT 0,
  requests INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  latency_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (endpoint, instance, variant)
) WITHOUT ROWID;

CREATE TABLE api_keys (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_keys_by_created ON api_keys (created_at);
)sql"},
    // Jobs: batch jobs and monitor runs (one table, `kind` tells which state machine applies).
    {5, R"sql(
CREATE TABLE jobs (
  id TEXT NOT NULL PRIMARY KEY,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL,
  version INTEGER NOT NULL,
  spec_json TEXT NOT NULL DEFAULT '{}',
  result_json TEXT NOT NULL DEFAULT '{}',
  idempotency_key TEXT NOT NULL DEFAULT '',
  owner_pid INTEGER NOT NULL DEFAULT 0,
  owner_host TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  message TEXT NOT NULL DEFAULT '',
  actor TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_by_kind ON jobs (kind, created_at);
CREATE INDEX jobs_by_subject ON jobs (kind, subject, created_at);
CREATE UNIQUE INDEX jobs_one_per_key ON jobs (kind, idempotency_key) WHERE idempotency_key <> '';
)sql"},
};

#define FERRY_RUN_COLUMNS                                                                  \
  "id, pipeline, pipeline_file, state, version, idempotency_key, params_json, spec_json, " \
  "owner_pid, owner_host, created_at, started_at, finished_at, message"
#define FERRY_TASK_COLUMNS                                                          \
  "run_id, task, state, version, attempts, pid, exit_code, cache_key, output_uri, " \
  "output_hash, queued_at, started_at, finished_at, retry_at, message"
#define FERRY_MODEL_COLUMNS "name, description, latest_version, created_at"
#define FERRY_MODEL_VERSION_COLUMNS                                                \
  "model, version, state, revision, artifact_uri, run_id, task, idempotency_key, " \
  "metrics_json, metadata_json, created_at, updated_at, message"
#define FERRY_ALIAS_COLUMNS "model, alias, version, updated_at"
#define FERRY_EXPERIMENT_COLUMNS                                                              \
  "id, name, run_id, task, model_type, params_json, metrics_json, dataset, dataset_version, " \
  "code_hash, artifact_uri, duration_seconds, model_version, created_at, updated_at"
#define FERRY_ENDPOINT_COLUMNS "name, state, version, config_json, created_at, updated_at, message"
#define FERRY_JOB_COLUMNS                                                                   \
  "id, kind, subject, state, version, spec_json, result_json, idempotency_key, owner_pid, " \
  "owner_host, created_at, started_at, finished_at, message, actor"
#define FERRY_DEPLOYMENT_COLUMNS                                                      \
  "id, endpoint, state, version, strategy, spec_json, from_config_json, "             \
  "to_config_json, idempotency_key, created_at, baking_since, finished_at, message, " \
  "actor"
#define FERRY_VARIANT_STATS_COLUMNS                                                        \
  "endpoint, instance, variant, model, model_version, endpoint_version, ready, requests, " \
  "errors, latency_json, updated_at"
#define FERRY_API_KEY_COLUMNS "id, name, role, hash, created_at, revoked_at"

// Every statement is a constant; values only ever reach SQLite through sqlite3_bind_*.
const char* Sql(Query q) {
  switch (q) {
    case Query::kBegin:
      return "BEGIN IMMEDIATE";
    case Query::kCommit:
      return "COMMIT";
    case Query::kRollback:
      return "ROLLBACK";
    case Query::kSchemaVersion:
      return "SELECT COALESCE(MAX(version), 0) FROM schema_version";
    case Query::kRecordSchemaVersion:
      return "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)";
    case Query::kInsertRun:
      return "INSERT INTO pipeline_runs (id, pipeline, pipeline_file, state, version, "
             "idempotency_key, params_json, spec_json, created_at) "
             "VALUES (?1, ?2, ?3, 'queued', 1, ?4, ?5, ?6, ?7)";
    case Query::kGetRun:
      return "SELECT " FERRY_RUN_COLUMNS " FROM pipeline_runs WHERE id = ?1";
    case Query::kRunState:
      return "SELECT state, version FROM pipeline_runs WHERE id = ?1";
    case Query::kLiveRunWithKey:
      return "SELECT " FERRY_RUN_COLUMNS
             " FROM pipeline_runs "
             "WHERE pipeline = ?1 AND idempotency_key = ?2 AND idempotency_key <> '' "
             "AND state IN " FERRY_LIVE_RUN_STATES;
    case Query::kListRuns:
      return "SELECT " FERRY_RUN_COLUMNS
             " FROM pipeline_runs "
             "ORDER BY created_at DESC, rowid DESC LIMIT ?1";
    case Query::kListRunsOfPipeline:
      return "SELECT " FERRY_RUN_COLUMNS
             " FROM pipeline_runs WHERE pipeline = ?1 "
             "ORDER BY created_at DESC, rowid DESC LIMIT ?2";
    case Query::kUpdateRun:
      // ?2: now when entering running (kept after the first time), ?3: now when entering a
      // terminal state, else NULL. NULL in ?4..?6 keeps the column.
      return "UPDATE pipeline_runs SET state = ?1, version = version + 1, "
             "started_at = COALESCE(started_at, ?2), finished_at = ?3, "
             "owner_pid = COALESCE(?4, owner_pid), owner_host = COALESCE(?5, owner_host), "
             "message = COALESCE(?6, message) "
             "WHERE id = ?7 AND state = ?8 AND version = ?9 RETURNING " FERRY_RUN_COLUMNS;
    case Query::kInsertTask:
      return "INSERT INTO task_runs (run_id, task, seq, state, version) "
             "VALUES (?1, ?2, ?3, 'pending', 1)";
    case Query::kGetTasks:
      return "SELECT " FERRY_TASK_COLUMNS " FROM task_runs WHERE run_id = ?1 ORDER BY seq";
    case Query::kTaskState:
      return "SELECT state, version FROM task_runs WHERE run_id = ?1 AND task = ?2";
    case Query::kUpdateTask:
      // ?2: 1 when entering running (a new attempt), ?3: 1 when leaving it (no live process),
      // ?10/?11: now when entering queued/running, ?12: now when entering a terminal state, else
      // NULL. NULL in ?4..?9 keeps the column.
      return "UPDATE task_runs SET state = ?1, version = version + 1, "
             "attempts = attempts + ?2, pid = CASE WHEN ?3 THEN 0 ELSE pid END, "
             "exit_code = COALESCE(?4, exit_code), cache_key = COALESCE(?5, cache_key), "
             "output_uri = COALESCE(?6, output_uri), output_hash = COALESCE(?7, output_hash), "
             "message = COALESCE(?8, message), retry_at = COALESCE(?9, retry_at), "
             "queued_at = COALESCE(?10, queued_at), started_at = COALESCE(?11, started_at), "
             "finished_at = ?12 "
             "WHERE run_id = ?13 AND task = ?14 AND state = ?15 AND version = ?16 "
             "RETURNING " FERRY_TASK_COLUMNS;
    case Query::kOpenAttempt:
      return "INSERT INTO task_attempts (run_id, task, attempt, started_at, log_uri) "
             "VALUES (?1, ?2, ?3, ?4, ?5)";
    case Query::kCloseAttempt:
      return "UPDATE task_attempts SET finished_at = ?1, outcome = ?2, "
             "exit_code = COALESCE(?3, exit_code) "
             "WHERE run_id = ?4 AND task = ?5 AND finished_at IS NULL";
    case Query::kSetAttemptPid:
      return "UPDATE task_attempts SET pid = ?1 "
             "WHERE run_id = ?2 AND task = ?3 AND finished_at IS NULL";
    case Query::kSetTaskPid:
      return "UPDATE task_runs SET pid = ?1 WHERE run_id = ?2 AND task = ?3";
    case Query::kGetAttempts:
      return "SELECT run_id, task, attempt, pid, started_at, finished_at, outcome, exit_code, "
             "log_uri FROM task_attempts WHERE run_id = ?1 AND task = ?2 ORDER BY attempt";
    case Query::kInsertEvent:
      return "INSERT INTO events (kind, resource, from_state, to_state, version, actor, reason, "
             "at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    case Query::kGetEvents:
      return "SELECT seq, kind, resource, from_state, to_state, version, actor, reason, at "
             "FROM events WHERE resource = ?1 ORDER BY seq";
    case Query::kGetAllEvents:
      return "SELECT seq, kind, resource, from_state, to_state, version, actor, reason, at "
             "FROM events ORDER BY seq";
    case Query::kPutCheckpoint:
      return "INSERT INTO checkpoints (cache_key, pipeline, run_id, task, output_uri, "
             "output_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
             "ON CONFLICT (cache_key) DO UPDATE SET pipeline = excluded.pipeline, "
             "run_id = excluded.run_id, task = excluded.task, output_uri = excluded.output_uri, "
             "output_hash = excluded.output_hash, created_at = excluded.created_at";
    case Query::kGetCheckpoint:
      return "SELECT cache_key, pipeline, run_id, task, output_uri, output_hash, created_at "
             "FROM checkpoints WHERE cache_key = ?1";
    case Query::kInsertModel:
      return "INSERT INTO models (name, description, created_at) VALUES (?1, ?2, ?3) "
             "ON CONFLICT (name) DO NOTHING";
    case Query::kGetModel:
      return "SELECT " FERRY_MODEL_COLUMNS " FROM models WHERE name = ?1";
    case Query::kListModels:
      return "SELECT " FERRY_MODEL_COLUMNS " FROM models ORDER BY name";
    case Query::kNextModelVersion:
      return "UPDATE models SET latest_version = latest_version + 1 WHERE name = ?1 "
             "RETURNING latest_version";
    case Query::kModelVersionWithKey:
      return "SELECT " FERRY_MODEL_VERSION_COLUMNS
             " FROM model_versions "
             "WHERE model = ?1 AND idempotency_key = ?2 AND idempotency_key <> ''";
    case Query::kInsertModelVersion:
      return "INSERT INTO model_versions (model, version, state, revision, artifact_uri, run_id, "
             "task, idempotency_key, metrics_json, metadata_json, created_at, updated_at) "
             "VALUES (?1, ?2, 'registered', 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) "
             "RETURNING " FERRY_MODEL_VERSION_COLUMNS;
    case Query::kGetModelVersion:
      return "SELECT " FERRY_MODEL_VERSION_COLUMNS
             " FROM model_versions WHERE model = ?1 AND version = ?2";
    case Query::kListModelVersions:
      return "SELECT " FERRY_MODEL_VERSION_COLUMNS
             " FROM model_versions WHERE model = ?1 ORDER BY version";
    case Query::kModelVersionState:
      return "SELECT state, revision FROM model_versions WHERE model = ?1 AND version = ?2";
    case Query::kUpdateModelVersion:
      // NULL in ?3 keeps the message.
      return "UPDATE model_versions SET state = ?1, revision = revision + 1, updated_at = ?2, "
             "message = COALESCE(?3, message) "
             "WHERE model = ?4 AND version = ?5 AND state = ?6 AND revision = ?7 "
             "RETURNING " FERRY_MODEL_VERSION_COLUMNS;
    case Query::kAliasesOfVersion:
      return "SELECT alias FROM model_aliases WHERE model = ?1 AND version = ?2 ORDER BY alias";
    case Query::kGetAlias:
      return "SELECT " FERRY_ALIAS_COLUMNS " FROM model_aliases WHERE model = ?1 AND alias = ?2";
    case Query::kListAliases:
      return "SELECT " FERRY_ALIAS_COLUMNS " FROM model_aliases WHERE model = ?1 ORDER BY alias";
    case Query::kPutAlias:
      return "INSERT INTO model_aliases (model, alias, version, updated_at) "
             "VALUES (?1, ?2, ?3, ?4) "
             "ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, "
             "updated_at = excluded.updated_at RETURNING " FERRY_ALIAS_COLUMNS;
    case Query::kDeleteAlias:
      return "DELETE FROM model_aliases WHERE model = ?1 AND alias = ?2";
    case Query::kInsertExperiment:
      return "INSERT INTO experiments (name, run_id, task, model_type, params_json, "
             "metrics_json, dataset, dataset_version, code_hash, artifact_uri, duration_seconds, "
             "created_at, updated_at) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) "
             "RETURNING " FERRY_EXPERIMENT_COLUMNS;
    case Query::kUpdateExperiment:
      // A retried train task: every field it sets; id, model_version and created_at stay.
      return "UPDATE experiments SET name = ?1, run_id = ?2, task = ?3, model_type = ?4, "
             "params_json = ?5, metrics_json = ?6, dataset = ?7, dataset_version = ?8, "
             "code_hash = ?9, artifact_uri = ?10, duration_seconds = ?11, updated_at = ?12 "
             "WHERE id = ?13 RETURNING " FERRY_EXPERIMENT_COLUMNS;
    case Query::kGetExperiment:
      return "SELECT " FERRY_EXPERIMENT_COLUMNS " FROM experiments WHERE id = ?1";
    case Query::kFindExperiment:
      // `run_id <> ''` matches the partial unique index, so SQLite uses it.
      return "SELECT " FERRY_EXPERIMENT_COLUMNS
             " FROM experiments WHERE run_id = ?1 AND task = ?2 AND run_id <> ''";
    case Query::kListExperiments:
      // An empty filter field matches every row; a negative limit means none.
      return "SELECT " FERRY_EXPERIMENT_COLUMNS
             " FROM experiments WHERE (?1 = '' OR name = ?1) AND (?2 = '' OR model_type = ?2) "
             "ORDER BY id DESC LIMIT ?3";
    case Query::kSetExperimentMetrics:
      return "UPDATE experiments SET metrics_json = ?1, updated_at = ?2 WHERE id = ?3";
    case Query::kSetExperimentModelVersion:
      return "UPDATE experiments SET model_version = ?1, updated_at = ?2 WHERE id = ?3";
    case Query::kSetModelVersionArtifact:
      return "UPDATE model_versions SET artifact_uri = ?1 "
             "WHERE model = ?2 AND version = ?3 AND (artifact_uri = '' OR artifact_uri = ?1)";
    case Query::kInsertEndpoint:
      return "INSERT INTO endpoints (name, state, version, config_json, created_at, updated_at) "
             "VALUES (?1, 'creating', 1, ?2, ?3, ?3) RETURNING " FERRY_ENDPOINT_COLUMNS;
    case Query::kGetEndpoint:
      return "SELECT " FERRY_ENDPOINT_COLUMNS " FROM endpoints WHERE name = ?1";
    case Query::kListEndpoints:
      return "SELECT " FERRY_ENDPOINT_COLUMNS " FROM endpoints ORDER BY name";
    case Query::kEndpointState:
      return "SELECT state, version FROM endpoints WHERE name = ?1";
    case Query::kUpdateEndpoint:
      // NULL in ?3, ?4 keeps the column.
      return "UPDATE endpoints SET state = ?1, version = version + 1, updated_at = ?2, "
             "config_json = COALESCE(?3, config_json), message = COALESCE(?4, message) "
             "WHERE name = ?5 AND state = ?6 AND version = ?7 RETURNING " FERRY_ENDPOINT_COLUMNS;
    case Query::kInsertDeployment:
      return "INSERT INTO deployments (id, endpoint, state, version, strategy, spec_json, "
             "from_config_json, idempotency_key, created_at, actor) "
             "VALUES (?1, ?2, 'pending', 1, ?3, ?4, ?5, ?6, ?7, ?8) "
             "RETURNING " FERRY_DEPLOYMENT_COLUMNS;
    case Query::kGetDeployment:
      return "SELECT " FERRY_DEPLOYMENT_COLUMNS " FROM deployments WHERE id = ?1";
    case Query::kDeploymentState:
      return "SELECT state, version FROM deployments WHERE id = ?1";
    case Query::kDeploymentWithKey:
      // `idempotency_key <> ''` matches the partial unique index, so SQLite uses it.
      return "SELECT " FERRY_DEPLOYMENT_COLUMNS
             " FROM deployments "
             "WHERE endpoint = ?1 AND idempotency_key = ?2 AND idempotency_key <> ''";
    case Query::kInFlightDeployment:
      return "SELECT " FERRY_DEPLOYMENT_COLUMNS
             " FROM deployments "
             "WHERE endpoint = ?1 AND state IN " FERRY_IN_FLIGHT_DEPLOYMENT_STATES;
    case Query::kListDeployments:
      return "SELECT " FERRY_DEPLOYMENT_COLUMNS
             " FROM deployments ORDER BY created_at DESC, rowid DESC LIMIT ?1";
    case Query::kListDeploymentsOfEndpoint:
      return "SELECT " FERRY_DEPLOYMENT_COLUMNS
             " FROM deployments WHERE endpoint = ?1 "
             "ORDER BY created_at DESC, rowid DESC LIMIT ?2";
    case Query::kUpdateDeployment:
      // ?2: the time when entering baking, ?3: the time when entering a terminal state, else
      // NULL. NULL in ?2..?5 keeps the column.
      return "UPDATE deployments SET state = ?1, version = version + 1, "
             "baking_since = COALESCE(?2, baking_since), finished_at = COALESCE(?3, finished_at), "
             "to_config_json = COALESCE(?4, to_config_json), message = COALESCE(?5, message) "
             "WHERE id = ?6 AND state = ?7 AND version = ?8 RETURNING " FERRY_DEPLOYMENT_COLUMNS;
    case Query::kPutVariantStats:
      return "INSERT INTO variant_stats (" FERRY_VARIANT_STATS_COLUMNS
             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
             "ON CONFLICT (endpoint, instance, variant) DO UPDATE SET model = excluded.model, "
             "model_version = excluded.model_version, "
             "endpoint_version = excluded.endpoint_version, ready = excluded.ready, "
             "requests = excluded.requests, errors = excluded.errors, "
             "latency_json = excluded.latency_json, updated_at = excluded.updated_at";
    case Query::kListVariantStats:
      return "SELECT " FERRY_VARIANT_STATS_COLUMNS
             " FROM variant_stats WHERE endpoint = ?1 ORDER BY instance, variant";
    case Query::kDeleteVariantStats:
      return "DELETE FROM variant_stats WHERE endpoint = ?1 AND instance = ?2";
    case Query::kInsertApiKey:
      // No row back: the id is taken.
      return "INSERT INTO api_keys (id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5) "
             "ON CONFLICT (id) DO NOTHING RETURNING " FERRY_API_KEY_COLUMNS;
    case Query::kListApiKeys:
      return "SELECT " FERRY_API_KEY_COLUMNS " FROM api_keys ORDER BY created_at, rowid";
    case Query::kRevokeApiKey:
      return "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2";
    case Query::kInsertJob:
      return "INSERT INTO jobs (id, kind, subject, state, version, spec_json, idempotency_key, "
             "created_at, actor) VALUES (?1, ?2, ?3, 'queued', 1, ?4, ?5, ?6, ?7) "
             "RETURNING " FERRY_JOB_COLUMNS;
    case Query::kGetJob:
      return "SELECT " FERRY_JOB_COLUMNS " FROM jobs WHERE id = ?1";
    case Query::kJobState:
      return "SELECT state, version FROM jobs WHERE id = ?1";
    case Query::kJobWithKey:
      // `idempotency_key <> ''` matches the partial unique index, so SQLite uses it.
      return "SELECT " FERRY_JOB_COLUMNS
             " FROM jobs WHERE kind = ?1 AND idempotency_key = ?2 AND idempotency_key <> ''";
    case Query::kListJobs:
      return "SELECT " FERRY_JOB_COLUMNS
             " FROM jobs WHERE kind = ?1 ORDER BY created_at DESC, rowid DESC LIMIT ?2";
    case Query::kListJobsOfSubject:
      return "SELECT " FERRY_JOB_COLUMNS
             " FROM jobs WHERE kind = ?1 AND subject = ?2 "
             "ORDER BY created_at DESC, rowid DESC LIMIT ?3";
    case Query::kUpdateJob:
      // ?2: the time when entering running, ?3: when entering a terminal state, else NULL.
      // NULL in ?2..?7 keeps the column.
      return "UPDATE jobs SET state = ?1, version = version + 1, "
             "started_at = COALESCE(?2, started_at), finished_at = COALESCE(?3, finished_at), "
             "result_json = COALESCE(?4, result_json), message = COALESCE(?5, message), "
             "owner_pid = COALESCE(?6, owner_pid), owner_host = COALESCE(?7, owner_host) "
             "WHERE id = ?8 AND state = ?9 AND version = ?10 RETURNING " FERRY_JOB_COLUMNS;
    case Query::kSetJobResult:
      return "UPDATE jobs SET result_json = ?1 WHERE id = ?2 AND state = ?3";
  }
  FERRY_CHECK(false);
  return nullptr;
}

#undef FERRY_RUN_COLUMNS
#undef FERRY_TASK_COLUMNS
#undef FERRY_MODEL_COLUMNS
#undef FERRY_MODEL_VERSION_COLUMNS
#undef FERRY_ALIAS_COLUMNS
#undef FERRY_EXPERIMENT_COLUMNS
#undef FERRY_ENDPOINT_COLUMNS
#undef FERRY_JOB_COLUMNS
#undef FERRY_DEPLOYMENT_COLUMNS
#undef FERRY_VARIANT_STATS_COLUMNS
#undef FERRY_API_KEY_COLUMNS
#undef FERRY_LIVE_RUN_STATES
#undef FERRY_IN_FLIGHT_DEPLOYMENT_STATES

PipelineRunRecord ReadRun(const Statement& s) {
  PipelineRunRecord r;
  r.id = s.ColText(0);
  r.pipeline = s.ColText(1);
  r.pipeline_file = s.ColText(2);
  r.state = s.ColText(3);
  r.version = s.ColInt(4);
  r.idempotency_key = s.ColText(5);
  r.params_json = s.ColText(6);
  r.spec_json = s.ColText(7);
  r.owner_pid = s.ColInt(8);
  r.owner_host = s.ColText(9);
  r.created_at = s.ColTime(10);
  r.started_at = s.ColTime(11);
  r.finished_at = s.ColTime(12);
  r.message = s.ColText(13);
  return r;
}

TaskRunRecord ReadTask(const Statement& s) {
  TaskRunRecord t;
  t.run_id = s.ColText(0);
  t.task = s.ColText(1);
  t.state = s.ColText(2);
  t.version = s.ColInt(3);
  t.attempts = static_cast<int>(s.ColInt(4));
  t.pid = s.ColInt(5);
  t.exit_code = static_cast<int>(s.ColInt(6));
  t.cache_key = s.ColText(7);
  t.output_uri = s.ColText(8);
  t.output_hash = s.ColText(9);
  t.queued_at = s.ColTime(10);
  t.started_at = s.ColTime(11);
  t.finished_at = s.ColTime(12);
  t.retry_at = s.ColTime(13);
  t.message = s.ColText(14);
  return t;
}

AttemptRecord ReadAttempt(const Statement& s) {
  AttemptRecord a;
  a.run_id = s.ColText(0);
  a.task = s.ColText(1);
  a.attempt = static_cast<int>(s.ColInt(2));
  a.pid = s.ColInt(3);
  a.started_at = s.ColTime(4);
  a.finished_at = s.ColTime(5);
  a.outcome = s.ColText(6);
  a.exit_code = static_cast<int>(s.ColInt(7));
  a.log_uri = s.ColText(8);
  return a;
}

EventRecord ReadEvent(const Statement& s) {
  EventRecord e;
  e.seq = s.ColInt(0);
  e.kind = s.ColText(1);
  e.resource = s.ColText(2);
  e.from = s.ColText(3);
  e.to = s.ColText(4);
  e.version = s.ColInt(5);
  e.actor = s.ColText(6);
  e.reason = s.ColText(7);
  e.at = s.ColTime(8);
  return e;
}

CheckpointRecord ReadCheckpoint(const Statement& s) {
  CheckpointRecord c;
  c.cache_key = s.ColText(0);
  c.pipeline = s.ColText(1);
  c.run_id = s.ColText(2);
  c.task = s.ColText(3);
  c.output_uri = s.ColText(4);
  c.output_hash = s.ColText(5);
  c.created_at = s.ColTime(6);
  return c;
}

ModelRecord ReadModel(const Statement& s) {
  ModelRecord m;
  m.name = s.ColText(0);
  m.description = s.ColText(1);
  m.latest_version = s.ColInt(2);
  m.created_at = s.ColTime(3);
  return m;
}

ModelVersionRecord ReadModelVersion(const Statement& s) {
  ModelVersionRecord v;
  v.model = s.ColText(0);
  v.version = s.ColInt(1);
  v.state = s.ColText(2);
  v.revision = s.ColInt(3);
  v.artifact_uri = s.ColText(4);
  v.run_id = s.ColText(5);
  v.task = s.ColText(6);
  v.idempotency_key = s.ColText(7);
  v.metrics_json = s.ColText(8);
  v.metadata_json = s.ColText(9);
  v.created_at = s.ColTime(10);
  v.updated_at = s.ColTime(11);
  v.message = s.ColText(12);
  return v;
}

ModelAliasRecord ReadAlias(const Statement& s) {
  ModelAliasRecord a;
  a.model = s.ColText(0);
  a.alias = s.ColText(1);
  a.version = s.ColInt(2);
  a.updated_at = s.ColTime(3);
  return a;
}

ExperimentRecord ReadExperiment(const Statement& s) {
  ExperimentRecord e;
  e.id = s.ColInt(0);
  e.name = s.ColText(1);
  e.run_id = s.ColText(2);
  e.task = s.ColText(3);
  e.model_type = s.ColText(4);
  e.params_json = s.ColText(5);
  e.metrics_json = s.ColText(6);
  e.dataset = s.ColText(7);
  e.dataset_version = s.ColText(8);
  e.code_hash = s.ColText(9);
  e.artifact_uri = s.ColText(10);
  e.duration_seconds = s.ColReal(11);
  e.model_version = s.ColText(12);
  e.created_at = s.ColTime(13);
  e.updated_at = s.ColTime(14);
  return e;
}

EndpointRecord ReadEndpoint(const Statement& s) {
  EndpointRecord e;
  e.name = s.ColText(0);
  e.state = s.ColText(1);
  e.version = s.ColInt(2);
  e.config_json = s.ColText(3);
  e.created_at = s.ColTime(4);
  e.updated_at = s.ColTime(5);
  e.message = s.ColText(6);
  return e;
}

DeploymentRecord ReadDeployment(const Statement& s) {
  DeploymentRecord d;
  d.id = s.ColText(0);
  d.endpoint = s.ColText(1);
  d.state = s.ColText(2);
  d.version = s.ColInt(3);
  d.strategy = s.ColText(4);
  d.spec_json = s.ColText(5);
  d.from_config_json = s.ColText(6);
  d.to_config_json = s.ColText(7);
  d.idempotency_key = s.ColText(8);
  d.created_at = s.ColTime(9);
  d.baking_since = s.ColTime(10);
  d.finished_at = s.ColTime(11);
  d.message = s.ColText(12);
  d.actor = s.ColText(13);
  return d;
}

JobRecord ReadJob(const Statement& s) {
  JobRecord j;
  j.id = s.ColText(0);
  j.kind = s.ColText(1);
  j.subject = s.ColText(2);
  j.state = s.ColText(3);
  j.version = s.ColInt(4);
  j.spec_json = s.ColText(5);
  j.result_json = s.ColText(6);
  j.idempotency_key = s.ColText(7);
  j.owner_pid = s.ColInt(8);
  j.owner_host = s.ColText(9);
  j.created_at = s.ColTime(10);
  j.started_at = s.ColTime(11);
  j.finished_at = s.ColTime(12);
  j.message = s.ColText(13);
  j.actor = s.ColText(14);
  return j;
}

VariantStatsRecord ReadVariantStats(const Statement& s) {
  VariantStatsRecord v;
  v.endpoint = s.ColText(0);
  v.instance = s.ColText(1);
  v.variant = s.ColText(2);
  v.model = s.ColText(3);
  v.model_version = s.ColInt(4);
  v.endpoint_version = s.ColInt(5);
  v.ready = s.ColInt(6) != 0;
  v.requests = s.ColInt(7);
  v.errors = s.ColInt(8);
  v.latency_json = s.ColText(9);
  v.updated_at = s.ColTime(10);
  return v;
}

ApiKeyRecord ReadApiKey(const Statement& s) {
  ApiKeyRecord k;
  k.id = s.ColText(0);
  k.name = s.ColText(1);
  k.role = s.ColText(2);
  k.hash = s.ColText(3);
  k.created_at = s.ColTime(4);
  k.revoked_at = s.ColTime(5);
  return k;
}

// Every row of `s`, read by `read`.
template <typename Read>
auto ReadAll(Statement& s, std::string_view what, Read read)
    -> absl::StatusOr<std::vector<decltype(read(s))>> {
  std::vector<decltype(read(s))> out;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next(what));
    if (!row) return out;
    out.push_back(read(s));
  }
}

absl::Status IllegalTransition(const KindTable& kind, std::string_view resource,
                               std::string_view from, std::string_view to) {
  std::vector<std::string_view> legal;
  for (const Edge& e : kind.edges) {
    if (e.from == from) legal.push_back(e.to);
  }
  std::string message = fmt::format(
      "illegal transition {} {}: {} -> {} (legal from {}: {})", kind.name, resource, from, to, from,
      legal.empty() ? "none" : fmt::format("{}", fmt::join(legal, ", ")));
  for (std::string_view state : {from, to}) {
    if (!IsState(kind, state)) {
      message += fmt::format("; '{}' is not a {} state ({})", state, kind.name,
                             fmt::join(kind.states, ", "));
    }
  }
  return absl::InvalidArgumentError(message);
}

// The status for a transition that updated no row: `current` selects (state, version) of the
// resource. NotFound when the row is missing, else FailedPrecondition saying where it is now.
absl::Status MovedFirst(Statement& current, std::string_view kind, std::string_view resource,
                        std::string_view from, int64_t expected_version) {
  FERRY_ASSIGN_OR_RETURN(bool row, current.Next("cannot read the current state"));
  if (!row) return absl::NotFoundError(fmt::format("{} {} does not exist", kind, resource));
  return absl::FailedPreconditionError(
      fmt::format("{} {} moved first by someone else: expected {}@v{}, found {}@v{}", kind,
                  resource, from, expected_version, current.ColText(0), current.ColInt(1)));
}

std::string TaskResource(const std::string& run_id, const std::string& task) {
  std::string out;
  out.reserve(run_id.size() + 1 + task.size());
  out.append(run_id).append("/").append(task);
  return out;
}

// How model versions and aliases are named in events and messages: "churn:7", "churn@champion".
std::string ModelVersionResource(std::string_view model, int64_t version) {
  return fmt::format("{}:{}", model, version);
}
std::string AliasResource(std::string_view model, std::string_view alias) {
  return fmt::format("{}@{}", model, alias);
}

constexpr std::string_view kModelAliasKind = "ModelAlias";

absl::Status NoExperiment(int64_t id) {
  return absl::NotFoundError(fmt::format("no experiment {}; `ferry experiments` lists them", id));
}

// Parses `text`, the value of field `field` of experiment `subject`, as a JSON object (ordered:
// sections and keys keep the order they were written in). InvalidArgument naming the field
// otherwise. nlohmann throws; this is where that becomes a Status.
absl::StatusOr<nlohmann::ordered_json> ParseJsonObject(std::string_view subject,
                                                       std::string_view field,
                                                       std::string_view text) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is empty; it must be a JSON object, {{}} when there is nothing to say",
                    subject, field));
  }
  nlohmann::ordered_json value;
  try {
    value = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::ordered_json::parse_error& e) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is not valid JSON ({}); it must be a JSON object such as {{\"k\": 1}}",
                    subject, field, e.what()));
  }
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is a JSON {}, not an object; it must be a JSON object such as "
                    "{{\"k\": 1}}",
                    subject, field, value.type_name()));
  }
  return value;
}

absl::Status CheckNewExperiment(const NewExperiment& e) {
  const std::string of_task =
      e.run_id.empty() ? std::string() : fmt::format(" of task {}", TaskResource(e.run_id, e.task));
  if (e.name.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("the experiment{} needs a name (the train step's `experiment:`)", of_task));
  }
  const std::string subject = fmt::format("experiment '{}'{}", e.name, of_task);
  FERRY_RETURN_IF_ERROR(ParseJsonObject(subject, "params_json", e.params_json).status());
  FERRY_RETURN_IF_ERROR(ParseJsonObject(subject, "metrics_json", e.metrics_json).status());
  if (!std::isfinite(e.duration_seconds) || e.duration_seconds < 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: duration_seconds is {}; it must be a finite number of seconds >= 0",
                    subject, e.duration_seconds));
  }
  return absl::OkStatus();
}

constexpr std::string_view kStrategies[] = {"blue_green", "canary", "shadow", "rollback"};
constexpr std::string_view kApiKeyRoles[] = {"invoke", "admin"};

template <size_t N>
bool OneOf(const std::string_view (&allowed)[N], std::string_view value) {
  return std::find(std::begin(allowed), std::end(allowed), value) != std::end(allowed);
}

absl::Status CheckEndpointName(std::string_view name) {
  if (IsValidName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("'{}' is not a valid endpoint name: use letters, digits, '_', '-' and '.' (not "
                  "first, and no '..'), at most 128 characters",
                  name));
}

absl::Status NoEndpoint(std::string_view name) {
  return absl::NotFoundError(fmt::format("no endpoint {}; `ferry endpoints` lists them", name));
}

absl::Status CheckNewDeployment(const NewDeployment& d) {
  if (!IsValidName(d.id)) {
    return absl::InvalidArgumentError(fmt::format(
        "'{}' is not a valid deployment id: use NewDeploymentId (\"d20261127-121700-3f9a1c\")",
        d.id));
  }
  FERRY_RETURN_IF_ERROR(CheckEndpointName(d.endpoint));
  const std::string subject = fmt::format("deployment {} of endpoint {}", d.id, d.endpoint);
  if (!OneOf(kStrategies, d.strategy)) {
    return absl::InvalidArgumentError(fmt::format("{}: unknown strategy '{}'; use one of {}",
                                                  subject, d.strategy,
                                                  fmt::join(kStrategies, ", ")));
  }
  FERRY_RETURN_IF_ERROR(ParseJsonObject(subject, "spec_json", d.spec_json).status());
  return ParseJsonObject(subject, "from_config_json", d.from_config_json).status();
}

// The kind table of a job kind by name: BatchJob or MonitorRun; null for any other.
const KindTable* JobKind(std::string_view kind) {
  if (kind == BatchJobKind().name) return &BatchJobKind();
  if (kind == MonitorRunKind().name) return &MonitorRunKind();
  return nullptr;
}

absl::Status CheckNewJob(const NewJob& j) {
  if (JobKind(j.kind) == nullptr) {
    return absl::InvalidArgumentError(fmt::format("'{}' is not a job kind; use {} or {}", j.kind,
                                                  BatchJobKind().name, MonitorRunKind().name));
  }
  if (!IsValidName(j.id)) {
    return absl::InvalidArgumentError(fmt::format(
        "'{}' is not a valid job id: use NewJobId (\"b20261127-121700-3f9a1c\")", j.id));
  }
  return ParseJsonObject(fmt::format("{} {}", j.kind, j.id), "spec_json", j.spec_json).status();
}

// A latency histogram as VariantStatsRecord::latency_json describes it: bounds strictly
// increasing and finite, one count per bound plus one for +Inf, every count an integer >= 0.
absl::Status CheckLatencyJson(std::string_view subject, std::string_view text) {
  FERRY_ASSIGN_OR_RETURN(nlohmann::ordered_json value,
                         ParseJsonObject(subject, "latency_json", text));
  constexpr std::string_view kShape =
      "it must be {\"bounds_ms\": [0.1, 0.25, ...], \"counts\": [...]} with one count per bound "
      "plus one for +Inf";
  const auto bounds = value.find("bounds_ms");
  const auto counts = value.find("counts");
  if (bounds == value.end() || !bounds->is_array() || counts == value.end() ||
      !counts->is_array()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: latency_json lacks the arrays bounds_ms and counts; {}", subject, kShape));
  }
  double previous = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < bounds->size(); ++i) {
    const auto& b = (*bounds)[i];
    if (!b.is_number() || !std::isfinite(b.get<double>()) || b.get<double>() <= previous) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: latency_json bounds_ms[{}] is {}; bounds must be finite numbers of milliseconds in "
          "increasing order",
          subject, i, b.dump()));
    }
    previous = b.get<double>();
  }
  if (counts->size() != bounds->size() + 1) {
    return absl::InvalidArgumentError(
        fmt::format("{}: latency_json has {} bounds and {} counts; {}", subject, bounds->size(),
                    counts->size(), kShape));
  }
  for (size_t i = 0; i < counts->size(); ++i) {
    const auto& c = (*counts)[i];
    if (!c.is_number_integer() || (!c.is_number_unsigned() && c.get<int64_t>() < 0)) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: latency_json counts[{}] is {}; counts must be integers >= 0", subject, i, c.dump()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckVariantStats(const VariantStatsRecord& s) {
  if (s.endpoint.empty() || s.instance.empty() || s.variant.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "variant stats need an endpoint, an instance and a variant (got '{}', '{}', '{}')",
        s.endpoint, s.instance, s.variant));
  }
  const std::string subject =
      fmt::format("stats of variant {} of endpoint {} from {}", s.variant, s.endpoint, s.instance);
  if (s.requests < 0 || s.errors < 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: requests ({}) and errors ({}) are counts, they cannot be negative",
                    subject, s.requests, s.errors));
  }
  return CheckLatencyJson(subject, s.latency_json);
}

absl::Status CheckApiKey(const ApiKeyRecord& k) {
  if (k.id.empty()) {
    return absl::InvalidArgumentError(
        "an API key needs an id (the public part of the key, e.g. \"k3f9a1c2b\")");
  }
  if (!OneOf(kApiKeyRoles, k.role)) {
    return absl::InvalidArgumentError(fmt::format("API key {}: unknown role '{}'; use one of {}",
                                                  k.id, k.role, fmt::join(kApiKeyRoles, ", ")));
  }
  if (k.hash.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "API key {} has an empty hash; store the hex SHA-256 of the full key text", k.id));
  }
  return absl::OkStatus();
}

absl::Time TruncateToMicros(absl::Time t) { return absl::FromUnixMicros(absl::ToUnixMicros(t)); }

}  // namespace

SqliteStateStore::SqliteStateStore(sqlite3* db, std::string path, const Clock& clock)
    : db_(db),
      path_(std::move(path)),
      clock_(clock),
      statements_(static_cast<size_t>(Query::kLast) + 1, nullptr) {}

SqliteStateStore::~SqliteStateStore() {
  for (sqlite3_stmt* s : statements_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(const std::string& path,
                                                                         const Clock& clock) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // The store owns `db` from here, even when opening failed (SQLite still allocates it).
  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(db, path, clock));
  if (rc != SQLITE_OK) {
    return SqliteError(db, rc, "cannot open the state database", path);
  }
  FERRY_RETURN_IF_ERROR(store->Configure());
  FERRY_RETURN_IF_ERROR(store->Migrate(std::end(kMigrations)[-1].version));
  FERRY_RETURN_IF_ERROR(store->Prepare(Query::kFirstData, Query::kLast));
  return store;
}

absl::Status SqliteStateStore::CreateAtSchemaVersionForTest(const std::string& path, int version) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(db, path, SystemClock::Get()));
  if (rc != SQLITE_OK) return SqliteError(db, rc, "cannot open the state database", path);
  FERRY_RETURN_IF_ERROR(store->Configure());
  return store->Migrate(version);
}

absl::Status SqliteStateStore::Configure() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // The journal mode is a property of the file; switching takes a brief exclusive lock.
  std::string mode;
  for (int attempt = 1;; ++attempt) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, "PRAGMA journal_mode = WAL", -1, &s, nullptr);
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(s);
      if (rc == SQLITE_ROW) {
        mode = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        rc = SQLITE_OK;
      }
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_OK) break;
    if ((rc & 0xff) != SQLITE_BUSY || attempt == kBusyAttempts) {
      return SqliteError(db_, rc, "cannot switch to the WAL journal");
    }
  }
  if (mode != "wal") {
    return absl::FailedPreconditionError(fmt::format(
        "{}: SQLite cannot use a WAL journal here (journal mode stays '{}'); put the database on "
        "a local filesystem",
        path_, mode));
  }
  // synchronous = NORMAL: a commit is durable against a process crash, and against a power cut
  // at the next checkpoint. wal_autocheckpoint: checkpoint (and fsync) every 16 MiB of WAL
  // instead of 4, so a scheduler's many small transactions rarely wait for the disk.
  int rc = sqlite3_exec(db_,
                        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
                        "PRAGMA wal_autocheckpoint = 4096; PRAGMA journal_size_limit = 33554432;",
                        nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "cannot configure the connection");
  return Prepare(Query::kBegin, Query::kRollback);
}

absl::Status SqliteStateStore::Prepare(Query first, Query last) {
  for (int q = static_cast<int>(first); q <= static_cast<int>(last); ++q) {
    const char* sql = Sql(static_cast<Query>(q));
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &statements_[q], nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, fmt::format("cannot prepare `{}`", sql));
  }
  return absl::OkStatus();
}

absl::Status SqliteStateStore::Migrate(int up_to) {
  constexpr int kLatest = std::end(kMigrations)[-1].version;
  {
    FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
    int rc = sqlite3_exec(db_,
                          "CREATE TABLE IF NOT EXISTS schema_version ("
                          "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                          nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "cannot create the schema_version table");
    FERRY_RETURN_IF_ERROR(txn.Commit());
  }
  FERRY_RETURN_IF_ERROR(Prepare(Query::kSchemaVersion, Query::kRecordSchemaVersion));
  for (const Migration& migration : kMigrations) {
    if (migration.version > up_to) break;
    // Read the version under the write lock: another process may be migrating the same file.
    FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
    int64_t current = 0;
    {
      Statement s = Use(Query::kSchemaVersion);
      FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read the schema version"));
      if (row) current = s.ColInt(0);
    }
    if (current > kLatest) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: the database has schema version {}, newer than this ferry knows ({}); use a newer "
          "ferry",
          path_, current, kLatest));
    }
    if (current >= migration.version) continue;  // rolled back: nothing was written
    int rc = sqlite3_exec(db_, migration.sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      return SqliteError(db_, rc,
                         fmt::format("cannot migrate the schema to version {}", migration.version));
    }
    FERRY_RETURN_IF_ERROR(Use(Query::kRecordSchemaVersion)
                              .Int(1, migration.version)
                              .Time(2, Now())
                              .Run("cannot record the schema version"));
    FERRY_RETURN_IF_ERROR(txn.Commit());
  }
  return absl::OkStatus();
}

sqlite_internal::Statement SqliteStateStore::Use(Query q) {
  return Statement(statements_[static_cast<int>(q)]);
}

absl::StatusOr<sqlite_internal::WriteTransaction> SqliteStateStore::BeginWrite() {
  int rc = SQLITE_OK;
  for (int attempt = 1; attempt <= kBusyAttempts; ++attempt) {
    rc = Use(Query::kBegin).Step();
    if (rc == SQLITE_DONE) {
      return WriteTransaction(statements_[static_cast<int>(Query::kCommit)],
                              statements_[static_cast<int>(Query::kRollback)]);
    }
    if ((rc & 0xff) != SQLITE_BUSY) break;
  }
  return SqliteError(db_, rc, "cannot start a write transaction");
}

absl::Time SqliteStateStore::Now() const {
  return absl::FromUnixMicros(absl::ToUnixMicros(clock_.Now()));
}

absl::Status SqliteStateStore::AppendEvent(std::string_view kind, const std::string& resource,
                                           std::string_view from, std::string_view to,
                                           int64_t version, const std::string& actor,
                                           const std::string& reason, absl::Time at) {
  return Use(Query::kInsertEvent)
      .Text(1, kind)
      .Text(2, resource)
      .Text(3, from)
      .Text(4, to)
      .Int(5, version)
      .Text(6, actor)
      .Text(7, reason)
      .Time(8, at)
      .Run("cannot append an event for", resource);
}

absl::StatusOr<std::optional<PipelineRunRecord>> SqliteStateStore::LiveRunWithKey(
    const std::string& pipeline, const std::string& key) {
  Statement s = Use(Query::kLiveRunWithKey);
  s.Text(1, pipeline).Text(2, key);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot look up the idempotency key"));
  if (!row) return std::nullopt;
  return ReadRun(s);
}

absl::StatusOr<PipelineRunRecord> SqliteStateStore::CreateRun(const NewRun& run) {
  if (run.id.empty()) return absl::InvalidArgumentError("a new run needs an id");
  if (run.pipeline.empty()) {
    return absl::InvalidArgumentError(fmt::format("run {} needs a pipeline name", run.id));
  }
  std::vector<std::string_view> names(run.tasks.begin(), run.tasks.end());
  std::sort(names.begin(), names.end());
  if (!names.empty() && names.front().empty()) {
    return absl::InvalidArgumentError(fmt::format("run {} has a task with an empty name", run.id));
  }
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end()) {
    return absl::InvalidArgumentError(
        fmt::format("run {} lists task '{}' more than once", run.id, *dup));
  }

  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  {
    Statement s = Use(Query::kRunState);
    s.Text(1, run.id);
    FERRY_ASSIGN_OR_RETURN(bool exists, s.Next("cannot look up the run"));
    if (exists) {
      return absl::AlreadyExistsError(
          fmt::format("run {} already exists (it is {})", run.id, s.ColText(0)));
    }
  }
  if (!run.idempotency_key.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::optional<PipelineRunRecord> live,
                           LiveRunWithKey(run.pipeline, run.idempotency_key));
    if (live.has_value()) {
      return absl::AlreadyExistsError(fmt::format(
          "pipeline {} already has a live run with idempotency key '{}': {} ({}); wait for it to "
          "finish, cancel it, or use another key",
          run.pipeline, run.idempotency_key, live->id, live->state));
    }
  }
  const absl::Time now = Now();
  FERRY_RETURN_IF_ERROR(Use(Query::kInsertRun)
                            .Text(1, run.id)
                            .Text(2, run.pipeline)
                            .Text(3, run.pipeline_file)
                            .Text(4, run.idempotency_key)
                            .Text(5, run.params_json)
                            .Text(6, run.spec_json)
                            .Time(7, now)
                            .Run("cannot insert run", run.id));
  const std::string created = "created";
  FERRY_RETURN_IF_ERROR(AppendEvent(PipelineRunKind().name, run.id, "", run_state::kQueued, 1,
                                    run.actor, created, now));
  for (size_t i = 0; i < run.tasks.size(); ++i) {
    const std::string& task = run.tasks[i];
    FERRY_RETURN_IF_ERROR(Use(Query::kInsertTask)
                              .Text(1, run.id)
                              .Text(2, task)
                              .Int(3, static_cast<int64_t>(i))
                              .Run("cannot insert task", task));
    FERRY_RETURN_IF_ERROR(AppendEvent(TaskRunKind().name, TaskResource(run.id, task), "",
                                      task_state::kPending, 1, run.actor, created, now));
  }
  PipelineRunRecord record;
  {
    Statement s = Use(Query::kGetRun);
    s.Text(1, run.id);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read the new run"));
    FERRY_CHECK(row);  // inserted above, in this transaction
    record = ReadRun(s);
  }
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<PipelineRunRecord> SqliteStateStore::GetRun(const std::string& id) {
  Statement s = Use(Query::kGetRun);
  s.Text(1, id);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read run", id));
  if (!row) return absl::NotFoundError(fmt::format("no run {} in {}", id, path_));
  return ReadRun(s);
}

absl::StatusOr<std::vector<PipelineRunRecord>> SqliteStateStore::ListRuns(
    const std::string& pipeline, int limit) {
  const int64_t sql_limit = limit <= 0 ? -1 : limit;  // SQLite: a negative LIMIT means none
  Statement s = pipeline.empty() ? Use(Query::kListRuns) : Use(Query::kListRunsOfPipeline);
  if (pipeline.empty()) {
    s.Int(1, sql_limit);
  } else {
    s.Text(1, pipeline).Int(2, sql_limit);
  }
  return ReadAll(s, "cannot list runs", ReadRun);
}

absl::StatusOr<PipelineRunRecord> SqliteStateStore::TransitionRun(const RunTransition& t) {
  const KindTable& kind = PipelineRunKind();
  if (!IsLegal(kind, t.from, t.to)) return IllegalTransition(kind, t.id, t.from, t.to);

  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  const absl::Time now = Now();
  PipelineRunRecord record;
  {
    Statement s = Use(Query::kUpdateRun);
    s.Text(1, t.to)
        .Time(2, t.to == run_state::kRunning ? now : absl::InfinitePast())
        .Time(3, IsTerminal(kind, t.to) ? now : absl::InfinitePast())
        .OptInt(4, t.owner_pid)
        .OptText(5, t.owner_host)
        .OptText(6, t.message)
        .Text(7, t.id)
        .Text(8, t.from)
        .Int(9, t.expected_version);
    int rc = s.Step();
    if (rc == SQLITE_DONE) {
      Statement current = Use(Query::kRunState);
      current.Text(1, t.id);
      return MovedFirst(current, kind.name, t.id, t.from, t.expected_version);
    }
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      // Only the one-live-run-per-key index can object: resuming while another run holds the key.
      FERRY_ASSIGN_OR_RETURN(PipelineRunRecord run, GetRun(t.id));
      FERRY_ASSIGN_OR_RETURN(std::optional<PipelineRunRecord> live,
                             LiveRunWithKey(run.pipeline, run.idempotency_key));
      return absl::FailedPreconditionError(fmt::format(
          "run {} cannot become {}: run {} of pipeline {} is live ({}) with the same idempotency "
          "key '{}'",
          t.id, t.to, live.has_value() ? live->id : "?", run.pipeline,
          live.has_value() ? live->state : "?", run.idempotency_key));
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot update run", t.id);
    record = ReadRun(s);
  }
  FERRY_RETURN_IF_ERROR(
      AppendEvent(kind.name, t.id, t.from, t.to, record.version, t.actor, t.reason, now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<std::vector<TaskRunRecord>> SqliteStateStore::GetTasks(const std::string& run_id) {
  std::vector<TaskRunRecord> tasks;
  {
    Statement s = Use(Query::kGetTasks);
    s.Text(1, run_id);
    FERRY_ASSIGN_OR_RETURN(tasks, ReadAll(s, "cannot read tasks", ReadTask));
  }
  if (tasks.empty()) FERRY_RETURN_IF_ERROR(GetRun(run_id).status());
  return tasks;
}

absl::StatusOr<std::vector<TaskRunRecord>> SqliteStateStore::TransitionTasks(
    const std::vector<TaskTransition>& batch, const std::string& actor) {
  const KindTable& kind = TaskRunKind();
  for (const TaskTransition& t : batch) {
    if (!IsLegal(kind, t.from, t.to)) {
      return IllegalTransition(kind, TaskResource(t.run_id, t.task), t.from, t.to);
    }
  }
  std::vector<TaskRunRecord> out;
  if (batch.empty()) return out;
  out.reserve(batch.size());
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  const absl::Time now = Now();
  for (const TaskTransition& t : batch) {
    FERRY_RETURN_IF_ERROR(TransitionTaskLocked(t, actor, now, out));
  }
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return out;
}

absl::Status SqliteStateStore::TransitionTaskLocked(const TaskTransition& t,
                                                    const std::string& actor, absl::Time now,
                                                    std::vector<TaskRunRecord>& out) {
  const KindTable& kind = TaskRunKind();
  const bool enters_running = t.to == task_state::kRunning;
  const bool leaves_running = t.from == task_state::kRunning;
  const std::string resource = TaskResource(t.run_id, t.task);
  {
    Statement s = Use(Query::kUpdateTask);
    s.Text(1, t.to)
        .Int(2, enters_running ? 1 : 0)
        .Int(3, leaves_running ? 1 : 0)
        .OptInt(4, t.exit_code)
        .OptText(5, t.cache_key)
        .OptText(6, t.output_uri)
        .OptText(7, t.output_hash)
        .OptText(8, t.message)
        .OptTime(9, t.retry_at)
        .Time(10, t.to == task_state::kQueued ? now : absl::InfinitePast())
        .Time(11, enters_running ? now : absl::InfinitePast())
        .Time(12, IsTerminal(kind, t.to) ? now : absl::InfinitePast())
        .Text(13, t.run_id)
        .Text(14, t.task)
        .Text(15, t.from)
        .Int(16, t.expected_version);
    int rc = s.Step();
    if (rc == SQLITE_DONE) {
      Statement current = Use(Query::kTaskState);
      current.Text(1, t.run_id).Text(2, t.task);
      return MovedFirst(current, kind.name, resource, t.from, t.expected_version);
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot update", resource);
    out.push_back(ReadTask(s));
  }
  const TaskRunRecord& task = out.back();
  if (leaves_running) {
    FERRY_RETURN_IF_ERROR(Use(Query::kCloseAttempt)
                              .Time(1, now)
                              .Text(2, t.to)
                              .OptInt(3, t.exit_code)
                              .Text(4, t.run_id)
                              .Text(5, t.task)
                              .Run("cannot close the attempt of", resource));
  }
  if (enters_running) {
    Statement s = Use(Query::kOpenAttempt);
    s.Text(1, t.run_id)
        .Text(2, t.task)
        .Int(3, task.attempts)
        .Time(4, now)
        .Text(5, t.log_uri.has_value() ? std::string_view(*t.log_uri) : std::string_view());
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      // The one-live-attempt index, or a leftover attempt row with this number.
      return absl::FailedPreconditionError(
          fmt::format("{} cannot start attempt {}: another attempt of it is still live ({})",
                      resource, task.attempts, sqlite3_errmsg(db_)));
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(db_, rc, "cannot open an attempt of", resource);
    }
  }
  if (t.checkpoint.has_value()) FERRY_RETURN_IF_ERROR(PutCheckpointLocked(*t.checkpoint, now));
  return AppendEvent(kind.name, resource, t.from, t.to, task.version, actor, t.reason, now);
}

absl::Status SqliteStateStore::SetAttemptPid(const std::string& run_id, const std::string& task,
                                             int64_t pid) {
  const std::string resource = TaskResource(run_id, task);
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  {
    Statement s = Use(Query::kSetAttemptPid);
    s.Int(1, pid).Text(2, run_id).Text(3, task);
    FERRY_RETURN_IF_ERROR(s.Run("cannot record the pid of", resource));
    if (s.Changes() == 0) {
      Statement current = Use(Query::kTaskState);
      current.Text(1, run_id).Text(2, task);
      FERRY_ASSIGN_OR_RETURN(bool row, current.Next("cannot read the current state"));
      if (!row) return absl::NotFoundError(fmt::format("TaskRun {} does not exist", resource));
      return absl::FailedPreconditionError(
          fmt::format("TaskRun {} has no live attempt to record pid {} on (it is {}@v{})", resource,
                      pid, current.ColText(0), current.ColInt(1)));
    }
  }
  FERRY_RETURN_IF_ERROR(Use(Query::kSetTaskPid)
                            .Int(1, pid)
                            .Text(2, run_id)
                            .Text(3, task)
                            .Run("cannot record the pid of", resource));
  return txn.Commit();
}

absl::StatusOr<std::vector<AttemptRecord>> SqliteStateStore::GetAttempts(const std::string& run_id,
                                                                         const std::string& task) {
  std::vector<AttemptRecord> attempts;
  {
    Statement s = Use(Query::kGetAttempts);
    s.Text(1, run_id).Text(2, task);
    FERRY_ASSIGN_OR_RETURN(attempts, ReadAll(s, "cannot read attempts", ReadAttempt));
  }
  if (attempts.empty()) {
    Statement current = Use(Query::kTaskState);
    current.Text(1, run_id).Text(2, task);
    FERRY_ASSIGN_OR_RETURN(bool row, current.Next("cannot read the task"));
    if (!row) {
      return absl::NotFoundError(
          fmt::format("TaskRun {} does not exist", TaskResource(run_id, task)));
    }
  }
  return attempts;
}

absl::StatusOr<std::vector<EventRecord>> SqliteStateStore::GetEvents(const std::string& resource) {
  Statement s = resource.empty() ? Use(Query::kGetAllEvents) : Use(Query::kGetEvents);
  if (!resource.empty()) s.Text(1, resource);
  return ReadAll(s, "cannot read events", ReadEvent);
}

absl::Status SqliteStateStore::PutCheckpoint(const CheckpointRecord& c) {
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  FERRY_RETURN_IF_ERROR(PutCheckpointLocked(c, Now()));
  return txn.Commit();
}

absl::Status SqliteStateStore::PutCheckpointLocked(const CheckpointRecord& c, absl::Time now) {
  if (c.cache_key.empty()) return absl::InvalidArgumentError("a checkpoint needs a cache key");
  return Use(Query::kPutCheckpoint)
      .Text(1, c.cache_key)
      .Text(2, c.pipeline)
      .Text(3, c.run_id)
      .Text(4, c.task)
      .Text(5, c.output_uri)
      .Text(6, c.output_hash)
      .Time(7, c.created_at == absl::InfinitePast() ? now : c.created_at)
      .Run("cannot record checkpoint", c.cache_key);
}

absl::StatusOr<CheckpointRecord> SqliteStateStore::GetCheckpoint(const std::string& cache_key) {
  Statement s = Use(Query::kGetCheckpoint);
  s.Text(1, cache_key);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read the checkpoint"));
  if (!row) return absl::NotFoundError(fmt::format("no checkpoint with cache key {}", cache_key));
  return ReadCheckpoint(s);
}

absl::StatusOr<ModelRecord> SqliteStateStore::CreateModel(const std::string& name,
                                                          const std::string& description) {
  FERRY_RETURN_IF_ERROR(CheckModelName(name));
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  {
    Statement s = Use(Query::kInsertModel);
    s.Text(1, name).Text(2, description).Time(3, Now());
    FERRY_RETURN_IF_ERROR(s.Run("cannot create model", name));
    if (s.Changes() == 0) {
      return absl::AlreadyExistsError(fmt::format("model {} already exists", name));
    }
  }
  FERRY_ASSIGN_OR_RETURN(ModelRecord model, GetModel(name));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return model;
}

absl::StatusOr<ModelRecord> SqliteStateStore::GetModel(const std::string& name) {
  Statement s = Use(Query::kGetModel);
  s.Text(1, name);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read model", name));
  if (!row) return absl::NotFoundError(fmt::format("no model {} in {}", name, path_));
  return ReadModel(s);
}

absl::StatusOr<std::vector<ModelRecord>> SqliteStateStore::ListModels() {
  Statement s = Use(Query::kListModels);
  return ReadAll(s, "cannot list models", ReadModel);
}

absl::StatusOr<ModelVersionRecord> SqliteStateStore::RegisterModelVersion(
    const NewModelVersion& v) {
  FERRY_RETURN_IF_ERROR(CheckModelName(v.model));
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  if (!v.idempotency_key.empty()) {
    Statement s = Use(Query::kModelVersionWithKey);
    s.Text(1, v.model).Text(2, v.idempotency_key);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot look up the idempotency key"));
    if (row) return ReadModelVersion(s);  // a retry: nothing to write
  }
  const absl::Time now = Now();
  FERRY_RETURN_IF_ERROR(Use(Query::kInsertModel)
                            .Text(1, v.model)
                            .Text(2, "")
                            .Time(3, now)
                            .Run("cannot create model", v.model));
  int64_t number = 0;
  {
    Statement s = Use(Query::kNextModelVersion);
    s.Text(1, v.model);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot number a new version of model", v.model));
    FERRY_CHECK(row);  // the model exists: inserted above if it did not
    number = s.ColInt(0);
  }
  ModelVersionRecord record;
  {
    Statement s = Use(Query::kInsertModelVersion);
    s.Text(1, v.model)
        .Int(2, number)
        .Text(3, v.artifact_uri)
        .Text(4, v.run_id)
        .Text(5, v.task)
        .Text(6, v.idempotency_key)
        .Text(7, v.metrics_json)
        .Text(8, v.metadata_json)
        .Time(9, now);
    const std::string resource = ModelVersionResource(v.model, number);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot register", resource));
    FERRY_CHECK(row);  // RETURNING
    record = ReadModelVersion(s);
  }
  FERRY_RETURN_IF_ERROR(AppendEvent(ModelVersionKind().name, ModelVersionResource(v.model, number),
                                    "", model_state::kRegistered, 1, v.actor, "registered", now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<ModelVersionRecord> SqliteStateStore::ModelVersionLocked(const std::string& model,
                                                                        int64_t version) {
  {
    Statement s = Use(Query::kGetModelVersion);
    s.Text(1, model).Int(2, version);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read", ModelVersionResource(model, version)));
    if (row) return ReadModelVersion(s);
  }
  FERRY_ASSIGN_OR_RETURN(ModelRecord m, GetModel(model));
  return absl::NotFoundError(fmt::format(
      "model {} has no version {} ({})", model, version,
      m.latest_version == 0 ? std::string("it has none yet")
                            : fmt::format("its versions are 1 to {}", m.latest_version)));
}

absl::StatusOr<ModelVersionRecord> SqliteStateStore::GetModelVersion(const std::string& model,
                                                                     int64_t version) {
  return ModelVersionLocked(model, version);
}

absl::StatusOr<std::vector<ModelVersionRecord>> SqliteStateStore::ListModelVersions(
    const std::string& model) {
  std::vector<ModelVersionRecord> versions;
  {
    Statement s = Use(Query::kListModelVersions);
    s.Text(1, model);
    FERRY_ASSIGN_OR_RETURN(versions, ReadAll(s, "cannot list model versions", ReadModelVersion));
  }
  if (versions.empty()) FERRY_RETURN_IF_ERROR(GetModel(model).status());
  return versions;
}

absl::StatusOr<ModelVersionRecord> SqliteStateStore::TransitionModelVersion(
    const ModelVersionTransition& t) {
  const KindTable& kind = ModelVersionKind();
  const std::string resource = ModelVersionResource(t.model, t.version);
  if (!IsLegal(kind, t.from, t.to)) return IllegalTransition(kind, resource, t.from, t.to);

  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  const absl::Time now = Now();
  ModelVersionRecord record;
  {
    Statement s = Use(Query::kUpdateModelVersion);
    s.Text(1, t.to)
        .Time(2, now)
        .OptText(3, t.message)
        .Text(4, t.model)
        .Int(5, t.version)
        .Text(6, t.from)
        .Int(7, t.expected_revision);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot update", resource));
    if (!row) {
      Statement current = Use(Query::kModelVersionState);
      current.Text(1, t.model).Int(2, t.version);
      return MovedFirst(current, kind.name, resource, t.from, t.expected_revision);
    }
    record = ReadModelVersion(s);
  }
  if (!IsUsableModelState(t.to)) {
    // Checked after the compare-and-set, so that a stale caller hears that first.
    Statement s = Use(Query::kAliasesOfVersion);
    s.Text(1, t.model).Int(2, t.version);
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> aliases,
                           ReadAll(s, "cannot read the aliases of",
                                   [](const Statement& row) { return row.ColText(0); }));
    if (!aliases.empty()) {
      return absl::FailedPreconditionError(fmt::format(
          "{} cannot become {}: alias{} {} of model {} point{} to it; move or delete {} first",
          resource, t.to, aliases.size() == 1 ? "" : "es", fmt::join(aliases, ", "), t.model,
          aliases.size() == 1 ? "s" : "", aliases.size() == 1 ? "it" : "them"));
    }
  }
  FERRY_RETURN_IF_ERROR(
      AppendEvent(kind.name, resource, t.from, t.to, record.revision, t.actor, t.reason, now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<ModelAliasRecord> SqliteStateStore::SetAlias(const AliasMove& move) {
  FERRY_RETURN_IF_ERROR(CheckModelName(move.model));
  FERRY_RETURN_IF_ERROR(CheckAliasName(move.alias));
  const std::string resource = AliasResource(move.model, move.alias);
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  FERRY_ASSIGN_OR_RETURN(ModelVersionRecord target, ModelVersionLocked(move.model, move.version));
  if (!IsUsableModelState(target.state)) {
    return absl::FailedPreconditionError(
        fmt::format("alias {} cannot point to {}: it is {}", resource,
                    ModelVersionResource(move.model, move.version), target.state));
  }
  std::optional<ModelAliasRecord> current;
  {
    Statement s = Use(Query::kGetAlias);
    s.Text(1, move.model).Text(2, move.alias);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read alias", resource));
    if (row) current = ReadAlias(s);
  }
  const int64_t current_version = current.has_value() ? current->version : 0;
  auto describe = [](int64_t version) {
    return version == 0 ? std::string("nothing (no such alias)") : fmt::format("{}", version);
  };
  if (move.expected_current.has_value() && *move.expected_current != current_version) {
    return absl::FailedPreconditionError(
        fmt::format("alias {} moved first by someone else: expected it to point to {}, found {}",
                    resource, describe(*move.expected_current), describe(current_version)));
  }
  if (current_version == move.version) return *current;  // already there: nothing moves

  const absl::Time now = Now();
  ModelAliasRecord record;
  {
    Statement s = Use(Query::kPutAlias);
    s.Text(1, move.model).Text(2, move.alias).Int(3, move.version).Time(4, now);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot move alias", resource));
    FERRY_CHECK(row);  // RETURNING
    record = ReadAlias(s);
  }
  FERRY_RETURN_IF_ERROR(AppendEvent(
      kModelAliasKind, resource, current.has_value() ? fmt::format("{}", current_version) : "",
      fmt::format("{}", move.version), move.version, move.actor, move.reason, now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<ModelAliasRecord> SqliteStateStore::GetAlias(const std::string& model,
                                                            const std::string& alias) {
  const std::string resource = AliasResource(model, alias);
  Statement s = Use(Query::kGetAlias);
  s.Text(1, model).Text(2, alias);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read alias", resource));
  if (!row) {
    return absl::NotFoundError(fmt::format("model {} has no alias {}", model, alias));
  }
  return ReadAlias(s);
}

absl::StatusOr<std::vector<ModelAliasRecord>> SqliteStateStore::ListAliases(
    const std::string& model) {
  std::vector<ModelAliasRecord> aliases;
  {
    Statement s = Use(Query::kListAliases);
    s.Text(1, model);
    FERRY_ASSIGN_OR_RETURN(aliases, ReadAll(s, "cannot list aliases", ReadAlias));
  }
  if (aliases.empty()) FERRY_RETURN_IF_ERROR(GetModel(model).status());
  return aliases;
}

absl::Status SqliteStateStore::DeleteAlias(const std::string& model, const std::string& alias,
                                           const std::string& actor) {
  const std::string resource = AliasResource(model, alias);
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  FERRY_ASSIGN_OR_RETURN(ModelAliasRecord current, GetAlias(model, alias));
  FERRY_RETURN_IF_ERROR(
      Use(Query::kDeleteAlias).Text(1, model).Text(2, alias).Run("cannot delete alias", resource));
  FERRY_RETURN_IF_ERROR(AppendEvent(kModelAliasKind, resource, fmt::format("{}", current.version),
                                    "", 0, actor, "deleted", Now()));
  return txn.Commit();
}

absl::StatusOr<ExperimentRecord> SqliteStateStore::RecordExperiment(const NewExperiment& e) {
  FERRY_RETURN_IF_ERROR(CheckNewExperiment(e));
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  std::optional<int64_t> existing;  // the experiment a first attempt of this task recorded
  if (!e.run_id.empty()) {
    Statement s = Use(Query::kFindExperiment);
    s.Text(1, e.run_id).Text(2, e.task);
    FERRY_ASSIGN_OR_RETURN(
        bool row, s.Next("cannot look up the experiment of", TaskResource(e.run_id, e.task)));
    if (row) existing = s.ColInt(0);
  }
  ExperimentRecord record;
  {
    Statement s = Use(existing.has_value() ? Query::kUpdateExperiment : Query::kInsertExperiment);
    s.Text(1, e.name)
        .Text(2, e.run_id)
        .Text(3, e.task)
        .Text(4, e.model_type)
        .Text(5, e.params_json)
        .Text(6, e.metrics_json)
        .Text(7, e.dataset)
        .Text(8, e.dataset_version)
        .Text(9, e.code_hash)
        .Text(10, e.artifact_uri)
        .Real(11, e.duration_seconds)
        .Time(12, Now());
    if (existing.has_value()) s.Int(13, *existing);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot record experiment", e.name));
    FERRY_CHECK(row);  // RETURNING; an existing row was found in this transaction
    record = ReadExperiment(s);
  }
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<ExperimentRecord> SqliteStateStore::GetExperiment(int64_t id) {
  Statement s = Use(Query::kGetExperiment);
  s.Int(1, id);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read experiment", fmt::format("{}", id)));
  if (!row) return NoExperiment(id);
  return ReadExperiment(s);
}

absl::StatusOr<ExperimentRecord> SqliteStateStore::FindExperiment(const std::string& run_id,
                                                                  const std::string& task) {
  const std::string resource = TaskResource(run_id, task);
  Statement s = Use(Query::kFindExperiment);
  s.Text(1, run_id).Text(2, task);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot look up the experiment of", resource));
  if (!row) {
    return absl::NotFoundError(fmt::format(
        "task {} recorded no experiment (only train tasks do, once their fit is done)", resource));
  }
  return ReadExperiment(s);
}

absl::StatusOr<std::vector<ExperimentRecord>> SqliteStateStore::ListExperiments(
    const ExperimentFilter& f) {
  Statement s = Use(Query::kListExperiments);
  s.Text(1, f.name).Text(2, f.model_type).Int(3, f.limit <= 0 ? -1 : f.limit);
  return ReadAll(s, "cannot list experiments", ReadExperiment);
}

absl::Status SqliteStateStore::SetExperimentMetrics(int64_t id, const std::string& section,
                                                    const std::string& metrics_json) {
  const std::string subject = fmt::format("experiment {}", id);
  if (section.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: a metrics section needs a name (\"train\", \"evaluate\", ...)", subject));
  }
  FERRY_ASSIGN_OR_RETURN(
      nlohmann::ordered_json value,
      ParseJsonObject(subject, fmt::format("metrics section '{}'", section), metrics_json));
  // Read, merge and write under the write lock: a concurrent writer of another section waits for
  // this commit and then reads what it wrote.
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  FERRY_ASSIGN_OR_RETURN(ExperimentRecord current, GetExperiment(id));
  absl::StatusOr<nlohmann::ordered_json> metrics =
      current.metrics_json.empty() ? nlohmann::ordered_json::object()
                                   : ParseJsonObject(subject, "metrics_json", current.metrics_json);
  if (!metrics.ok()) {
    // Only a write that bypassed the store can leave this: say so rather than overwrite it.
    return absl::DataLossError(fmt::format("{} in the database {}; fix or re-record it",
                                           metrics.status().message(), path_));
  }
  (*metrics)[section] = std::move(value);
  FERRY_RETURN_IF_ERROR(Use(Query::kSetExperimentMetrics)
                            .Text(1, metrics->dump())
                            .Time(2, Now())
                            .Int(3, id)
                            .Run("cannot set the metrics of", subject));
  return txn.Commit();
}

absl::Status SqliteStateStore::SetExperimentModelVersion(int64_t id,
                                                         const std::string& model_version) {
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  {
    Statement s = Use(Query::kSetExperimentModelVersion);
    s.Text(1, model_version).Time(2, Now()).Int(3, id);
    FERRY_RETURN_IF_ERROR(
        s.Run("cannot set the model version of", fmt::format("experiment {}", id)));
    if (s.Changes() == 0) return NoExperiment(id);
  }
  return txn.Commit();
}

absl::StatusOr<ModelVersionRecord> SqliteStateStore::SetModelVersionArtifact(
    const std::string& model, int64_t version, const std::string& artifact_uri) {
  if (artifact_uri.empty()) {
    return absl::InvalidArgumentError("an artifact URI cannot be empty");
  }
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  int changes = 0;
  {
    Statement s = Use(Query::kSetModelVersionArtifact);
    s.Text(1, artifact_uri).Text(2, model).Int(3, version);
    FERRY_RETURN_IF_ERROR(
        s.Run("cannot set the artifact of", ModelVersionResource(model, version)));
    changes = s.Changes();
  }
  FERRY_ASSIGN_OR_RETURN(ModelVersionRecord record, ModelVersionLocked(model, version));
  if (changes == 0 && record.artifact_uri != artifact_uri) {
    return absl::FailedPreconditionError(
        fmt::format("{} already has its artifact at {}; a version's artifact never moves",
                    ModelVersionResource(model, version), record.artifact_uri));
  }
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<EndpointRecord> SqliteStateStore::CreateEndpoint(const NewEndpoint& e) {
  FERRY_RETURN_IF_ERROR(CheckEndpointName(e.name));
  FERRY_RETURN_IF_ERROR(
      ParseJsonObject(fmt::format("endpoint {}", e.name), "config_json", e.config_json).status());
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  {
    Statement s = Use(Query::kEndpointState);
    s.Text(1, e.name);
    FERRY_ASSIGN_OR_RETURN(bool exists, s.Next("cannot look up endpoint", e.name));
    if (exists) {
      const std::string state = s.ColText(0);
      return absl::AlreadyExistsError(
          state == endpoint_state::kDeleted
              ? fmt::format("endpoint {} was deleted; an endpoint's name is never reused (its "
                            "history stays readable): choose another name",
                            e.name)
              : fmt::format("endpoint {} already exists (it is {}); `ferry deploy {}` changes it",
                            e.name, state, e.name));
    }
  }
  const absl::Time now = Now();
  EndpointRecord record;
  {
    Statement s = Use(Query::kInsertEndpoint);
    s.Text(1, e.name).Text(2, e.config_json).Time(3, now);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot create endpoint", e.name));
    FERRY_CHECK(row);  // RETURNING
    record = ReadEndpoint(s);
  }
  FERRY_RETURN_IF_ERROR(AppendEvent(EndpointKind().name, e.name, "", endpoint_state::kCreating, 1,
                                    e.actor, "created", now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<EndpointRecord> SqliteStateStore::GetEndpoint(const std::string& name) {
  Statement s = Use(Query::kGetEndpoint);
  s.Text(1, name);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read endpoint", name));
  if (!row) return NoEndpoint(name);
  return ReadEndpoint(s);
}

absl::StatusOr<std::vector<EndpointRecord>> SqliteStateStore::ListEndpoints() {
  Statement s = Use(Query::kListEndpoints);
  return ReadAll(s, "cannot list endpoints", ReadEndpoint);
}

absl::StatusOr<EndpointRecord> SqliteStateStore::TransitionEndpoint(const EndpointTransition& t) {
  const KindTable& kind = EndpointKind();
  if (!IsLegal(kind, t.from, t.to)) return IllegalTransition(kind, t.name, t.from, t.to);
  if (t.config_json.has_value()) {
    FERRY_RETURN_IF_ERROR(
        ParseJsonObject(fmt::format("endpoint {}", t.name), "config_json", *t.config_json)
            .status());
  }
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  const absl::Time now = Now();
  EndpointRecord record;
  {
    Statement s = Use(Query::kUpdateEndpoint);
    s.Text(1, t.to)
        .Time(2, now)
        .OptText(3, t.config_json)
        .OptText(4, t.message)
        .Text(5, t.name)
        .Text(6, t.from)
        .Int(7, t.expected_version);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot update endpoint", t.name));
    if (!row) {
      Statement current = Use(Query::kEndpointState);
      current.Text(1, t.name);
      return MovedFirst(current, kind.name, t.name, t.from, t.expected_version);
    }
    record = ReadEndpoint(s);
  }
  FERRY_RETURN_IF_ERROR(
      AppendEvent(kind.name, t.name, t.from, t.to, record.version, t.actor, t.reason, now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<std::optional<DeploymentRecord>> SqliteStateStore::InFlightDeployment(
    const std::string& endpoint) {
  Statement s = Use(Query::kInFlightDeployment);
  s.Text(1, endpoint);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot look up the deployment in flight of", endpoint));
  if (!row) return std::nullopt;
  return ReadDeployment(s);
}

absl::StatusOr<DeploymentRecord> SqliteStateStore::CreateDeployment(const NewDeployment& d) {
  FERRY_RETURN_IF_ERROR(CheckNewDeployment(d));
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  if (!d.idempotency_key.empty()) {
    Statement s = Use(Query::kDeploymentWithKey);
    s.Text(1, d.endpoint).Text(2, d.idempotency_key);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot look up the idempotency key"));
    if (row) return ReadDeployment(s);  // a retry: nothing to write
  }
  FERRY_RETURN_IF_ERROR(GetEndpoint(d.endpoint).status());
  {
    Statement s = Use(Query::kDeploymentState);
    s.Text(1, d.id);
    FERRY_ASSIGN_OR_RETURN(bool exists, s.Next("cannot look up deployment", d.id));
    if (exists) {
      return absl::AlreadyExistsError(
          fmt::format("deployment {} already exists (it is {})", d.id, s.ColText(0)));
    }
  }
  const absl::Time now = Now();
  DeploymentRecord record;
  {
    Statement s = Use(Query::kInsertDeployment);
    s.Text(1, d.id)
        .Text(2, d.endpoint)
        .Text(3, d.strategy)
        .Text(4, d.spec_json)
        .Text(5, d.from_config_json)
        .Text(6, d.idempotency_key)
        .Time(7, now)
        .Text(8, d.actor);
    const int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      // The id and the key were checked above, in this transaction: only the one-in-flight index
      // can object. It, not a read before the insert, decides between concurrent callers.
      FERRY_ASSIGN_OR_RETURN(std::optional<DeploymentRecord> live, InFlightDeployment(d.endpoint));
      if (live.has_value()) {
        return absl::FailedPreconditionError(fmt::format(
            "endpoint {} has deployment {} in flight ({}); wait for it or `ferry rollback {}`",
            d.endpoint, live->id, live->state, d.endpoint));
      }
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot create deployment", d.id);
    record = ReadDeployment(s);
  }
  FERRY_RETURN_IF_ERROR(AppendEvent(DeploymentKind().name, d.id, "", deployment_state::kPending, 1,
                                    d.actor, "created", now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<DeploymentRecord> SqliteStateStore::GetDeployment(const std::string& id) {
  Statement s = Use(Query::kGetDeployment);
  s.Text(1, id);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read deployment", id));
  if (!row) {
    return absl::NotFoundError(fmt::format(
        "no deployment {}; `ferry endpoint show ENDPOINT` lists an endpoint's deployments", id));
  }
  return ReadDeployment(s);
}

absl::StatusOr<std::vector<DeploymentRecord>> SqliteStateStore::ListDeployments(
    const std::string& endpoint, int limit) {
  const int64_t sql_limit = limit <= 0 ? -1 : limit;  // SQLite: a negative LIMIT means none
  std::vector<DeploymentRecord> deployments;
  {
    Statement s =
        endpoint.empty() ? Use(Query::kListDeployments) : Use(Query::kListDeploymentsOfEndpoint);
    if (endpoint.empty()) {
      s.Int(1, sql_limit);
    } else {
      s.Text(1, endpoint).Int(2, sql_limit);
    }
    FERRY_ASSIGN_OR_RETURN(deployments, ReadAll(s, "cannot list deployments", ReadDeployment));
  }
  if (deployments.empty() && !endpoint.empty()) {
    FERRY_RETURN_IF_ERROR(GetEndpoint(endpoint).status());
  }
  return deployments;
}

absl::StatusOr<DeploymentRecord> SqliteStateStore::TransitionDeployment(
    const DeploymentTransition& t) {
  const KindTable& kind = DeploymentKind();
  if (!IsLegal(kind, t.from, t.to)) return IllegalTransition(kind, t.id, t.from, t.to);
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  const absl::Time now = t.at == absl::InfinitePast() ? Now() : TruncateToMicros(t.at);
  DeploymentRecord record;
  {
    Statement s = Use(Query::kUpdateDeployment);
    s.Text(1, t.to)
        .Time(2, t.to == deployment_state::kBaking ? now : absl::InfinitePast())
        .Time(3, IsTerminal(kind, t.to) ? now : absl::InfinitePast())
        .OptText(4, t.to_config_json)
        .OptText(5, t.message)
        .Text(6, t.id)
        .Text(7, t.from)
        .Int(8, t.expected_version);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot update deployment", t.id));
    if (!row) {
      Statement current = Use(Query::kDeploymentState);
      current.Text(1, t.id);
      return MovedFirst(current, kind.name, t.id, t.from, t.expected_version);
    }
    record = ReadDeployment(s);
  }
  FERRY_RETURN_IF_ERROR(
      AppendEvent(kind.name, t.id, t.from, t.to, record.version, t.actor, t.reason, now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::Status SqliteStateStore::PutVariantStats(const VariantStatsRecord& s) {
  FERRY_RETURN_IF_ERROR(CheckVariantStats(s));
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  FERRY_RETURN_IF_ERROR(Use(Query::kPutVariantStats)
                            .Text(1, s.endpoint)
                            .Text(2, s.instance)
                            .Text(3, s.variant)
                            .Text(4, s.model)
                            .Int(5, s.model_version)
                            .Int(6, s.endpoint_version)
                            .Int(7, s.ready ? 1 : 0)
                            .Int(8, s.requests)
                            .Int(9, s.errors)
                            .Text(10, s.latency_json)
                            .Time(11, s.updated_at == absl::InfinitePast() ? Now() : s.updated_at)
                            .Run("cannot record the stats of",
                                 fmt::format("{}/{}/{}", s.endpoint, s.instance, s.variant)));
  return txn.Commit();
}

absl::StatusOr<std::vector<VariantStatsRecord>> SqliteStateStore::ListVariantStats(
    const std::string& endpoint) {
  Statement s = Use(Query::kListVariantStats);
  s.Text(1, endpoint);
  return ReadAll(s, "cannot list variant stats", ReadVariantStats);
}

absl::Status SqliteStateStore::DeleteVariantStats(const std::string& endpoint,
                                                  const std::string& instance) {
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  FERRY_RETURN_IF_ERROR(Use(Query::kDeleteVariantStats)
                            .Text(1, endpoint)
                            .Text(2, instance)
                            .Run("cannot delete the variant stats of", instance));
  return txn.Commit();
}

absl::StatusOr<ApiKeyRecord> SqliteStateStore::CreateApiKey(const ApiKeyRecord& k) {
  FERRY_RETURN_IF_ERROR(CheckApiKey(k));
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  ApiKeyRecord record;
  {
    Statement s = Use(Query::kInsertApiKey);
    s.Text(1, k.id).Text(2, k.name).Text(3, k.role).Text(4, k.hash).Time(
        5, k.created_at == absl::InfinitePast() ? Now() : k.created_at);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot create API key", k.id));
    if (!row) {
      return absl::AlreadyExistsError(
          fmt::format("API key {} already exists; make a new key (a new id)", k.id));
    }
    record = ReadApiKey(s);
  }
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<std::vector<ApiKeyRecord>> SqliteStateStore::ListApiKeys() {
  Statement s = Use(Query::kListApiKeys);
  return ReadAll(s, "cannot list API keys", ReadApiKey);
}

absl::Status SqliteStateStore::RevokeApiKey(const std::string& id) {
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  {
    Statement s = Use(Query::kRevokeApiKey);
    s.Time(1, Now()).Text(2, id);
    FERRY_RETURN_IF_ERROR(s.Run("cannot revoke API key", id));
    if (s.Changes() == 0) {
      return absl::NotFoundError(fmt::format("no API key {}; `ferry keys list` lists them", id));
    }
  }
  return txn.Commit();
}

absl::StatusOr<JobRecord> SqliteStateStore::CreateJob(const NewJob& j) {
  FERRY_RETURN_IF_ERROR(CheckNewJob(j));
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  if (!j.idempotency_key.empty()) {
    Statement s = Use(Query::kJobWithKey);
    s.Text(1, j.kind).Text(2, j.idempotency_key);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot look up the idempotency key"));
    if (row) return ReadJob(s);  // a retry: nothing to write
  }
  const absl::Time now = Now();
  JobRecord record;
  {
    Statement s = Use(Query::kInsertJob);
    s.Text(1, j.id)
        .Text(2, j.kind)
        .Text(3, j.subject)
        .Text(4, j.spec_json)
        .Text(5, j.idempotency_key)
        .Time(6, now)
        .Text(7, j.actor);
    const int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
      return absl::AlreadyExistsError(
          fmt::format("{} {} already exists; make a new id with NewJobId", j.kind, j.id));
    }
    if (rc != SQLITE_ROW) return SqliteError(db_, rc, "cannot create job", j.id);
    record = ReadJob(s);
  }
  FERRY_RETURN_IF_ERROR(AppendEvent(j.kind, j.id, "", "queued", 1, j.actor, "created", now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::StatusOr<JobRecord> SqliteStateStore::GetJob(const std::string& id) {
  Statement s = Use(Query::kGetJob);
  s.Text(1, id);
  FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read job", id));
  if (!row) {
    return absl::NotFoundError(fmt::format(
        "no batch job or monitor run {}; `ferry batch-jobs` and `ferry monitor-runs` list them",
        id));
  }
  return ReadJob(s);
}

absl::StatusOr<std::vector<JobRecord>> SqliteStateStore::ListJobs(const std::string& kind,
                                                                  const std::string& subject,
                                                                  int limit) {
  const int64_t sql_limit = limit <= 0 ? -1 : limit;  // SQLite: a negative LIMIT means none
  Statement s = subject.empty() ? Use(Query::kListJobs) : Use(Query::kListJobsOfSubject);
  if (subject.empty()) {
    s.Text(1, kind).Int(2, sql_limit);
  } else {
    s.Text(1, kind).Text(2, subject).Int(3, sql_limit);
  }
  return ReadAll(s, "cannot list jobs", ReadJob);
}

absl::StatusOr<JobRecord> SqliteStateStore::TransitionJob(const JobTransition& t) {
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  std::string kind_name;
  {
    Statement s = Use(Query::kGetJob);
    s.Text(1, t.id);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot read job", t.id));
    if (!row) return absl::NotFoundError(fmt::format("no batch job or monitor run {}", t.id));
    kind_name = s.ColText(1);
  }
  const KindTable* kind = JobKind(kind_name);
  FERRY_CHECK(kind != nullptr);
  if (!IsLegal(*kind, t.from, t.to)) return IllegalTransition(*kind, t.id, t.from, t.to);
  const absl::Time now = Now();
  JobRecord record;
  {
    Statement s = Use(Query::kUpdateJob);
    s.Text(1, t.to)
        .Time(2, t.to == "running" ? now : absl::InfinitePast())
        .Time(3, IsTerminal(*kind, t.to) ? now : absl::InfinitePast())
        .OptText(4, t.result_json)
        .OptText(5, t.message)
        .OptInt(6, t.owner_pid)
        .OptText(7, t.owner_host)
        .Text(8, t.id)
        .Text(9, t.from)
        .Int(10, t.expected_version);
    FERRY_ASSIGN_OR_RETURN(bool row, s.Next("cannot update job", t.id));
    if (!row) {
      Statement current = Use(Query::kJobState);
      current.Text(1, t.id);
      return MovedFirst(current, kind->name, t.id, t.from, t.expected_version);
    }
    record = ReadJob(s);
  }
  FERRY_RETURN_IF_ERROR(
      AppendEvent(kind->name, t.id, t.from, t.to, record.version, t.actor, t.reason, now));
  FERRY_RETURN_IF_ERROR(txn.Commit());
  return record;
}

absl::Status SqliteStateStore::SetJobResult(const std::string& id, std::string_view state,
                                            const std::string& result_json) {
  FERRY_RETURN_IF_ERROR(ParseJsonObject(id, "result_json", result_json).status());
  FERRY_ASSIGN_OR_RETURN(WriteTransaction txn, BeginWrite());
  {
    Statement s = Use(Query::kSetJobResult);
    s.Text(1, result_json).Text(2, id).Text(3, state);
    FERRY_RETURN_IF_ERROR(s.Run("cannot record the result of job", id));
    if (s.Changes() == 0) {
      return absl::FailedPreconditionError(fmt::format(
          "job {} is not {} any more; `ferry batch-job show {}` tells its state", id, state, id));
    }
  }
  return txn.Commit();
}

}  // namespace ferry::state
