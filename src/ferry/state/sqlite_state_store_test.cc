#include "ferry/state/sqlite_state_store.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <set>
#include <string>

#include "ferry/common/clock.h"
#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/state/state_store_test_base.h"
#include "gtest/gtest.h"

namespace ferry::state {
namespace {

// One temp folder for the whole binary, removed at the end.
class TempRoot : public ::testing::Environment {
 public:
  static const std::string& Path() {
    static const std::string* path = [] {
      const char* tmp = std::getenv("TMPDIR");
      std::string pattern =
          std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ferry_state_test.XXXXXX";
      FERRY_CHECK(::mkdtemp(pattern.data()) != nullptr);
      return new std::string(pattern);
    }();
    return *path;
  }
  void TearDown() override { EXPECT_TRUE(RemoveAll(Path()).ok()); }
};

[[maybe_unused]] ::testing::Environment* const kTempRoot =
    ::testing::AddGlobalTestEnvironment(new TempRoot);

// A path under the temp root that no test has used, in a folder that does not exist yet.
std::string NewDatabasePath() {
  static std::atomic<int> next{0};
  return TempRoot::Path() + "/db" + std::to_string(next++) + "/state.db";
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StateStoreConformance,
                         ::testing::Values(StateStoreBackend{
                             .name = "sqlite",
                             .new_database = [] { return "sqlite://" + NewDatabasePath(); }}),
                         StateStoreBackendName);

// A plain SQLite connection, to look at the file the way another tool would.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db_, 10'000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }

  // The first column of the first row, as text ("" when none).
  std::string Query(const char* sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql, -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db_);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
  // The primary result code of running `sql`.
  int Exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) & 0xff; }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = NewDatabasePath();
    ASSERT_TRUE(MakeDirs(path_.substr(0, path_.rfind('/'))).ok());
  }

  std::unique_ptr<SqliteStateStore> Open(const Clock& clock = SystemClock::Get()) {
    absl::StatusOr<std::unique_ptr<SqliteStateStore>> store = SqliteStateStore::Open(path_, clock);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::string path_;
};

TEST_F(SqliteStateStoreTest, MigrationIsIdempotentAndWalIsOn) {
  auto first = Open();
  ASSERT_NE(first, nullptr);
  auto second = Open();  // while the first is open
  ASSERT_NE(second, nullptr);
  first.reset();
  second.reset();
  auto third = Open();  // after both closed
  ASSERT_NE(third, nullptr);

  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM schema_version"), "5");
  EXPECT_EQ(raw.Query("SELECT MAX(version) FROM schema_version"), "5");
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
  for (const char* table : {"pipeline_runs", "task_runs", "task_attempts", "events", "checkpoints",
                            "models", "model_versions", "model_aliases", "experiments", "endpoints",
                            "deployments", "variant_stats", "api_keys"}) {
    const std::string sql =
        std::string("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '") +
        table + "'";  // a constant of this test, not a value from outside
    EXPECT_EQ(raw.Query(sql.c_str()), "1") << table;
  }
}

TEST_F(SqliteStateStoreTest, DatabaseOfSchemaVersion1IsMigratedOnOpen) {
  // As the ferry before the model registry left it: schema 1, a run with events.
  ASSERT_TRUE(SqliteStateStore::CreateAtSchemaVersionForTest(path_, 1).ok());
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.Query("SELECT MAX(version) FROM schema_version"), "1");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'models'"), "0");
    ASSERT_EQ(raw.Exec("INSERT INTO pipeline_runs (id, pipeline, state, version, created_at) "
                       "VALUES ('old', 'p', 'succeeded', 3, 1)"),
              SQLITE_OK);
    ASSERT_EQ(raw.Exec("INSERT INTO events (kind, resource, from_state, to_state, version, "
                       "actor, reason, at) VALUES ('PipelineRun', 'old', '', 'queued', 1, 'a', "
                       "'created', 1)"),
              SQLITE_OK);
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.Query("SELECT group_concat(version) FROM schema_version"), "1,2,3,4,5");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                        "('models', 'model_versions', 'model_aliases')"),
              "3");
  }
  // The old rows are intact, and the registry works next to them.
  absl::StatusOr<PipelineRunRecord> run = store->GetRun("old");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, run_state::kSucceeded);
  EXPECT_EQ(run->version, 3);
  absl::StatusOr<ModelVersionRecord> v = store->RegisterModelVersion({.model = "churn"});
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->version, 1);
  absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].resource, "old");
  EXPECT_EQ((*events)[1].resource, "churn:1");

  // Reopening applies nothing twice.
  store.reset();
  ASSERT_NE(Open(), nullptr);
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM schema_version"), "5");
}

