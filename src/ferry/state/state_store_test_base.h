#pragma once
// The conformance suite for StateStore: every backend (SQLite now, PostgreSQL later) runs these
// tests against a real database, so the contract in state_store.h holds whichever store a
// deployment uses. The tests walk every legal and illegal edge of the kinds in kinds.h, check
// versions, events, attempts, idempotency keys and checkpoints, the model registry (version
// numbering, aliases), experiments (ids, idempotency per task, filters, metrics sections),
// endpoints and deployments (one in flight per endpoint), variant stats and API keys, and race
// writers in threads and in forked processes.
//
// A backend instantiates it with a StateStoreBackend:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StateStoreConformance,
//                            ::testing::Values(StateStoreBackend{
//                                .name = "sqlite",
//                                .new_database = [] { return "sqlite://" + NewTempFile(); }}),
//                            StateStoreBackendName);
//
// Each test calls `new_database` once, then opens as many connections to that database as it
// needs with OpenStateStore(uri), from threads or from forked children.

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/state/kinds.h"
#include "ferry/state/state_store.h"
#include "gtest/gtest.h"

namespace ferry::state {

struct StateStoreBackend {
  std::string name;  // a test-name suffix: letters, digits, underscores
  // Returns the URI of a new, empty database, different on every call. Called once per test.
  std::function<std::string()> new_database;
};

void PrintTo(const StateStoreBackend& backend, std::ostream* os);
std::string StateStoreBackendName(const ::testing::TestParamInfo<StateStoreBackend>& info);

// The shortest path of legal edges from the kind's initial state (states[0]) to `to`: the states
// after the initial one, in order; empty for the initial state itself. Fails the test when `to`
// is unreachable.
std::vector<std::string_view> PathFromInitial(const KindTable& kind, std::string_view to);

class StateStoreConformance : public ::testing::TestWithParam<StateStoreBackend> {
 protected:
  void SetUp() override;

  // A new connection to this test's database.
  std::unique_ptr<StateStore> Connect();

  // Creates run `id` of pipeline "p" with `tasks`; fails the test on error.
  PipelineRunRecord MakeRun(const std::string& id, const std::vector<std::string>& tasks = {},
                            const std::string& idempotency_key = "",
                            const std::string& pipeline = "p");
  // Moves run `id` from the initial state to `to` along PathFromInitial; returns the last record.
  PipelineRunRecord BringRunTo(const std::string& id, std::string_view to);
  // Moves task `task` of run `run_id` from pending to `to` along PathFromInitial.
  TaskRunRecord BringTaskTo(const std::string& run_id, const std::string& task,
                            std::string_view to);

  TaskRunRecord GetTask(const std::string& run_id, const std::string& task);

  // Registers a new version of `model` (created if needed); fails the test on error.
  ModelVersionRecord Register(const std::string& model, const std::string& idempotency_key = "");
  // Moves a model version from registered to `to` along PathFromInitial; returns the last record.
  ModelVersionRecord BringModelVersionTo(const std::string& model, int64_t version,
                                         std::string_view to);
  std::vector<EventRecord> Events(const std::string& resource);

  // Creates endpoint `name` (state creating); fails the test on error.
  EndpointRecord MakeEndpoint(const std::string& name, const std::string& config_json = "{}");
  // Moves endpoint `name` to `to` along PathFromInitial (from where it is, when that is on the
  // path, else it must be creating); returns the last record.
  EndpointRecord BringEndpointTo(const std::string& name, std::string_view to);
  // Creates deployment `id` (a canary of churn:8) of `endpoint`; fails the test on error.
  DeploymentRecord MakeDeployment(const std::string& id, const std::string& endpoint,
                                  const std::string& idempotency_key = "");
  // Moves deployment `id` to `to` along PathFromInitial (from where it is, when that is on the
  // path, else it must be pending); returns the last record.
  DeploymentRecord BringDeploymentTo(const std::string& id, std::string_view to);
  // Creates job `id` of `kind` (BatchJob or MonitorRun) about `subject`; fails the test on error.
  JobRecord MakeJob(const std::string& id, const KindTable& kind, const std::string& subject,
                    const std::string& idempotency_key = "");
  // Moves job `id` to `to` along PathFromInitial of its kind; returns the last record.
  JobRecord BringJobTo(const std::string& id, const KindTable& kind, std::string_view to);

  std::string uri_;
  std::unique_ptr<StateStore> store_;
};

}  // namespace ferry::state
