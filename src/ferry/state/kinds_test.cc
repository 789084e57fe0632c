#include "ferry/state/kinds.h"

#include <set>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace ferry::state {
namespace {

std::set<std::string_view> ReachableFromInitial(const KindTable& kind) {
  std::set<std::string_view> seen = {kind.states.front()};
  std::vector<std::string_view> frontier = {kind.states.front()};
  while (!frontier.empty()) {
    std::string_view s = frontier.back();
    frontier.pop_back();
    for (const Edge& e : kind.edges) {
      if (e.from == s && seen.insert(e.to).second) frontier.push_back(e.to);
    }
  }
  return seen;
}

class KindTableTest : public ::testing::TestWithParam<const KindTable*> {};

TEST_P(KindTableTest, StatesAreUniqueAndNamed) {
  const KindTable& kind = *GetParam();
  EXPECT_FALSE(kind.name.empty());
  EXPECT_FALSE(kind.diagram.empty());
  ASSERT_FALSE(kind.states.empty());
  std::set<std::string_view> unique(kind.states.begin(), kind.states.end());
  EXPECT_EQ(unique.size(), kind.states.size());
  for (std::string_view s : kind.states) EXPECT_FALSE(s.empty());
}

TEST_P(KindTableTest, EveryEdgeJoinsDeclaredStatesOnce) {
  const KindTable& kind = *GetParam();
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const Edge& e : kind.edges) {
    SCOPED_TRACE(testing::Message() << e.from << " -> " << e.to);
    EXPECT_TRUE(IsState(kind, e.from));
    EXPECT_TRUE(IsState(kind, e.to));
    EXPECT_NE(e.from, e.to);
    EXPECT_FALSE(e.why.empty());
    EXPECT_TRUE(seen.insert({e.from, e.to}).second) << "duplicate edge";
  }
}

TEST_P(KindTableTest, TerminalStatesAreDeclared) {
  const KindTable& kind = *GetParam();
  EXPECT_FALSE(kind.terminal.empty());
  for (std::string_view s : kind.terminal) {
    EXPECT_TRUE(IsState(kind, s)) << s;
    EXPECT_TRUE(IsTerminal(kind, s)) << s;
  }
  EXPECT_FALSE(IsTerminal(kind, kind.states.front()));
}

TEST_P(KindTableTest, EveryStateIsReachableFromTheInitialOne) {
  const KindTable& kind = *GetParam();
  const std::set<std::string_view> reachable = ReachableFromInitial(kind);
  for (std::string_view s : kind.states) EXPECT_TRUE(reachable.contains(s)) << s;
}

TEST_P(KindTableTest, OnlyTerminalStatesAreDeadEnds) {
  // A live row must always have somewhere to go; terminal ones leave only to resume.
  const KindTable& kind = *GetParam();
  for (std::string_view s : kind.states) {
    if (IsTerminal(kind, s)) continue;
    bool has_exit = false;
    for (const Edge& e : kind.edges) has_exit = has_exit || e.from == s;
    EXPECT_TRUE(has_exit) << s;
  }
}

TEST_P(KindTableTest, IsLegalMatchesTheEdgesExactly) {
  const KindTable& kind = *GetParam();
  int legal = 0;
  for (std::string_view from : kind.states) {
    for (std::string_view to : kind.states) {
      if (IsLegal(kind, from, to)) ++legal;
    }
    EXPECT_FALSE(IsLegal(kind, from, "bogus"));
    EXPECT_FALSE(IsLegal(kind, "bogus", from));
    EXPECT_FALSE(IsLegal(kind, from, from)) << "no self-loops";
  }
  EXPECT_EQ(legal, static_cast<int>(kind.edges.size()));
}

INSTANTIATE_TEST_SUITE_P(AllKinds, KindTableTest, ::testing::ValuesIn(AllKinds()),
                         [](const ::testing::TestParamInfo<const KindTable*>& info) {
                           return std::string(info.param->name);
                         });

TEST(KindsTest, AllKindsListsEachOnceWithDistinctNames) {
  ASSERT_EQ(AllKinds().size(), 7u);
  EXPECT_EQ(AllKinds()[0], &PipelineRunKind());
  EXPECT_EQ(AllKinds()[1], &TaskRunKind());
  EXPECT_EQ(AllKinds()[2], &ModelVersionKind());
  EXPECT_EQ(AllKinds()[3], &EndpointKind());
  EXPECT_EQ(AllKinds()[4], &DeploymentKind());
  EXPECT_EQ(AllKinds()[5], &BatchJobKind());
  EXPECT_EQ(AllKinds()[6], &MonitorRunKind());
  EXPECT_EQ(PipelineRunKind().name, "PipelineRun");
  EXPECT_EQ(TaskRunKind().name, "TaskRun");
  EXPECT_EQ(ModelVersionKind().name, "ModelVersion");
  EXPECT_EQ(EndpointKind().name, "Endpoint");
  EXPECT_EQ(DeploymentKind().name, "Deployment");
  std::set<std::string_view> names;
  for (const KindTable* kind : AllKinds()) names.insert(kind->name);
  EXPECT_EQ(names.size(), AllKinds().size());
}