TEST_F(SqliteStateStoreTest, DatabaseOfSchemaVersion2GetsTheExperimentsTable) {
  // As the ferry before experiments left it: schema 2, a registered model version.
  ASSERT_TRUE(SqliteStateStore::CreateAtSchemaVersionForTest(path_, 2).ok());
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.Query("SELECT group_concat(version) FROM schema_version"), "1,2");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'experiments'"), "0");
    ASSERT_EQ(raw.Exec("INSERT INTO models (name, latest_version, created_at) "
                       "VALUES ('churn', 1, 1)"),
              SQLITE_OK);
    ASSERT_EQ(raw.Exec("INSERT INTO model_versions (model, version, state, revision, created_at, "
                       "updated_at) VALUES ('churn', 1, 'validated', 2, 1, 1)"),
              SQLITE_OK);
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.Query("SELECT group_concat(version) FROM schema_version"), "1,2,3,4,5");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND "
                        "name = 'experiments'"),
              "1");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
                        "('experiments_one_per_task', 'experiments_by_name', "
                        "'experiments_by_model_type')"),
              "3");
  }
  // The old rows are intact, and experiments work next to them, numbered from 1.
  absl::StatusOr<ModelVersionRecord> v = store->GetModelVersion("churn", 1);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->state, model_state::kValidated);
  EXPECT_EQ(v->revision, 2);
  absl::StatusOr<ExperimentRecord> e =
      store->RecordExperiment({.name = "churn",
                               .run_id = "r1",
                               .task = "train",
                               .params_json = "{}",
                               .metrics_json = R"({"train": {"auc": 0.9}})"});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->id, 1);
  ASSERT_TRUE(store->SetExperimentModelVersion(e->id, "churn:1").ok());
  absl::StatusOr<ExperimentRecord> got = store->FindExperiment("r1", "train");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, 1);
  EXPECT_EQ(got->model_version, "churn:1");
  EXPECT_EQ(got->metrics_json, R"({"train": {"auc": 0.9}})");

  // Reopening applies nothing twice and keeps the experiment.
  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  got = store->GetExperiment(1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "churn");
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM schema_version"), "5");
}

TEST_F(SqliteStateStoreTest, DatabaseOfSchemaVersion3GetsTheServingTables) {
  // As the ferry before serving left it: schema 3, a registered model version.
  ASSERT_TRUE(SqliteStateStore::CreateAtSchemaVersionForTest(path_, 3).ok());
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.Query("SELECT group_concat(version) FROM schema_version"), "1,2,3");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'endpoints'"), "0");
    ASSERT_EQ(raw.Exec("INSERT INTO models (name, latest_version, created_at) "
                       "VALUES ('churn', 1, 1)"),
              SQLITE_OK);
    ASSERT_EQ(raw.Exec("INSERT INTO model_versions (model, version, state, revision, created_at, "
                       "updated_at) VALUES ('churn', 1, 'production', 4, 1, 1)"),
              SQLITE_OK);
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  {
    RawDb raw(path_);
    EXPECT_EQ(raw.Query("SELECT group_concat(version) FROM schema_version"), "1,2,3,4,5");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                        "('endpoints', 'deployments', 'variant_stats', 'api_keys')"),
              "4");
    EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
                        "('deployments_one_in_flight', 'deployments_one_per_key')"),
              "2");
  }
  // The old rows are intact, and serving works next to them.
  absl::StatusOr<ModelVersionRecord> v = store->GetModelVersion("churn", 1);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->state, model_state::kProduction);
  ASSERT_TRUE(store->CreateEndpoint({.name = "churn"}).ok());
  absl::StatusOr<DeploymentRecord> d = store->CreateDeployment({.id = "d1",
                                                                .endpoint = "churn",
                                                                .strategy = "blue_green",
                                                                .spec_json = "{}",
                                                                .from_config_json = "{}"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, deployment_state::kPending);

  store.reset();
  store = Open();
  ASSERT_NE(store, nullptr);
  d = store->GetDeployment("d1");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->endpoint, "churn");
  RawDb raw(path_);
  EXPECT_EQ(raw.Query("SELECT COUNT(*) FROM schema_version"), "5");
}

TEST_F(SqliteStateStoreTest, OneDeploymentInFlightHoldsAgainstRawWrites) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateEndpoint({.name = "churn"}).ok());
  ASSERT_TRUE(store
                  ->CreateDeployment({.id = "d1",
                                      .endpoint = "churn",
                                      .strategy = "canary",
                                      .spec_json = "{}",
                                      .from_config_json = "{}",
                                      .idempotency_key = "k"})
                  .ok());

  // Any writer, not only this store, is held to one pending-or-baking deployment per endpoint
  // and one deployment per (endpoint, idempotency key).
  RawDb raw(path_);
  EXPECT_EQ(raw.Exec("INSERT INTO deployments (id, endpoint, state, version, strategy, "
                     "created_at) VALUES ('d2', 'churn', 'baking', 1, 'canary', 1)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.Exec("INSERT INTO deployments (id, endpoint, state, version, strategy, "
                     "created_at) VALUES ('d3', 'churn', 'promoted', 1, 'canary', 1)"),
            SQLITE_OK);  // a finished one is fine
  EXPECT_EQ(raw.Exec("INSERT INTO deployments (id, endpoint, state, version, strategy, "
                     "idempotency_key, created_at) VALUES ('d4', 'churn', 'failed', 1, 'canary', "
                     "'k', 1)"),
            SQLITE_CONSTRAINT);  // the key is taken, even by a finished deployment
  EXPECT_EQ(raw.Exec("UPDATE deployments SET state = 'pending' WHERE id = 'd3'"),
            SQLITE_CONSTRAINT);
  // A deployment belongs to an endpoint that exists.
  EXPECT_EQ(raw.Exec("PRAGMA foreign_keys = ON"), SQLITE_OK);
  EXPECT_EQ(raw.Exec("INSERT INTO deployments (id, endpoint, state, version, strategy, "
                     "created_at) VALUES ('d5', 'nope', 'failed', 1, 'canary', 1)"),
            SQLITE_CONSTRAINT);
}

TEST_F(SqliteStateStoreTest, ServingTimesComeFromTheClockOrTheCaller) {
  FakeClock clock(absl::FromUnixNanos(1'700'000'000'123'456'789));
  const absl::Time t0 = absl::FromUnixMicros(1'700'000'000'123'456);  // truncated, as stored
  auto store = Open(clock);
  ASSERT_NE(store, nullptr);

  absl::StatusOr<EndpointRecord> e = store->CreateEndpoint({.name = "churn"});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->created_at, t0);
  EXPECT_EQ(e->updated_at, t0);
  clock.Advance(absl::Seconds(1));
  e = store->TransitionEndpoint({.name = "churn",
                                 .from = endpoint_state::kCreating,
                                 .to = endpoint_state::kInService,
                                 .expected_version = 1});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->created_at, t0);
  EXPECT_EQ(e->updated_at, t0 + absl::Seconds(1));

  absl::StatusOr<DeploymentRecord> d = store->CreateDeployment({.id = "d1",
                                                                .endpoint = "churn",
                                                                .strategy = "canary",
                                                                .spec_json = "{}",
                                                                .from_config_json = "{}"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->created_at, t0 + absl::Seconds(1));
  clock.Advance(absl::Seconds(1));
  d = store->TransitionDeployment({.id = "d1",
                                   .from = deployment_state::kPending,
                                   .to = deployment_state::kBaking,
                                   .expected_version = 1});  // `at` unset: the store's clock
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->baking_since, t0 + absl::Seconds(2));
  EXPECT_EQ(d->finished_at, absl::InfinitePast());
  // The reconciler's own clock, truncated to microseconds like the store's.
  const absl::Time decided = absl::FromUnixNanos(1'700'000'600'000'000'999);
  d = store->TransitionDeployment({.id = "d1",
                                   .from = deployment_state::kBaking,
                                   .to = deployment_state::kPromoted,
                                   .expected_version = 2,
                                   .at = decided});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->finished_at, absl::FromUnixMicros(1'700'000'600'000'000));
  EXPECT_EQ(d->baking_since, t0 + absl::Seconds(2));
  absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("d1");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[1].at, t0 + absl::Seconds(2));
  EXPECT_EQ((*events)[2].at, absl::FromUnixMicros(1'700'000'600'000'000));

  // Stats and keys: the store's clock unless the caller stamped them; a key is revoked once.
  ASSERT_TRUE(store
                  ->PutVariantStats({.endpoint = "churn",
                                     .instance = "1@h:1",
                                     .variant = "blue",
                                     .latency_json = R"({"bounds_ms": [1], "counts": [0, 0]})"})
                  .ok());
  absl::StatusOr<std::vector<VariantStatsRecord>> rows = store->ListVariantStats("churn");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].updated_at, t0 + absl::Seconds(2));
  ASSERT_TRUE(store->CreateApiKey({.id = "k1", .role = "invoke", .hash = "h"}).ok());
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(store->RevokeApiKey("k1").ok());
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(store->RevokeApiKey("k1").ok());
  absl::StatusOr<std::vector<ApiKeyRecord>> keys = store->ListApiKeys();
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].created_at, t0 + absl::Seconds(2));
  EXPECT_EQ((*keys)[0].revoked_at, t0 + absl::Seconds(3));
}