TEST(KindsTest, FindKindFoldsCaseAndSeparators) {
  EXPECT_EQ(FindKind("PipelineRun"), &PipelineRunKind());
  EXPECT_EQ(FindKind("pipelinerun"), &PipelineRunKind());
  EXPECT_EQ(FindKind("pipeline_run"), &PipelineRunKind());
  EXPECT_EQ(FindKind("PIPELINE-RUN"), &PipelineRunKind());
  EXPECT_EQ(FindKind("task_run"), &TaskRunKind());
  EXPECT_EQ(FindKind("TaskRun"), &TaskRunKind());
  EXPECT_EQ(FindKind("model_version"), &ModelVersionKind());
  EXPECT_EQ(FindKind("ModelVersion"), &ModelVersionKind());
  EXPECT_EQ(FindKind("endpoint"), &EndpointKind());
  EXPECT_EQ(FindKind("Deployment"), &DeploymentKind());
  EXPECT_EQ(FindKind("taskruns"), nullptr);
  EXPECT_EQ(FindKind("model"), nullptr);
  EXPECT_EQ(FindKind(""), nullptr);
}

TEST(KindsTest, PipelineRunSamples) {
  const KindTable& k = PipelineRunKind();
  EXPECT_EQ(k.states.front(), run_state::kQueued);
  EXPECT_TRUE(IsLegal(k, run_state::kQueued, run_state::kRunning));
  EXPECT_TRUE(IsLegal(k, run_state::kRunning, run_state::kCancelling));
  EXPECT_TRUE(IsLegal(k, run_state::kFailed, run_state::kRunning));  // resume
  EXPECT_FALSE(IsLegal(k, run_state::kRunning, run_state::kQueued));
  EXPECT_FALSE(IsLegal(k, run_state::kSucceeded, run_state::kRunning));
  EXPECT_FALSE(IsLegal(k, run_state::kQueued, run_state::kSucceeded));
  EXPECT_FALSE(IsLegal(k, run_state::kCancelled, run_state::kCancelling));
  EXPECT_TRUE(IsTerminal(k, run_state::kSucceeded));
  EXPECT_FALSE(IsTerminal(k, run_state::kCancelling));
  EXPECT_FALSE(IsState(k, "pending"));
}

TEST(KindsTest, TaskRunSamples) {
  const KindTable& k = TaskRunKind();
  EXPECT_EQ(k.states.front(), task_state::kPending);
  EXPECT_TRUE(IsLegal(k, task_state::kPending, task_state::kCached));
  EXPECT_TRUE(IsLegal(k, task_state::kRunning, task_state::kRetrying));
  EXPECT_TRUE(IsLegal(k, task_state::kRetrying, task_state::kQueued));
  EXPECT_TRUE(IsLegal(k, task_state::kFailed, task_state::kPending));
  EXPECT_FALSE(IsLegal(k, task_state::kFailed, task_state::kSucceeded));
  EXPECT_FALSE(IsLegal(k, task_state::kPending, task_state::kRunning));
  // Done tasks go back to pending only when a resume finds their checkpoint gone.
  EXPECT_TRUE(IsLegal(k, task_state::kSucceeded, task_state::kPending));
  EXPECT_TRUE(IsLegal(k, task_state::kCached, task_state::kPending));
  EXPECT_FALSE(IsLegal(k, task_state::kSucceeded, task_state::kQueued));
  EXPECT_FALSE(IsLegal(k, task_state::kCached, task_state::kRunning));
  EXPECT_TRUE(IsTerminal(k, task_state::kCached));
  EXPECT_FALSE(IsTerminal(k, task_state::kRetrying));
  EXPECT_TRUE(IsState(k, task_state::kUpstreamFailed));
  EXPECT_FALSE(IsState(k, "Pending"));
}