TEST(DeploymentIdTest, IsTheTimeAndSixHexDigits) {
  FakeClock clock(absl::FromUnixSeconds(1'795'782'620));  // 2026-11-27 12:30:20 UTC
  const std::string id = NewDeploymentId(clock);
  ASSERT_EQ(id.size(), 23u) << id;
  EXPECT_EQ(id.substr(0, 17), "d20261127-123020-") << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 17), std::string::npos) << id;
  EXPECT_TRUE(IsValidName(id));
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.insert(NewDeploymentId(clock));
  EXPECT_GE(ids.size(), 99u);  // 24 random bits: a collision in 100 is one in ~3,400
}

TEST_F(SqliteStateStoreTest, OneExperimentPerTaskHoldsAgainstRawWrites) {
  ASSERT_NE(Open(), nullptr);
  RawDb raw(path_);
  EXPECT_EQ(raw.Exec("INSERT INTO experiments (name, run_id, task, created_at, updated_at) "
                     "VALUES ('a', 'r1', 'train', 1, 1)"),
            SQLITE_OK);
  EXPECT_EQ(raw.Exec("INSERT INTO experiments (name, run_id, task, created_at, updated_at) "
                     "VALUES ('b', 'r1', 'train', 2, 2)"),
            SQLITE_CONSTRAINT);
  // Outside a run (empty run id) any number may share a task name.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(raw.Exec("INSERT INTO experiments (name, run_id, task, created_at, updated_at) "
                       "VALUES ('c', '', 'train', 3, 3)"),
              SQLITE_OK);
  }
  EXPECT_EQ(raw.Query("SELECT group_concat(id) FROM experiments"), "1,2,3");
  // The defaults are JSON objects, as the store writes them.
  EXPECT_EQ(raw.Query("SELECT params_json || metrics_json FROM experiments WHERE id = 1"), "{}{}");
}

TEST_F(SqliteStateStoreTest, ModelVersionNumbersHoldAgainstRawWrites) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->RegisterModelVersion({.model = "churn", .idempotency_key = "k"}).ok());
  // One row per (model, version) and per (model, idempotency key), whoever writes; aliases name
  // versions that exist.
  RawDb raw(path_);
  EXPECT_EQ(raw.Exec("INSERT INTO model_versions (model, version, state, revision, created_at, "
                     "updated_at) VALUES ('churn', 1, 'registered', 1, 1, 1)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.Exec("INSERT INTO model_versions (model, version, state, revision, "
                     "idempotency_key, created_at, updated_at) "
                     "VALUES ('churn', 2, 'registered', 1, 'k', 1, 1)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.Exec("PRAGMA foreign_keys = ON"), SQLITE_OK);
  EXPECT_EQ(raw.Exec("INSERT INTO model_aliases (model, alias, version, updated_at) "
                     "VALUES ('churn', 'champion', 7, 1)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.Exec("INSERT INTO model_versions (model, version, state, revision, created_at, "
                     "updated_at) VALUES ('nope', 1, 'registered', 1, 1, 1)"),
            SQLITE_CONSTRAINT);
}

TEST_F(SqliteStateStoreTest, ModelMessagesSayWhatHappened) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->RegisterModelVersion({.model = "churn"}).ok());
  ASSERT_TRUE(store->RegisterModelVersion({.model = "churn"}).ok());
  EXPECT_EQ(store->GetModelVersion("churn", 5).status().message(),
            "model churn has no version 5 (its versions are 1 to 2)");
  EXPECT_EQ(store
                ->TransitionModelVersion({.model = "churn",
                                          .version = 1,
                                          .from = model_state::kRegistered,
                                          .to = model_state::kProduction,
                                          .expected_revision = 1})
                .status()
                .message(),
            "illegal transition ModelVersion churn:1: registered -> production (legal from "
            "registered: validated, rejected, tombstoned)");
  ASSERT_TRUE(store->SetAlias({.model = "churn", .alias = "champion", .version = 2}).ok());
  EXPECT_EQ(
      store->SetAlias({.model = "churn", .alias = "champion", .version = 1, .expected_current = 1})
          .status()
          .message(),
      "alias churn@champion moved first by someone else: expected it to point to 1, found "
      "2");
  EXPECT_EQ(store
                ->TransitionModelVersion({.model = "churn",
                                          .version = 2,
                                          .from = model_state::kRegistered,
                                          .to = model_state::kRejected,
                                          .expected_revision = 1})
                .status()
                .message(),
            "churn:2 cannot become rejected: alias champion of model churn points to it; move or "
            "delete it first");
  EXPECT_EQ(CheckAliasName("7").message(),
            "'7' cannot be an alias: NAME:7 means version 7; put a letter in it");
}

TEST(ModelRefTest, ParsesTheFourForms) {
  absl::StatusOr<ModelRef> r = ParseModelRef("churn");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "churn");
  EXPECT_EQ(r->version, 0);
  EXPECT_EQ(r->alias, "");
  r = ParseModelRef("churn:latest");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 0);
  EXPECT_EQ(r->alias, "");
  r = ParseModelRef("churn.v2:17");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "churn.v2");
  EXPECT_EQ(r->version, 17);
  r = ParseModelRef("churn:champion-2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, 0);
  EXPECT_EQ(r->alias, "champion-2");
  for (std::string_view bad : {"", ":", "churn:", ":1", "churn:0", "churn:1:2", "chu rn",
                               "churn:-1", "churn:1234567890123456789", "churn:a..b"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<ModelRef> b = ParseModelRef(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(b.status())) << b.status();
    EXPECT_NE(b.status().message().find("NAME:VERSION"), std::string::npos) << b.status();
  }
}

TEST_F(SqliteStateStoreTest, NewerSchemaIsRefused) {
  ASSERT_NE(Open(), nullptr);
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)"),
              SQLITE_OK);
  }
  absl::StatusOr<std::unique_ptr<SqliteStateStore>> store = SqliteStateStore::Open(path_);
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_NE(store.status().message().find("99"), std::string::npos) << store.status();
}

TEST_F(SqliteStateStoreTest, NotADatabaseIsAnError) {
  {
    std::ofstream out(path_);
    out << "this is not an sqlite file, not even close; it is long enough to have a header";
  }
  absl::StatusOr<std::unique_ptr<SqliteStateStore>> store = SqliteStateStore::Open(path_);
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_NE(store.status().message().find(path_), std::string::npos) << store.status();
}