TEST(KindsTest, ModelVersionSamples) {
  using namespace model_state;
  const KindTable& k = ModelVersionKind();
  EXPECT_EQ(k.states, (std::vector<std::string_view>{kRegistered, kValidated, kStaged, kProduction,
                                                     kArchived, kRejected, kTombstoned}));
  EXPECT_EQ(k.terminal, (std::vector<std::string_view>{kArchived, kRejected, kTombstoned}));
  EXPECT_EQ(k.edges.size(), 14u);
  // The main path, one step at a time: no skipping validation or staging.
  EXPECT_TRUE(IsLegal(k, kRegistered, kValidated));
  EXPECT_TRUE(IsLegal(k, kValidated, kStaged));
  EXPECT_TRUE(IsLegal(k, kStaged, kProduction));
  EXPECT_TRUE(IsLegal(k, kProduction, kArchived));
  EXPECT_FALSE(IsLegal(k, kRegistered, kStaged));
  EXPECT_FALSE(IsLegal(k, kValidated, kProduction));
  EXPECT_FALSE(IsLegal(k, kRegistered, kProduction));
  // Rollback goes through staging again.
  EXPECT_TRUE(IsLegal(k, kArchived, kStaged));
  EXPECT_FALSE(IsLegal(k, kArchived, kProduction));
  // A version that may serve traffic is archived before it is deleted.
  EXPECT_FALSE(IsLegal(k, kProduction, kTombstoned));
  EXPECT_FALSE(IsLegal(k, kStaged, kTombstoned));
  EXPECT_TRUE(IsLegal(k, kArchived, kTombstoned));
  EXPECT_TRUE(IsLegal(k, kRejected, kTombstoned));
  // Rejection is final: a rejected version is only ever deleted; tombstoned is the end.
  EXPECT_FALSE(IsLegal(k, kRejected, kValidated));
  EXPECT_FALSE(IsLegal(k, kProduction, kRejected));
  for (std::string_view to : k.states) EXPECT_FALSE(IsLegal(k, kTombstoned, to)) << to;
}

TEST(KindsTest, EndpointSamples) {
  using namespace endpoint_state;
  const KindTable& k = EndpointKind();
  EXPECT_EQ(k.states, (std::vector<std::string_view>{kCreating, kInService, kUpdating, kRollingBack,
                                                     kFailed, kDeleting, kDeleted}));
  EXPECT_EQ(k.terminal, (std::vector<std::string_view>{kDeleted}));
  EXPECT_EQ(k.edges.size(), 11u);
  // A deployment moves it out of service and back; a rollback too, from either side.
  EXPECT_TRUE(IsLegal(k, kCreating, kInService));
  EXPECT_TRUE(IsLegal(k, kInService, kUpdating));
  EXPECT_TRUE(IsLegal(k, kUpdating, kInService));
  EXPECT_TRUE(IsLegal(k, kUpdating, kRollingBack));
  EXPECT_TRUE(IsLegal(k, kInService, kRollingBack));
  EXPECT_TRUE(IsLegal(k, kRollingBack, kInService));
  EXPECT_TRUE(IsLegal(k, kFailed, kUpdating));  // a new deployment repairs it
  EXPECT_FALSE(IsLegal(k, kCreating, kUpdating));
  EXPECT_FALSE(IsLegal(k, kFailed, kInService));
  EXPECT_FALSE(IsLegal(k, kRollingBack, kUpdating));
  // Only an endpoint that is not changing can be deleted, and deleted is the end.
  EXPECT_TRUE(IsLegal(k, kInService, kDeleting));
  EXPECT_TRUE(IsLegal(k, kFailed, kDeleting));
  EXPECT_FALSE(IsLegal(k, kUpdating, kDeleting));
  EXPECT_FALSE(IsLegal(k, kCreating, kDeleting));
  EXPECT_FALSE(IsLegal(k, kDeleting, kInService));
  for (std::string_view to : k.states) EXPECT_FALSE(IsLegal(k, kDeleted, to)) << to;
}

TEST(KindsTest, DeploymentSamples) {
  using namespace deployment_state;
  const KindTable& k = DeploymentKind();
  EXPECT_EQ(k.states,
            (std::vector<std::string_view>{kPending, kBaking, kPromoted, kRolledBack, kFailed}));
  EXPECT_EQ(k.terminal, (std::vector<std::string_view>{kPromoted, kRolledBack, kFailed}));
  EXPECT_EQ(k.edges.size(), 6u);
  // Nothing is promoted without baking; every end is final.
  EXPECT_TRUE(IsLegal(k, kPending, kBaking));
  EXPECT_TRUE(IsLegal(k, kBaking, kPromoted));
  EXPECT_FALSE(IsLegal(k, kPending, kPromoted));
  EXPECT_TRUE(IsLegal(k, kPending, kRolledBack));
  EXPECT_TRUE(IsLegal(k, kBaking, kRolledBack));
  EXPECT_TRUE(IsLegal(k, kPending, kFailed));
  EXPECT_TRUE(IsLegal(k, kBaking, kFailed));
  EXPECT_FALSE(IsLegal(k, kBaking, kPending));
  for (std::string_view end : k.terminal) {
    for (std::string_view to : k.states) EXPECT_FALSE(IsLegal(k, end, to)) << end << " " << to;
  }
}

TEST(KindsTest, UsableModelStates) {
  using namespace model_state;
  for (std::string_view s : {kRegistered, kValidated, kStaged, kProduction, kArchived}) {
    EXPECT_TRUE(IsUsableModelState(s)) << s;
  }
  EXPECT_FALSE(IsUsableModelState(kRejected));
  EXPECT_FALSE(IsUsableModelState(kTombstoned));
}

}  // namespace
}  // namespace ferry::state