TEST_F(SqliteStateStoreTest, ReopenedStoreSeesTheData) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateRun({.id = "r", .pipeline = "p", .tasks = {"a", "b"}}).ok());
    ASSERT_TRUE(store
                    ->TransitionRun({.id = "r",
                                     .from = run_state::kQueued,
                                     .to = run_state::kRunning,
                                     .expected_version = 1})
                    .ok());
    ASSERT_TRUE(store
                    ->TransitionTasks({{.run_id = "r",
                                        .task = "b",
                                        .from = task_state::kPending,
                                        .to = task_state::kCached,
                                        .expected_version = 1}},
                                      "test")
                    .ok());
    ASSERT_TRUE(store->PutCheckpoint({.cache_key = "ck", .output_uri = "file:///o"}).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<PipelineRunRecord> run = store->GetRun("r");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, run_state::kRunning);
  EXPECT_EQ(run->version, 2);
  absl::StatusOr<std::vector<TaskRunRecord>> tasks = store->GetTasks("r");
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 2u);
  EXPECT_EQ((*tasks)[1].state, task_state::kCached);
  absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("");
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(events->size(), 5u);  // run and 2 tasks created, run started, b cached
  absl::StatusOr<CheckpointRecord> ck = store->GetCheckpoint("ck");
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->output_uri, "file:///o");
}

TEST_F(SqliteStateStoreTest, TimesComeFromTheClockInMicroseconds) {
  FakeClock clock(absl::FromUnixNanos(1'700'000'000'123'456'789));
  const absl::Time t0 = absl::FromUnixMicros(1'700'000'000'123'456);  // truncated, as stored
  auto store = Open(clock);
  ASSERT_NE(store, nullptr);

  absl::StatusOr<PipelineRunRecord> run =
      store->CreateRun({.id = "r", .pipeline = "p", .tasks = {"a"}});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->created_at, t0);

  clock.Advance(absl::Seconds(1));
  run = store->TransitionRun(
      {.id = "r", .from = run_state::kQueued, .to = run_state::kRunning, .expected_version = 1});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->started_at, t0 + absl::Seconds(1));

  auto move = [&](std::string_view from, std::string_view to, int64_t version) {
    absl::StatusOr<std::vector<TaskRunRecord>> moved = store->TransitionTasks(
        {{.run_id = "r", .task = "a", .from = from, .to = to, .expected_version = version}},
        "test");
    EXPECT_TRUE(moved.ok()) << moved.status();
    return moved.ok() ? moved->at(0) : TaskRunRecord{};
  };
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(move(task_state::kPending, task_state::kQueued, 1).queued_at, t0 + absl::Seconds(2));
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(move(task_state::kQueued, task_state::kRunning, 2).started_at, t0 + absl::Seconds(3));
  clock.Advance(absl::Seconds(1));
  TaskRunRecord done = move(task_state::kRunning, task_state::kSucceeded, 3);
  EXPECT_EQ(done.finished_at, t0 + absl::Seconds(4));
  EXPECT_EQ(done.started_at, t0 + absl::Seconds(3));

  absl::StatusOr<std::vector<AttemptRecord>> attempts = store->GetAttempts("r", "a");
  ASSERT_TRUE(attempts.ok()) << attempts.status();
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].started_at, t0 + absl::Seconds(3));
  EXPECT_EQ((*attempts)[0].finished_at, t0 + absl::Seconds(4));

  clock.Advance(absl::Seconds(1));
  run = store->TransitionRun(
      {.id = "r", .from = run_state::kRunning, .to = run_state::kSucceeded, .expected_version = 2});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->finished_at, t0 + absl::Seconds(5));

  absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("r/a");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 4u);
  EXPECT_EQ((*events)[0].at, t0);
  EXPECT_EQ((*events)[3].at, t0 + absl::Seconds(4));
}

TEST_F(SqliteStateStoreTest, MessagesSayWhatHappened) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  absl::Status illegal = store
                             ->TransitionTasks({{.run_id = "x",
                                                 .task = "y",
                                                 .from = task_state::kFailed,
                                                 .to = task_state::kSucceeded,
                                                 .expected_version = 1}},
                                               "test")
                             .status();
  EXPECT_EQ(illegal.message(),
            "illegal transition TaskRun x/y: failed -> succeeded (legal from failed: pending)");

  ASSERT_TRUE(store->CreateRun({.id = "r1", .pipeline = "p", .tasks = {"a"}}).ok());
  int64_t version = 1;
  for (auto [from, to] : {std::pair{task_state::kPending, task_state::kQueued},
                          {task_state::kQueued, task_state::kRunning},
                          {task_state::kRunning, task_state::kSucceeded}}) {
    ASSERT_TRUE(store
                    ->TransitionTasks({{.run_id = "r1",
                                        .task = "a",
                                        .from = from,
                                        .to = to,
                                        .expected_version = version++}},
                                      "test")
                    .ok());
  }
  absl::Status stale = store
                           ->TransitionTasks({{.run_id = "r1",
                                               .task = "a",
                                               .from = task_state::kRunning,
                                               .to = task_state::kSucceeded,
                                               .expected_version = 3}},
                                             "test")
                           .status();
  EXPECT_TRUE(absl::IsFailedPrecondition(stale));
  EXPECT_EQ(stale.message(),
            "TaskRun r1/a moved first by someone else: expected running@v3, found succeeded@v4");

  ASSERT_TRUE(store->CreateRun({.id = "live", .pipeline = "p", .idempotency_key = "k"}).ok());
  absl::Status dup =
      store->CreateRun({.id = "again", .pipeline = "p", .idempotency_key = "k"}).status();
  EXPECT_TRUE(absl::IsAlreadyExists(dup));
  EXPECT_NE(dup.message().find("live"), std::string::npos) << dup;
}

TEST_F(SqliteStateStoreTest, UniqueIndexesHoldAgainstRawWrites) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->CreateRun({.id = "r", .pipeline = "p", .idempotency_key = "k", .tasks = {"a"}}).ok());
  ASSERT_TRUE(store
                  ->TransitionTasks({{.run_id = "r",
                                      .task = "a",
                                      .from = task_state::kPending,
                                      .to = task_state::kQueued,
                                      .expected_version = 1},
                                     {.run_id = "r",
                                      .task = "a",
                                      .from = task_state::kQueued,
                                      .to = task_state::kRunning,
                                      .expected_version = 2}},
                                    "test")
                  .ok());

  // Any writer, not only this store, is held to one live attempt per task and one live run per
  // (pipeline, idempotency key).
  RawDb raw(path_);
  EXPECT_EQ(raw.Exec("INSERT INTO task_attempts (run_id, task, attempt, started_at) "
                     "VALUES ('r', 'a', 2, 1)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.Exec("INSERT INTO task_attempts (run_id, task, attempt, started_at, finished_at) "
                     "VALUES ('r', 'a', 2, 1, 2)"),
            SQLITE_OK);  // a finished one is fine
  EXPECT_EQ(raw.Exec("INSERT INTO pipeline_runs (id, pipeline, state, version, idempotency_key, "
                     "created_at) VALUES ('r2', 'p', 'running', 1, 'k', 1)"),
            SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.Exec("INSERT INTO pipeline_runs (id, pipeline, state, version, idempotency_key, "
                     "created_at) VALUES ('r3', 'p', 'failed', 1, 'k', 1)"),
            SQLITE_OK);
}

TEST(OpenStateStoreTest, Schemes) {
  absl::StatusOr<std::unique_ptr<StateStore>> pg =
      OpenStateStore("postgresql://ferry:secret@db.example/ferry");
  EXPECT_TRUE(absl::IsUnimplemented(pg.status())) << pg.status();
  EXPECT_NE(pg.status().message().find("PostgreSQL"), std::string::npos);
  EXPECT_EQ(pg.status().message().find("secret"), std::string::npos) << pg.status();

  absl::StatusOr<std::unique_ptr<StateStore>> other = OpenStateStore("mysql://u:secret@h/db");
  EXPECT_TRUE(absl::IsInvalidArgument(other.status())) << other.status();
  EXPECT_NE(other.status().message().find("sqlite://"), std::string::npos) << other.status();
  EXPECT_EQ(other.status().message().find("secret"), std::string::npos) << other.status();

  EXPECT_TRUE(absl::IsInvalidArgument(OpenStateStore("/abs/state.db").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(OpenStateStore("sqlite://relative/state.db").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(OpenStateStore("sqlite:///abs/folder/").status()));
}

TEST(OpenStateStoreTest, SqliteCreatesTheFolder) {
  const std::string path = TempRoot::Path() + "/deep/er/still/state.db";
  absl::StatusOr<std::unique_ptr<StateStore>> store = OpenStateStore("sqlite://" + path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(PathExists(path));
  EXPECT_TRUE((*store)->CreateRun({.id = "r", .pipeline = "p"}).ok());
}

}  // namespace
}  // namespace ferry::state
