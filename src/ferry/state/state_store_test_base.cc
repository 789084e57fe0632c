#include "ferry/state/state_store_test_base.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <functional>
#include <latch>
#include <map>
#include <numeric>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/common/status.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::state {

#define FERRY_ASSERT_OK(expr)             \
  do {                                    \
    const absl::Status status_ = (expr);  \
    ASSERT_TRUE(status_.ok()) << status_; \
  } while (0)

#define FERRY_INTERNAL_ASSERT_OK_AND_ASSIGN(tmp, lhs, expr) \
  auto tmp = (expr);                                        \
  ASSERT_TRUE(tmp.ok()) << tmp.status();                    \
  lhs = std::move(tmp).value()

#define FERRY_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  FERRY_INTERNAL_ASSERT_OK_AND_ASSIGN(FERRY_INTERNAL_CONCAT(statusor_, __LINE__), lhs, expr)

void PrintTo(const StateStoreBackend& backend, std::ostream* os) { *os << backend.name; }

std::string StateStoreBackendName(const ::testing::TestParamInfo<StateStoreBackend>& info) {
  return info.param.name;
}

std::vector<std::string_view> PathFromInitial(const KindTable& kind, std::string_view to) {
  const std::string_view initial = kind.states.front();
  std::map<std::string_view, std::string_view> parent;  // state -> the state it was reached from
  std::vector<std::string_view> frontier = {initial};
  parent[initial] = initial;
  for (size_t i = 0; i < frontier.size(); ++i) {
    for (const Edge& e : kind.edges) {
      if (e.from == frontier[i] && !parent.contains(e.to)) {
        parent[e.to] = e.from;
        frontier.push_back(e.to);
      }
    }
  }
  if (!parent.contains(to)) {
    ADD_FAILURE() << kind.name << " state " << to << " is unreachable from " << initial;
    return {};
  }
  std::vector<std::string_view> path;
  for (std::string_view s = to; s != initial; s = parent[s]) path.insert(path.begin(), s);
  return path;
}

void StateStoreConformance::SetUp() {
  uri_ = GetParam().new_database();
  store_ = Connect();
  ASSERT_NE(store_, nullptr);
}

std::unique_ptr<StateStore> StateStoreConformance::Connect() {
  absl::StatusOr<std::unique_ptr<StateStore>> store = OpenStateStore(uri_);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(store).value() : nullptr;
}

PipelineRunRecord StateStoreConformance::MakeRun(const std::string& id,
                                                 const std::vector<std::string>& tasks,
                                                 const std::string& idempotency_key,
                                                 const std::string& pipeline) {
  absl::StatusOr<PipelineRunRecord> run = store_->CreateRun({.id = id,
                                                             .pipeline = pipeline,
                                                             .pipeline_file = "/p/pipeline.yaml",
                                                             .idempotency_key = idempotency_key,
                                                             .params_json = "{}",
                                                             .spec_json = "{}",
                                                             .tasks = tasks,
                                                             .actor = "test"});
  EXPECT_TRUE(run.ok()) << run.status();
  return run.ok() ? *run : PipelineRunRecord{};
}

PipelineRunRecord StateStoreConformance::BringRunTo(const std::string& id, std::string_view to) {
  absl::StatusOr<PipelineRunRecord> run = store_->GetRun(id);
  for (std::string_view next : PathFromInitial(PipelineRunKind(), to)) {
    if (!run.ok()) break;
    run = store_->TransitionRun({.id = id,
                                 .from = run->state,
                                 .to = next,
                                 .expected_version = run->version,
                                 .reason = "setting up",
                                 .actor = "test"});
  }
  EXPECT_TRUE(run.ok()) << run.status();
  return run.ok() ? *run : PipelineRunRecord{};
}

TaskRunRecord StateStoreConformance::BringTaskTo(const std::string& run_id, const std::string& task,
                                                 std::string_view to) {
  TaskRunRecord current = GetTask(run_id, task);
  for (std::string_view next : PathFromInitial(TaskRunKind(), to)) {
    absl::StatusOr<std::vector<TaskRunRecord>> moved =
        store_->TransitionTasks({{.run_id = run_id,
                                  .task = task,
                                  .from = current.state,
                                  .to = next,
                                  .expected_version = current.version,
                                  .reason = "setting up"}},
                                "test");
    EXPECT_TRUE(moved.ok()) << moved.status();
    if (!moved.ok()) break;
    current = moved->at(0);
  }
  return current;
}

TaskRunRecord StateStoreConformance::GetTask(const std::string& run_id, const std::string& task) {
  absl::StatusOr<std::vector<TaskRunRecord>> tasks = store_->GetTasks(run_id);
  EXPECT_TRUE(tasks.ok()) << tasks.status();
  if (tasks.ok()) {
    for (const TaskRunRecord& t : *tasks) {
      if (t.task == task) return t;
    }
  }
  ADD_FAILURE() << "no task " << run_id << "/" << task;
  return {};
}

std::vector<EventRecord> StateStoreConformance::Events(const std::string& resource) {
  absl::StatusOr<std::vector<EventRecord>> events = store_->GetEvents(resource);
  EXPECT_TRUE(events.ok()) << events.status();
  return events.ok() ? *events : std::vector<EventRecord>{};
}

ModelVersionRecord StateStoreConformance::Register(const std::string& model,
                                                   const std::string& idempotency_key) {
  absl::StatusOr<ModelVersionRecord> v =
      store_->RegisterModelVersion({.model = model,
                                    .artifact_uri = "file:///lake/models/" + model,
                                    .idempotency_key = idempotency_key,
                                    .actor = "test"});
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : ModelVersionRecord{};
}

ModelVersionRecord StateStoreConformance::BringModelVersionTo(const std::string& model,
                                                              int64_t version,
                                                              std::string_view to) {
  absl::StatusOr<ModelVersionRecord> v = store_->GetModelVersion(model, version);
  for (std::string_view next : PathFromInitial(ModelVersionKind(), to)) {
    if (!v.ok()) break;
    v = store_->TransitionModelVersion({.model = model,
                                        .version = version,
                                        .from = v->state,
                                        .to = next,
                                        .expected_revision = v->revision,
                                        .reason = "setting up",
                                        .actor = "test"});
  }
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : ModelVersionRecord{};
}

EndpointRecord StateStoreConformance::MakeEndpoint(const std::string& name,
                                                   const std::string& config_json) {
  absl::StatusOr<EndpointRecord> e =
      store_->CreateEndpoint({.name = name, .config_json = config_json, .actor = "test"});
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *e : EndpointRecord{};
}

EndpointRecord StateStoreConformance::BringEndpointTo(const std::string& name,
                                                      std::string_view to) {
  absl::StatusOr<EndpointRecord> e = store_->GetEndpoint(name);
  std::vector<std::string_view> path = PathFromInitial(EndpointKind(), to);
  if (e.ok()) {
    // From where it is, when that is on the path.
    auto here = std::find(path.begin(), path.end(), e->state);
    if (here != path.end()) path.erase(path.begin(), here + 1);
  }
  for (std::string_view next : path) {
    if (!e.ok()) break;
    e = store_->TransitionEndpoint({.name = name,
                                    .from = e->state,
                                    .to = next,
                                    .expected_version = e->version,
                                    .reason = "setting up",
                                    .actor = "test"});
  }
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *e : EndpointRecord{};
}

DeploymentRecord StateStoreConformance::MakeDeployment(const std::string& id,
                                                       const std::string& endpoint,
                                                       const std::string& idempotency_key) {
  absl::StatusOr<DeploymentRecord> d =
      store_->CreateDeployment({.id = id,
                                .endpoint = endpoint,
                                .strategy = "canary",
                                .spec_json = R"({"model": "churn", "version": 8, "weight": 10})",
                                .from_config_json = "{}",
                                .idempotency_key = idempotency_key,
                                .actor = "test"});
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : DeploymentRecord{};
}

DeploymentRecord StateStoreConformance::BringDeploymentTo(const std::string& id,
                                                          std::string_view to) {
  absl::StatusOr<DeploymentRecord> d = store_->GetDeployment(id);
  std::vector<std::string_view> path = PathFromInitial(DeploymentKind(), to);
  if (d.ok()) {
    // From where it is, when that is on the path.
    auto here = std::find(path.begin(), path.end(), d->state);
    if (here != path.end()) path.erase(path.begin(), here + 1);
  }
  for (std::string_view next : path) {
    if (!d.ok()) break;
    d = store_->TransitionDeployment({.id = id,
                                      .from = d->state,
                                      .to = next,
                                      .expected_version = d->version,
                                      .reason = "setting up",
                                      .actor = "test"});
  }
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : DeploymentRecord{};
}

JobRecord StateStoreConformance::MakeJob(const std::string& id, const KindTable& kind,
                                         const std::string& subject,
                                         const std::string& idempotency_key) {
  absl::StatusOr<JobRecord> j = store_->CreateJob({.id = id,
                                                   .kind = std::string(kind.name),
                                                   .subject = subject,
                                                   .spec_json = R"({"input": "in/*.csv"})",
                                                   .idempotency_key = idempotency_key,
                                                   .actor = "test"});
  EXPECT_TRUE(j.ok()) << j.status();
  return j.ok() ? *j : JobRecord{};
}

JobRecord StateStoreConformance::BringJobTo(const std::string& id, const KindTable& kind,
                                            std::string_view to) {
  absl::StatusOr<JobRecord> j = store_->GetJob(id);
  std::vector<std::string_view> path = PathFromInitial(kind, to);
  if (j.ok()) {
    auto here = std::find(path.begin(), path.end(), j->state);
    if (here != path.end()) path.erase(path.begin(), here + 1);
  }
  for (std::string_view next : path) {
    if (!j.ok()) break;
    j = store_->TransitionJob({.id = id,
                               .from = j->state,
                               .to = next,
                               .expected_version = j->version,
                               .reason = "setting up",
                               .actor = "test"});
  }
  EXPECT_TRUE(j.ok()) << j.status();
  return j.ok() ? *j : JobRecord{};
}

namespace {

std::string TaskResource(const std::string& run_id, const std::string& task) {
  return run_id + "/" + task;
}

TaskTransition Move(const TaskRunRecord& t, std::string_view to) {
  return {.run_id = t.run_id,
          .task = t.task,
          .from = t.state,
          .to = to,
          .expected_version = t.version,
          .reason = "test"};
}

// Run in a forked child: opens its own store, waits until the parent closes `go_fd`, races the
// transition and reports through its exit code.
constexpr int kChildWon = 0;
constexpr int kChildLost = 1;
constexpr int kChildOtherError = 2;
constexpr int kChildOpenFailed = 3;

// Run in forked children: each opens its own store, waits until the parent closes the go pipe,
// runs `act(store, i)` and reports through its exit code (kChild*). Fills `codes` (exit code ->
// children); fails the test if they do not all finish within a minute.
void RaceInChildren(const std::string& uri, int children,
                    const std::function<absl::Status(StateStore&, int)>& act,
                    std::map<int, int>& codes) {
  constexpr int kDeadlineMs = 60'000;
  int go[2];
  int done[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(done), 0);
  std::vector<pid_t> pids;
  for (int i = 0; i < children; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      ::close(done[0]);
      absl::StatusOr<std::unique_ptr<StateStore>> store = OpenStateStore(uri);
      if (!store.ok()) ::_exit(kChildOpenFailed);
      char byte;
      while (::read(go[0], &byte, 1) < 0 && errno == EINTR) {
      }
      const absl::Status status = act(**store, i);
      ::_exit(status.ok()                          ? kChildWon
              : absl::IsFailedPrecondition(status) ? kChildLost
                                                   : kChildOtherError);
    }
    ASSERT_GT(pid, 0) << "fork failed";
    pids.push_back(pid);
  }
  ::close(go[0]);
  ::close(done[1]);
  ::close(go[1]);  // start: every child reads end-of-file

  bool all_exited = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDeadlineMs);
  while (!all_exited) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{.fd = done[0], .events = POLLIN, .revents = 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char byte;
    all_exited = ::read(done[0], &byte, 1) == 0;
  }
  ::close(done[0]);
  if (!all_exited) {
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) ++codes[WEXITSTATUS(status)];
  }
  ASSERT_TRUE(all_exited) << "children did not finish within " << kDeadlineMs << " ms";
}

TEST_P(StateStoreConformance, CreateGetAndListRuns) {
  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord created,
                             store_->CreateRun({.id = "r1",
                                                .pipeline = "p",
                                                .pipeline_file = "/proj/p.yaml",
                                                .idempotency_key = "k1",
                                                .params_json = R"({"lr":0.1})",
                                                .spec_json = R"({"tasks":[]})",
                                                .tasks = {"train", "fetch", "eval"},
                                                .actor = "me"}));
  EXPECT_EQ(created.id, "r1");
  EXPECT_EQ(created.pipeline, "p");
  EXPECT_EQ(created.pipeline_file, "/proj/p.yaml");
  EXPECT_EQ(created.idempotency_key, "k1");
  EXPECT_EQ(created.params_json, R"({"lr":0.1})");
  EXPECT_EQ(created.spec_json, R"({"tasks":[]})");
  EXPECT_EQ(created.state, run_state::kQueued);
  EXPECT_EQ(created.version, 1);
  EXPECT_EQ(created.owner_pid, 0);
  EXPECT_EQ(created.owner_host, "");
  EXPECT_NE(created.created_at, absl::InfinitePast());
  EXPECT_EQ(created.started_at, absl::InfinitePast());
  EXPECT_EQ(created.finished_at, absl::InfinitePast());
  EXPECT_EQ(created.message, "");

  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord got, store_->GetRun("r1"));
  EXPECT_EQ(got.id, created.id);
  EXPECT_EQ(got.pipeline_file, created.pipeline_file);
  EXPECT_EQ(got.params_json, created.params_json);
  EXPECT_EQ(got.spec_json, created.spec_json);
  EXPECT_EQ(got.state, created.state);
  EXPECT_EQ(got.version, created.version);
  EXPECT_EQ(got.created_at, created.created_at);

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> tasks, store_->GetTasks("r1"));
  ASSERT_EQ(tasks.size(), 3u);
  const std::vector<std::string> want = {"train", "fetch", "eval"};  // creation order, not sorted
  for (size_t i = 0; i < tasks.size(); ++i) {
    EXPECT_EQ(tasks[i].run_id, "r1");
    EXPECT_EQ(tasks[i].task, want[i]);
    EXPECT_EQ(tasks[i].state, task_state::kPending);
    EXPECT_EQ(tasks[i].version, 1);
    EXPECT_EQ(tasks[i].attempts, 0);
    EXPECT_EQ(tasks[i].pid, 0);
    EXPECT_EQ(tasks[i].queued_at, absl::InfinitePast());
    EXPECT_EQ(tasks[i].finished_at, absl::InfinitePast());
  }

  MakeRun("r2", {}, "", "q");
  MakeRun("r3", {"only"}, "", "p");
  auto ids = [](const std::vector<PipelineRunRecord>& runs) {
    std::vector<std::string> out;
    for (const auto& r : runs) out.push_back(r.id);
    return out;
  };
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<PipelineRunRecord> all, store_->ListRuns("", 0));
  EXPECT_EQ(ids(all), (std::vector<std::string>{"r3", "r2", "r1"}));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<PipelineRunRecord> of_p, store_->ListRuns("p", 0));
  EXPECT_EQ(ids(of_p), (std::vector<std::string>{"r3", "r1"}));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<PipelineRunRecord> two, store_->ListRuns("", 2));
  EXPECT_EQ(ids(two), (std::vector<std::string>{"r3", "r2"}));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<PipelineRunRecord> none, store_->ListRuns("nope", 0));
  EXPECT_TRUE(none.empty());

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> no_tasks, store_->GetTasks("r2"));
  EXPECT_TRUE(no_tasks.empty());

  // Creation is recorded: one event for the run, one per task.
  std::vector<EventRecord> run_events = Events("r1");
  ASSERT_EQ(run_events.size(), 1u);
  EXPECT_EQ(run_events[0].kind, "PipelineRun");
  EXPECT_EQ(run_events[0].from, "");
  EXPECT_EQ(run_events[0].to, run_state::kQueued);
  EXPECT_EQ(run_events[0].version, 1);
  EXPECT_EQ(run_events[0].actor, "me");
  std::vector<EventRecord> task_events = Events("r1/fetch");
  ASSERT_EQ(task_events.size(), 1u);
  EXPECT_EQ(task_events[0].kind, "TaskRun");
  EXPECT_EQ(task_events[0].to, task_state::kPending);
  EXPECT_EQ(task_events[0].version, 1);
}

TEST_P(StateStoreConformance, MissingRowsAreNotFound) {
  EXPECT_TRUE(absl::IsNotFound(store_->GetRun("nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetTasks("nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetAttempts("nope", "a").status()));
  EXPECT_TRUE(absl::IsNotFound(store_
                                   ->TransitionRun({.id = "nope",
                                                    .from = run_state::kQueued,
                                                    .to = run_state::kRunning,
                                                    .expected_version = 1})
                                   .status()));
  MakeRun("r", {"a"});
  EXPECT_TRUE(absl::IsNotFound(store_->GetAttempts("r", "zz").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->SetAttemptPid("r", "zz", 7)));
  EXPECT_TRUE(absl::IsNotFound(store_
                                   ->TransitionTasks({{.run_id = "r",
                                                       .task = "zz",
                                                       .from = task_state::kPending,
                                                       .to = task_state::kQueued,
                                                       .expected_version = 1}},
                                                     "test")
                                   .status()));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->GetAttempts("r", "a"));
  EXPECT_TRUE(attempts.empty());
}

TEST_P(StateStoreConformance, DuplicateRunIdIsAlreadyExistsAndChangesNothing) {
  MakeRun("r", {"a"});
  absl::StatusOr<PipelineRunRecord> again =
      store_->CreateRun({.id = "r", .pipeline = "other", .tasks = {"a", "b"}});
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord run, store_->GetRun("r"));
  EXPECT_EQ(run.pipeline, "p");
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> tasks, store_->GetTasks("r"));
  EXPECT_EQ(tasks.size(), 1u);
  EXPECT_EQ(Events("").size(), 2u);  // the first creation's run and task events only
}

TEST_P(StateStoreConformance, BadNewRunIsInvalidArgument) {
  EXPECT_TRUE(absl::IsInvalidArgument(store_->CreateRun({.id = "", .pipeline = "p"}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->CreateRun({.id = "r", .pipeline = "p", .tasks = {"a", "a"}}).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetRun("r").status()));
}

TEST_P(StateStoreConformance, EveryLegalRunEdge) {
  const KindTable& kind = PipelineRunKind();
  for (size_t i = 0; i < kind.edges.size(); ++i) {
    const Edge& edge = kind.edges[i];
    SCOPED_TRACE(testing::Message() << edge.from << " -> " << edge.to);
    const std::string id = "edge" + std::to_string(i);
    MakeRun(id);
    PipelineRunRecord before = BringRunTo(id, edge.from);
    ASSERT_EQ(before.state, edge.from);
    const size_t events_before = Events(id).size();

    FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord after,
                               store_->TransitionRun({.id = id,
                                                      .from = edge.from,
                                                      .to = edge.to,
                                                      .expected_version = before.version,
                                                      .reason = std::string(edge.why),
                                                      .actor = "walker"}));
    EXPECT_EQ(after.state, edge.to);
    EXPECT_EQ(after.version, before.version + 1);
    FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord stored, store_->GetRun(id));
    EXPECT_EQ(stored.state, edge.to);
    EXPECT_EQ(stored.version, before.version + 1);

    std::vector<EventRecord> events = Events(id);
    ASSERT_EQ(events.size(), events_before + 1);
    const EventRecord& e = events.back();
    EXPECT_EQ(e.kind, "PipelineRun");
    EXPECT_EQ(e.resource, id);
    EXPECT_EQ(e.from, edge.from);
    EXPECT_EQ(e.to, edge.to);
    EXPECT_EQ(e.version, after.version);
    EXPECT_EQ(e.actor, "walker");
    EXPECT_EQ(e.reason, edge.why);
    EXPECT_NE(e.at, absl::InfinitePast());
  }
}

TEST_P(StateStoreConformance, EveryLegalTaskEdge) {
  const KindTable& kind = TaskRunKind();
  std::vector<std::string> tasks;
  for (size_t i = 0; i < kind.edges.size(); ++i) tasks.push_back("edge" + std::to_string(i));
  MakeRun("r", tasks);
  for (size_t i = 0; i < kind.edges.size(); ++i) {
    const Edge& edge = kind.edges[i];
    SCOPED_TRACE(testing::Message() << edge.from << " -> " << edge.to);
    TaskRunRecord before = BringTaskTo("r", tasks[i], edge.from);
    ASSERT_EQ(before.state, edge.from);
    const std::string resource = TaskResource("r", tasks[i]);
    const size_t events_before = Events(resource).size();

    TaskTransition t = Move(before, edge.to);
    t.reason = std::string(edge.why);
    FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> moved,
                               store_->TransitionTasks({t}, "walker"));
    ASSERT_EQ(moved.size(), 1u);
    EXPECT_EQ(moved[0].state, edge.to);
    EXPECT_EQ(moved[0].version, before.version + 1);
    TaskRunRecord stored = GetTask("r", tasks[i]);
    EXPECT_EQ(stored.state, edge.to);
    EXPECT_EQ(stored.version, before.version + 1);

    std::vector<EventRecord> events = Events(resource);
    ASSERT_EQ(events.size(), events_before + 1);
    const EventRecord& e = events.back();
    EXPECT_EQ(e.kind, "TaskRun");
    EXPECT_EQ(e.resource, resource);
    EXPECT_EQ(e.from, edge.from);
    EXPECT_EQ(e.to, edge.to);
    EXPECT_EQ(e.version, stored.version);
    EXPECT_EQ(e.actor, "walker");
    EXPECT_EQ(e.reason, edge.why);

    // Attempts follow the running state: entering opens one, leaving closes it.
    FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts,
                               store_->GetAttempts("r", tasks[i]));
    EXPECT_EQ(static_cast<int>(attempts.size()), stored.attempts);
    if (edge.to == task_state::kRunning) {
      EXPECT_EQ(stored.attempts, before.attempts + 1);
      ASSERT_FALSE(attempts.empty());
      EXPECT_EQ(attempts.back().finished_at, absl::InfinitePast());
    } else {
      EXPECT_EQ(stored.attempts, before.attempts);
    }
    if (edge.from == task_state::kRunning) {
      ASSERT_FALSE(attempts.empty());
      EXPECT_NE(attempts.back().finished_at, absl::InfinitePast());
      EXPECT_EQ(attempts.back().outcome, edge.to);
      EXPECT_EQ(stored.pid, 0);
    }
  }
}

TEST_P(StateStoreConformance, EveryIllegalRunPairIsInvalidArgumentAndChangesNothing) {
  const KindTable& kind = PipelineRunKind();
  std::vector<std::string_view> targets = kind.states;
  targets.push_back("bogus");
  int checked = 0;
  for (std::string_view from : kind.states) {
    const std::string id = "from-" + std::string(from);
    MakeRun(id);
    const PipelineRunRecord before = BringRunTo(id, from);
    ASSERT_EQ(before.state, from);
    const size_t events_before = Events("").size();
    for (std::string_view to : targets) {
      if (IsLegal(kind, from, to)) continue;
      SCOPED_TRACE(testing::Message() << from << " -> " << to);
      absl::StatusOr<PipelineRunRecord> r = store_->TransitionRun(
          {.id = id, .from = from, .to = to, .expected_version = before.version});
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
      ++checked;
    }
    FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord after, store_->GetRun(id));
    EXPECT_EQ(after.state, before.state);
    EXPECT_EQ(after.version, before.version);
    EXPECT_EQ(after.finished_at, before.finished_at);
    EXPECT_EQ(Events("").size(), events_before);
  }
  // An unknown `from` is illegal too.
  absl::StatusOr<PipelineRunRecord> r = store_->TransitionRun(
      {.id = "from-queued", .from = "bogus", .to = run_state::kRunning, .expected_version = 1});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  const size_t n = kind.states.size();
  EXPECT_EQ(checked, static_cast<int>(n * (n + 1) - kind.edges.size()));
}

TEST_P(StateStoreConformance, EveryIllegalTaskPairIsInvalidArgumentAndChangesNothing) {
  const KindTable& kind = TaskRunKind();
  std::vector<std::string_view> targets = kind.states;
  targets.push_back("bogus");
  MakeRun("r", std::vector<std::string>(kind.states.begin(), kind.states.end()));
  int checked = 0;
  for (std::string_view from : kind.states) {
    const std::string task(from);
    const TaskRunRecord before = BringTaskTo("r", task, from);
    ASSERT_EQ(before.state, from);
    const size_t events_before = Events("").size();
    for (std::string_view to : targets) {
      if (IsLegal(kind, from, to)) continue;
      SCOPED_TRACE(testing::Message() << from << " -> " << to);
      absl::StatusOr<std::vector<TaskRunRecord>> r =
          store_->TransitionTasks({Move(before, to)}, "test");
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
      ++checked;
    }
    const TaskRunRecord after = GetTask("r", task);
    EXPECT_EQ(after.state, before.state);
    EXPECT_EQ(after.version, before.version);
    EXPECT_EQ(after.attempts, before.attempts);
    EXPECT_EQ(Events("").size(), events_before);
  }
  const size_t n = kind.states.size();
  EXPECT_EQ(checked, static_cast<int>(n * (n + 1) - kind.edges.size()));
}

TEST_P(StateStoreConformance, StaleRunVersionIsFailedPreconditionAndChangesNothing) {
  MakeRun("r");
  const PipelineRunRecord running = BringRunTo("r", run_state::kRunning);
  ASSERT_EQ(running.version, 2);
  const size_t events_before = Events("r").size();

  // Someone else already took queued -> running.
  absl::StatusOr<PipelineRunRecord> stale = store_->TransitionRun(
      {.id = "r", .from = run_state::kQueued, .to = run_state::kRunning, .expected_version = 1});
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  // The right state at the wrong version.
  absl::StatusOr<PipelineRunRecord> wrong_version = store_->TransitionRun(
      {.id = "r", .from = run_state::kRunning, .to = run_state::kFailed, .expected_version = 1});
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong_version.status())) << wrong_version.status();

  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord after, store_->GetRun("r"));
  EXPECT_EQ(after.state, run_state::kRunning);
  EXPECT_EQ(after.version, 2);
  EXPECT_EQ(after.finished_at, absl::InfinitePast());
  EXPECT_EQ(Events("r").size(), events_before);
}

TEST_P(StateStoreConformance, StaleTaskVersionIsFailedPreconditionAndChangesNothing) {
  MakeRun("r", {"a"});
  const TaskRunRecord queued = BringTaskTo("r", "a", task_state::kQueued);
  const size_t events_before = Events("").size();

  TaskTransition stale = Move(queued, task_state::kRunning);
  stale.expected_version = 1;
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->TransitionTasks({stale}, "test").status()));
  TaskTransition wrong_state = Move(queued, task_state::kQueued);
  wrong_state.from = task_state::kPending;
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->TransitionTasks({wrong_state}, "test").status()));

  const TaskRunRecord after = GetTask("r", "a");
  EXPECT_EQ(after.state, task_state::kQueued);
  EXPECT_EQ(after.version, queued.version);
  EXPECT_EQ(after.attempts, 0);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->GetAttempts("r", "a"));
  EXPECT_TRUE(attempts.empty());
  EXPECT_EQ(Events("").size(), events_before);
}

TEST_P(StateStoreConformance, RunTransitionWritesFieldsAndTimes) {
  MakeRun("r");
  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord running,
                             store_->TransitionRun({.id = "r",
                                                    .from = run_state::kQueued,
                                                    .to = run_state::kRunning,
                                                    .expected_version = 1,
                                                    .owner_pid = 123,
                                                    .owner_host = "host-a"}));
  EXPECT_EQ(running.owner_pid, 123);
  EXPECT_EQ(running.owner_host, "host-a");
  EXPECT_NE(running.started_at, absl::InfinitePast());
  EXPECT_EQ(running.finished_at, absl::InfinitePast());

  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord failed,
                             store_->TransitionRun({.id = "r",
                                                    .from = run_state::kRunning,
                                                    .to = run_state::kFailed,
                                                    .expected_version = 2,
                                                    .message = "task train failed"}));
  EXPECT_EQ(failed.message, "task train failed");
  EXPECT_EQ(failed.owner_pid, 123);  // unset fields keep their value
  EXPECT_EQ(failed.owner_host, "host-a");
  EXPECT_EQ(failed.started_at, running.started_at);
  EXPECT_NE(failed.finished_at, absl::InfinitePast());

  // Resume: started_at stays the first start; the run is no longer finished.
  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord resumed,
                             store_->TransitionRun({.id = "r",
                                                    .from = run_state::kFailed,
                                                    .to = run_state::kRunning,
                                                    .expected_version = 3,
                                                    .owner_pid = 456,
                                                    .message = ""}));
  EXPECT_EQ(resumed.owner_pid, 456);
  EXPECT_EQ(resumed.message, "");
  EXPECT_EQ(resumed.started_at, running.started_at);
  EXPECT_EQ(resumed.finished_at, absl::InfinitePast());

  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord stored, store_->GetRun("r"));
  EXPECT_EQ(stored.owner_pid, 456);
  EXPECT_EQ(stored.owner_host, "host-a");
  EXPECT_EQ(stored.started_at, running.started_at);
  EXPECT_EQ(stored.version, 4);
}

TEST_P(StateStoreConformance, TaskBatchIsAllOrNothing) {
  MakeRun("r", {"a", "b", "c"});
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> initial, store_->GetTasks("r"));
  const TaskRunRecord& a = initial[0];
  const TaskRunRecord& b = initial[1];
  const TaskRunRecord& c = initial[2];
  const size_t events_before = Events("").size();
  auto expect_unchanged = [&] {
    FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> now, store_->GetTasks("r"));
    for (const TaskRunRecord& t : now) {
      EXPECT_EQ(t.state, task_state::kPending) << t.task;
      EXPECT_EQ(t.version, 1) << t.task;
      EXPECT_EQ(t.queued_at, absl::InfinitePast()) << t.task;
    }
    EXPECT_EQ(Events("").size(), events_before);
  };

  TaskTransition stale = Move(c, task_state::kQueued);
  stale.expected_version = 9;
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_
          ->TransitionTasks({Move(a, task_state::kQueued), Move(b, task_state::kQueued), stale},
                            "test")
          .status()));
  expect_unchanged();

  EXPECT_TRUE(absl::IsInvalidArgument(
      store_
          ->TransitionTasks({Move(a, task_state::kQueued), Move(b, task_state::kSucceeded)}, "test")
          .status()));
  expect_unchanged();

  TaskTransition missing = Move(c, task_state::kQueued);
  missing.task = "missing";
  EXPECT_TRUE(absl::IsNotFound(
      store_->TransitionTasks({Move(a, task_state::kQueued), missing}, "test").status()));
  expect_unchanged();

  // The same task twice: the second sees the version the first wrote.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->TransitionTasks({Move(a, task_state::kQueued), Move(a, task_state::kQueued)}, "test")
          .status()));
  expect_unchanged();

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> empty, store_->TransitionTasks({}, "test"));
  EXPECT_TRUE(empty.empty());

  // An attempt opened by a batch that fails later is rolled back with it.
  const TaskRunRecord queued_a = BringTaskTo("r", "a", task_state::kQueued);
  const size_t events_mid = Events("").size();
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->TransitionTasks({Move(queued_a, task_state::kRunning), stale}, "test").status()));
  const TaskRunRecord a_after = GetTask("r", "a");
  EXPECT_EQ(a_after.state, task_state::kQueued);
  EXPECT_EQ(a_after.version, queued_a.version);
  EXPECT_EQ(a_after.attempts, 0);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->GetAttempts("r", "a"));
  EXPECT_TRUE(attempts.empty());
  EXPECT_EQ(Events("").size(), events_mid);
}

TEST_P(StateStoreConformance, TaskBatchReturnsRowsInTheOrderGiven) {
  MakeRun("r", {"a", "b", "c"});
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> initial, store_->GetTasks("r"));
  const size_t events_before = Events("").size();
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> moved,
                             store_->TransitionTasks({Move(initial[2], task_state::kQueued),
                                                      Move(initial[0], task_state::kSkipped),
                                                      Move(initial[1], task_state::kCached)},
                                                     "scheduler"));
  ASSERT_EQ(moved.size(), 3u);
  EXPECT_EQ(moved[0].task, "c");
  EXPECT_EQ(moved[0].state, task_state::kQueued);
  EXPECT_NE(moved[0].queued_at, absl::InfinitePast());
  EXPECT_EQ(moved[1].task, "a");
  EXPECT_EQ(moved[1].state, task_state::kSkipped);
  EXPECT_NE(moved[1].finished_at, absl::InfinitePast());
  EXPECT_EQ(moved[2].task, "b");
  EXPECT_EQ(moved[2].state, task_state::kCached);
  for (const TaskRunRecord& t : moved) EXPECT_EQ(t.version, 2);
  EXPECT_EQ(Events("").size(), events_before + 3);
  // GetTasks keeps creation order whatever the order of updates.
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> stored, store_->GetTasks("r"));
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].task, "a");
  EXPECT_EQ(stored[1].task, "b");
  EXPECT_EQ(stored[2].task, "c");
}

TEST_P(StateStoreConformance, OneBatchCanMoveATaskTwiceAndIndexItsCheckpoint) {
  MakeRun("r", {"a", "b"});
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> initial, store_->GetTasks("r"));
  const TaskRunRecord running_a = BringTaskTo("r", "a", task_state::kRunning);
  TaskTransition done = Move(running_a, task_state::kSucceeded);
  done.output_uri = "runs/p/r/a";
  done.output_hash = "h1";
  done.checkpoint = CheckpointRecord{.cache_key = "key-a",
                                     .pipeline = "p",
                                     .run_id = "r",
                                     .task = "a",
                                     .output_uri = "runs/p/r/a",
                                     .output_hash = "h1"};
  // b: pending -> queued -> running in the same transaction, the second move at version + 1.
  TaskTransition queue_b = Move(initial[1], task_state::kQueued);
  TaskTransition run_b = Move(initial[1], task_state::kRunning);
  run_b.from = task_state::kQueued;
  run_b.expected_version = initial[1].version + 1;
  run_b.log_uri = "runs/p/r/b/logs/1.log";
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> moved,
                             store_->TransitionTasks({done, queue_b, run_b}, "scheduler"));
  ASSERT_EQ(moved.size(), 3u);
  EXPECT_EQ(moved[0].state, task_state::kSucceeded);
  EXPECT_EQ(moved[1].state, task_state::kQueued);
  EXPECT_EQ(moved[2].state, task_state::kRunning);
  EXPECT_EQ(moved[2].version, initial[1].version + 2);
  EXPECT_EQ(moved[2].attempts, 1);
  FERRY_ASSERT_OK_AND_ASSIGN(CheckpointRecord ck, store_->GetCheckpoint("key-a"));
  EXPECT_EQ(ck.output_uri, "runs/p/r/a");
  EXPECT_EQ(ck.output_hash, "h1");

  // A checkpoint in a failing batch is rolled back with it.
  const TaskRunRecord b_now = GetTask("r", "b");
  TaskTransition ok = Move(b_now, task_state::kSucceeded);
  ok.checkpoint = CheckpointRecord{.cache_key = "key-b", .output_uri = "x", .output_hash = "h2"};
  TaskTransition stale = Move(b_now, task_state::kFailed);
  stale.expected_version = 99;
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->TransitionTasks({ok, stale}, "t").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetCheckpoint("key-b").status()));
  EXPECT_EQ(GetTask("r", "b").state, task_state::kRunning);
}

TEST_P(StateStoreConformance, AttemptsOpenAndClose) {
  MakeRun("r", {"a"});
  TaskRunRecord t = BringTaskTo("r", "a", task_state::kQueued);
  EXPECT_NE(t.queued_at, absl::InfinitePast());

  TaskTransition start = Move(t, task_state::kRunning);
  start.log_uri = "file:///logs/a.1.log";
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> moved,
                             store_->TransitionTasks({start}, "test"));
  t = moved[0];
  EXPECT_EQ(t.attempts, 1);
  EXPECT_NE(t.started_at, absl::InfinitePast());
  EXPECT_EQ(t.finished_at, absl::InfinitePast());
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->GetAttempts("r", "a"));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].run_id, "r");
  EXPECT_EQ(attempts[0].task, "a");
  EXPECT_EQ(attempts[0].attempt, 1);
  EXPECT_EQ(attempts[0].pid, 0);
  EXPECT_EQ(attempts[0].log_uri, "file:///logs/a.1.log");
  EXPECT_EQ(attempts[0].started_at, t.started_at);
  EXPECT_EQ(attempts[0].finished_at, absl::InfinitePast());
  EXPECT_EQ(attempts[0].outcome, "");

  FERRY_ASSERT_OK(store_->SetAttemptPid("r", "a", 4242));
  t = GetTask("r", "a");
  EXPECT_EQ(t.pid, 4242);
  EXPECT_EQ(t.version, moved[0].version);  // recording the pid is not a transition

  const absl::Time retry_at = absl::FromUnixMicros(1'900'000'000'000'000);
  TaskTransition retry = Move(t, task_state::kRetrying);
  retry.exit_code = 3;
  retry.retry_at = retry_at;
  retry.message = "exit 3";
  FERRY_ASSERT_OK_AND_ASSIGN(moved, store_->TransitionTasks({retry}, "test"));
  t = moved[0];
  EXPECT_EQ(t.pid, 0);
  EXPECT_EQ(t.exit_code, 3);
  EXPECT_EQ(t.retry_at, retry_at);
  EXPECT_EQ(t.message, "exit 3");
  FERRY_ASSERT_OK_AND_ASSIGN(attempts, store_->GetAttempts("r", "a"));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].pid, 4242);
  EXPECT_EQ(attempts[0].outcome, task_state::kRetrying);
  EXPECT_EQ(attempts[0].exit_code, 3);
  EXPECT_NE(attempts[0].finished_at, absl::InfinitePast());

  t = BringTaskTo("r", "a", task_state::kQueued);  // retrying -> queued
  FERRY_ASSERT_OK_AND_ASSIGN(moved, store_->TransitionTasks({Move(t, task_state::kRunning)}, "x"));
  t = moved[0];
  EXPECT_EQ(t.attempts, 2);
  TaskTransition done = Move(t, task_state::kSucceeded);
  done.exit_code = 0;
  done.cache_key = "ck";
  done.output_uri = "file:///out/a";
  done.output_hash = "sha256:00";
  FERRY_ASSERT_OK_AND_ASSIGN(moved, store_->TransitionTasks({done}, "test"));
  t = moved[0];
  EXPECT_EQ(t.state, task_state::kSucceeded);
  EXPECT_EQ(t.exit_code, 0);
  EXPECT_EQ(t.cache_key, "ck");
  EXPECT_EQ(t.output_uri, "file:///out/a");
  EXPECT_EQ(t.output_hash, "sha256:00");
  EXPECT_EQ(t.message, "exit 3");  // not given, so kept
  EXPECT_NE(t.finished_at, absl::InfinitePast());
  FERRY_ASSERT_OK_AND_ASSIGN(attempts, store_->GetAttempts("r", "a"));
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[1].attempt, 2);
  EXPECT_EQ(attempts[1].outcome, task_state::kSucceeded);
  EXPECT_EQ(attempts[1].exit_code, 0);
  EXPECT_EQ(attempts[1].log_uri, "");
  EXPECT_NE(attempts[1].finished_at, absl::InfinitePast());
}

TEST_P(StateStoreConformance, SetAttemptPidNeedsALiveAttempt) {
  MakeRun("r", {"a"});
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->SetAttemptPid("r", "a", 1)));
  TaskRunRecord t = BringTaskTo("r", "a", task_state::kRunning);
  FERRY_ASSERT_OK(store_->SetAttemptPid("r", "a", 77));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> moved,
                             store_->TransitionTasks({Move(t, task_state::kFailed)}, "test"));
  EXPECT_EQ(moved[0].pid, 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->SetAttemptPid("r", "a", 78)));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->GetAttempts("r", "a"));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].pid, 77);
}

TEST_P(StateStoreConformance, OneLiveAttemptPerTaskAcrossConnections) {
  std::unique_ptr<StateStore> other = Connect();
  ASSERT_NE(other, nullptr);
  MakeRun("r", {"a"});
  const TaskRunRecord queued = BringTaskTo("r", "a", task_state::kQueued);

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<TaskRunRecord> seen, other->GetTasks("r"));
  ASSERT_EQ(seen[0].version, queued.version);  // the other connection sees the write
  FERRY_ASSERT_OK(store_->TransitionTasks({Move(queued, task_state::kRunning)}, "one").status());
  absl::Status second =
      other->TransitionTasks({Move(seen[0], task_state::kRunning)}, "two").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, other->GetAttempts("r", "a"));
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].finished_at, absl::InfinitePast());

  // A retry from the other connection closes attempt 1 and opens attempt 2: still one live.
  FERRY_ASSERT_OK_AND_ASSIGN(seen, other->GetTasks("r"));
  FERRY_ASSERT_OK_AND_ASSIGN(seen,
                             other->TransitionTasks({Move(seen[0], task_state::kRetrying)}, "two"));
  FERRY_ASSERT_OK_AND_ASSIGN(seen,
                             other->TransitionTasks({Move(seen[0], task_state::kQueued)}, "two"));
  FERRY_ASSERT_OK_AND_ASSIGN(seen,
                             other->TransitionTasks({Move(seen[0], task_state::kRunning)}, "two"));
  FERRY_ASSERT_OK_AND_ASSIGN(attempts, store_->GetAttempts("r", "a"));
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_NE(attempts[0].finished_at, absl::InfinitePast());
  EXPECT_EQ(attempts[1].attempt, 2);
  EXPECT_EQ(attempts[1].finished_at, absl::InfinitePast());
}

TEST_P(StateStoreConformance, IdempotencyKeyConflictsOnlyWhileTheRunIsLive) {
  const KindTable& kind = PipelineRunKind();
  for (std::string_view state : kind.states) {
    SCOPED_TRACE(state);
    const std::string first = "first-" + std::string(state);
    const std::string second = "second-" + std::string(state);
    const std::string key = "key-" + std::string(state);
    MakeRun(first, {}, key);
    BringRunTo(first, state);
    absl::StatusOr<PipelineRunRecord> r =
        store_->CreateRun({.id = second, .pipeline = "p", .idempotency_key = key});
    if (IsTerminal(kind, state)) {
      EXPECT_TRUE(r.ok()) << r.status();
    } else {
      EXPECT_TRUE(absl::IsAlreadyExists(r.status())) << r.status();
      EXPECT_NE(r.status().message().find(first), std::string::npos) << r.status();
      EXPECT_TRUE(absl::IsNotFound(store_->GetRun(second).status()));
      // The same key on another pipeline is another key.
      EXPECT_TRUE(
          store_->CreateRun({.id = second + "-q", .pipeline = "q", .idempotency_key = key}).ok());
    }
  }
  // No key, no conflict.
  MakeRun("nokey-1");
  MakeRun("nokey-2");
}

TEST_P(StateStoreConformance, ResumeIsRefusedWhileAnotherRunHoldsTheKey) {
  MakeRun("r1", {}, "k");
  const PipelineRunRecord failed = BringRunTo("r1", run_state::kFailed);
  MakeRun("r2", {}, "k");  // allowed: r1 is no longer live
  const size_t events_before = Events("").size();

  absl::StatusOr<PipelineRunRecord> resume =
      store_->TransitionRun({.id = "r1",
                             .from = run_state::kFailed,
                             .to = run_state::kRunning,
                             .expected_version = failed.version});
  EXPECT_TRUE(absl::IsFailedPrecondition(resume.status())) << resume.status();
  EXPECT_NE(resume.status().message().find("r2"), std::string::npos) << resume.status();
  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord r1, store_->GetRun("r1"));
  EXPECT_EQ(r1.state, run_state::kFailed);
  EXPECT_EQ(r1.version, failed.version);
  EXPECT_EQ(Events("").size(), events_before);

  BringRunTo("r2", run_state::kSucceeded);
  FERRY_ASSERT_OK(store_
                      ->TransitionRun({.id = "r1",
                                       .from = run_state::kFailed,
                                       .to = run_state::kRunning,
                                       .expected_version = failed.version})
                      .status());
}

TEST_P(StateStoreConformance, EventsAreOrdered) {
  MakeRun("r", {"a"});
  PipelineRunRecord run = BringRunTo("r", run_state::kRunning);
  TaskRunRecord a = BringTaskTo("r", "a", task_state::kRunning);
  FERRY_ASSERT_OK_AND_ASSIGN(run, store_->TransitionRun({.id = "r",
                                                         .from = run.state,
                                                         .to = run_state::kCancelling,
                                                         .expected_version = run.version,
                                                         .reason = "ferry cancel",
                                                         .actor = "ferry cancel"}));
  FERRY_ASSERT_OK(store_->TransitionTasks({Move(a, task_state::kCancelled)}, "ferry run").status());
  FERRY_ASSERT_OK(store_
                      ->TransitionRun({.id = "r",
                                       .from = run.state,
                                       .to = run_state::kCancelled,
                                       .expected_version = run.version})
                      .status());

  using Step = std::tuple<std::string, std::string, std::string, int64_t>;
  auto steps = [](const std::vector<EventRecord>& events) {
    std::vector<Step> out;
    for (const EventRecord& e : events) out.emplace_back(e.resource, e.from, e.to, e.version);
    return out;
  };
  const std::vector<EventRecord> all = Events("");
  EXPECT_EQ(steps(all), (std::vector<Step>{{"r", "", "queued", 1},
                                           {"r/a", "", "pending", 1},
                                           {"r", "queued", "running", 2},
                                           {"r/a", "pending", "queued", 2},
                                           {"r/a", "queued", "running", 3},
                                           {"r", "running", "cancelling", 3},
                                           {"r/a", "running", "cancelled", 4},
                                           {"r", "cancelling", "cancelled", 4}}));
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].seq, all[i].seq);
  EXPECT_EQ(all[5].actor, "ferry cancel");
  EXPECT_EQ(all[5].reason, "ferry cancel");
  EXPECT_EQ(all[6].actor, "ferry run");

  EXPECT_EQ(steps(Events("r")), (std::vector<Step>{{"r", "", "queued", 1},
                                                   {"r", "queued", "running", 2},
                                                   {"r", "running", "cancelling", 3},
                                                   {"r", "cancelling", "cancelled", 4}}));
  EXPECT_EQ(Events("r/a").size(), 4u);
  EXPECT_TRUE(Events("nope").empty());
}

TEST_P(StateStoreConformance, Checkpoints) {
  EXPECT_TRUE(absl::IsNotFound(store_->GetCheckpoint("ck").status()));
  const CheckpointRecord c{.cache_key = "ck",
                           .pipeline = "p",
                           .run_id = "r1",
                           .task = "train",
                           .output_uri = "file:///ckpt/ck",
                           .output_hash = "sha256:aa",
                           .created_at = absl::FromUnixMicros(1'700'000'000'123'456)};
  FERRY_ASSERT_OK(store_->PutCheckpoint(c));
  FERRY_ASSERT_OK_AND_ASSIGN(CheckpointRecord got, store_->GetCheckpoint("ck"));
  EXPECT_EQ(got.cache_key, "ck");
  EXPECT_EQ(got.pipeline, "p");
  EXPECT_EQ(got.run_id, "r1");
  EXPECT_EQ(got.task, "train");
  EXPECT_EQ(got.output_uri, "file:///ckpt/ck");
  EXPECT_EQ(got.output_hash, "sha256:aa");
  EXPECT_EQ(got.created_at, c.created_at);

  CheckpointRecord newer = c;
  newer.run_id = "r2";
  newer.output_uri = "file:///ckpt/ck2";
  newer.created_at = absl::InfinitePast();  // the store stamps it
  FERRY_ASSERT_OK(store_->PutCheckpoint(newer));
  std::unique_ptr<StateStore> other = Connect();
  ASSERT_NE(other, nullptr);
  FERRY_ASSERT_OK_AND_ASSIGN(got, other->GetCheckpoint("ck"));
  EXPECT_EQ(got.run_id, "r2");
  EXPECT_EQ(got.output_uri, "file:///ckpt/ck2");
  EXPECT_NE(got.created_at, absl::InfinitePast());

  EXPECT_TRUE(absl::IsNotFound(store_->GetCheckpoint("other").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->PutCheckpoint({.cache_key = ""})));
}

TEST_P(StateStoreConformance, ThreadsRaceOneRunTransition) {
  constexpr int kThreads = 8;
  MakeRun("r");
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<absl::Status> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = stores[i]
                       ->TransitionRun({.id = "r",
                                        .from = run_state::kQueued,
                                        .to = run_state::kRunning,
                                        .expected_version = 1,
                                        .reason = "race",
                                        .actor = "thread " + std::to_string(i)})
                       .status();
    });
  }
  for (std::thread& t : threads) t.join();

  int won = 0;
  int lost = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) {
      ++won;
    } else if (absl::IsFailedPrecondition(s)) {
      ++lost;
    } else {
      ADD_FAILURE() << s;
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(lost, kThreads - 1);
  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord run, store_->GetRun("r"));
  EXPECT_EQ(run.state, run_state::kRunning);
  EXPECT_EQ(run.version, 2);
  std::vector<EventRecord> events = Events("r");
  ASSERT_EQ(events.size(), 2u);  // created, and the one winning transition
  EXPECT_EQ(events[1].to, run_state::kRunning);
}

TEST_P(StateStoreConformance, ProcessesRaceOneRunTransition) {
  constexpr int kChildren = 4;
  MakeRun("r");
  store_.reset();  // no connection is carried across fork()

  std::map<int, int> codes;  // exit code -> children
  RaceInChildren(
      uri_, kChildren,
      [](StateStore& store, int) {
        return store
            .TransitionRun({.id = "r",
                            .from = run_state::kQueued,
                            .to = run_state::kRunning,
                            .expected_version = 1,
                            .reason = "race",
                            .actor = "child"})
            .status();
      },
      codes);
  EXPECT_EQ(codes[kChildWon], 1);
  EXPECT_EQ(codes[kChildLost], kChildren - 1);
  EXPECT_EQ(codes[kChildOtherError], 0);
  EXPECT_EQ(codes[kChildOpenFailed], 0);

  store_ = Connect();
  ASSERT_NE(store_, nullptr);
  FERRY_ASSERT_OK_AND_ASSIGN(PipelineRunRecord run, store_->GetRun("r"));
  EXPECT_EQ(run.state, run_state::kRunning);
  EXPECT_EQ(run.version, 2);
  EXPECT_EQ(Events("r").size(), 2u);
}

TEST_P(StateStoreConformance, ThreadsRaceOneTaskBatch) {
  constexpr int kThreads = 8;
  MakeRun("r", {"a", "b"});
  const TaskRunRecord a = BringTaskTo("r", "a", task_state::kQueued);
  const TaskRunRecord b = BringTaskTo("r", "b", task_state::kQueued);
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<absl::Status> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      // Half the threads list the tasks in the other order.
      std::vector<TaskTransition> batch = {Move(a, task_state::kRunning),
                                           Move(b, task_state::kRunning)};
      if (i % 2 == 1) std::swap(batch[0], batch[1]);
      results[i] = stores[i]->TransitionTasks(batch, "thread " + std::to_string(i)).status();
    });
  }
  for (std::thread& t : threads) t.join();

  int won = 0;
  int lost = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) {
      ++won;
    } else if (absl::IsFailedPrecondition(s)) {
      ++lost;
    } else {
      ADD_FAILURE() << s;
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(lost, kThreads - 1);
  for (const std::string task : {"a", "b"}) {
    SCOPED_TRACE(task);
    const TaskRunRecord t = GetTask("r", task);
    EXPECT_EQ(t.state, task_state::kRunning);
    EXPECT_EQ(t.version, a.version + 1);
    EXPECT_EQ(t.attempts, 1);
    FERRY_ASSERT_OK_AND_ASSIGN(std::vector<AttemptRecord> attempts, store_->GetAttempts("r", task));
    ASSERT_EQ(attempts.size(), 1u);
    EXPECT_EQ(attempts[0].finished_at, absl::InfinitePast());
    EXPECT_EQ(Events(TaskResource("r", task)).size(), 3u);  // created, queued, running once
  }
}

// --- The model registry ---

using VersionStep = std::tuple<std::string, std::string, std::string, int64_t>;
std::vector<VersionStep> Steps(const std::vector<EventRecord>& events) {
  std::vector<VersionStep> out;
  for (const EventRecord& e : events) out.emplace_back(e.kind, e.from, e.to, e.version);
  return out;
}

TEST_P(StateStoreConformance, CreateGetAndListModels) {
  EXPECT_TRUE(absl::IsNotFound(store_->GetModel("churn").status()));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ModelRecord> models, store_->ListModels());
  EXPECT_TRUE(models.empty());

  FERRY_ASSERT_OK_AND_ASSIGN(ModelRecord churn, store_->CreateModel("churn", "who leaves"));
  EXPECT_EQ(churn.name, "churn");
  EXPECT_EQ(churn.description, "who leaves");
  EXPECT_EQ(churn.latest_version, 0);
  EXPECT_NE(churn.created_at, absl::InfinitePast());
  absl::StatusOr<ModelRecord> again = store_->CreateModel("churn", "something else");
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();
  FERRY_ASSERT_OK_AND_ASSIGN(ModelRecord got, store_->GetModel("churn"));
  EXPECT_EQ(got.description, "who leaves");  // the second call changed nothing
  EXPECT_EQ(got.created_at, churn.created_at);

  FERRY_ASSERT_OK(store_->CreateModel("arpu", "").status());
  for (const std::string bad : {"", "a b", "../x", "churn:7", "m@a", ".hidden", "x/y"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(store_->CreateModel(bad, "").status()));
    EXPECT_TRUE(absl::IsInvalidArgument(
        store_->RegisterModelVersion({.model = bad, .artifact_uri = "file:///x"}).status()));
  }
  FERRY_ASSERT_OK_AND_ASSIGN(models, store_->ListModels());
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].name, "arpu");
  EXPECT_EQ(models[1].name, "churn");
  EXPECT_EQ(models[1].description, "who leaves");
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ModelVersionRecord> versions,
                             store_->ListModelVersions("arpu"));
  EXPECT_TRUE(versions.empty());
}

TEST_P(StateStoreConformance, RegisterNumbersVersionsFromOnePerModel) {
  FERRY_ASSERT_OK_AND_ASSIGN(
      ModelVersionRecord v1,
      store_->RegisterModelVersion({.model = "churn",
                                    .artifact_uri = "file:///lake/models/churn/1",
                                    .run_id = "r1",
                                    .task = "register",
                                    .idempotency_key = "r1/register",
                                    .metrics_json = R"({"auc":0.81})",
                                    .metadata_json = R"({"type":"xgboost","git":"abc123"})",
                                    .actor = "ferry run pid 1@h"}));
  EXPECT_EQ(v1.model, "churn");
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.state, model_state::kRegistered);
  EXPECT_EQ(v1.revision, 1);
  EXPECT_EQ(v1.artifact_uri, "file:///lake/models/churn/1");
  EXPECT_EQ(v1.run_id, "r1");
  EXPECT_EQ(v1.task, "register");
  EXPECT_EQ(v1.idempotency_key, "r1/register");
  EXPECT_EQ(v1.metrics_json, R"({"auc":0.81})");
  EXPECT_EQ(v1.metadata_json, R"({"type":"xgboost","git":"abc123"})");
  EXPECT_NE(v1.created_at, absl::InfinitePast());
  EXPECT_EQ(v1.updated_at, v1.created_at);
  EXPECT_EQ(v1.message, "");

  // The first registration created the model.
  FERRY_ASSERT_OK_AND_ASSIGN(ModelRecord model, store_->GetModel("churn"));
  EXPECT_EQ(model.description, "");
  EXPECT_EQ(model.latest_version, 1);

  for (int64_t want = 2; want <= 5; ++want) EXPECT_EQ(Register("churn").version, want);
  EXPECT_EQ(Register("other").version, 1);  // numbered per model
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ModelVersionRecord> versions,
                             store_->ListModelVersions("churn"));
  ASSERT_EQ(versions.size(), 5u);
  for (size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(versions[i].model, "churn");
    EXPECT_EQ(versions[i].version, static_cast<int64_t>(i + 1));
    EXPECT_EQ(versions[i].state, model_state::kRegistered);
  }
  FERRY_ASSERT_OK_AND_ASSIGN(ModelVersionRecord got, store_->GetModelVersion("churn", 1));
  EXPECT_EQ(got.artifact_uri, v1.artifact_uri);
  EXPECT_EQ(got.metrics_json, v1.metrics_json);
  EXPECT_EQ(got.metadata_json, v1.metadata_json);
  EXPECT_EQ(got.created_at, v1.created_at);
  FERRY_ASSERT_OK_AND_ASSIGN(model, store_->GetModel("churn"));
  EXPECT_EQ(model.latest_version, 5);

  EXPECT_TRUE(absl::IsNotFound(store_->GetModelVersion("churn", 6).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetModelVersion("churn", 0).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetModelVersion("nope", 1).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->ListModelVersions("nope").status()));

  const std::vector<EventRecord> events = Events("churn:1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(Steps(events), (std::vector<VersionStep>{{"ModelVersion", "", "registered", 1}}));
  EXPECT_EQ(events[0].resource, "churn:1");
  EXPECT_EQ(events[0].actor, "ferry run pid 1@h");
  EXPECT_EQ(Events("churn:5").size(), 1u);
}

TEST_P(StateStoreConformance, RegisterIsIdempotentByKey) {
  const ModelVersionRecord first = Register("churn", "r1/register");
  ASSERT_EQ(first.version, 1);
  const size_t events_before = Events("").size();

  FERRY_ASSERT_OK_AND_ASSIGN(ModelVersionRecord retry,
                             store_->RegisterModelVersion({.model = "churn",
                                                           .artifact_uri = "file:///elsewhere",
                                                           .idempotency_key = "r1/register"}));
  EXPECT_EQ(retry.version, 1);
  EXPECT_EQ(retry.artifact_uri, first.artifact_uri);  // the first registration's, unchanged
  EXPECT_EQ(retry.created_at, first.created_at);
  EXPECT_EQ(Events("").size(), events_before);
  FERRY_ASSERT_OK_AND_ASSIGN(ModelRecord model, store_->GetModel("churn"));
  EXPECT_EQ(model.latest_version, 1);

  // Whatever the version went through since.
  BringModelVersionTo("churn", 1, model_state::kRejected);
  FERRY_ASSERT_OK_AND_ASSIGN(
      retry, store_->RegisterModelVersion({.model = "churn", .idempotency_key = "r1/register"}));
  EXPECT_EQ(retry.version, 1);
  EXPECT_EQ(retry.state, model_state::kRejected);

  EXPECT_EQ(Register("churn", "r2/register").version, 2);
  EXPECT_EQ(Register("other", "r1/register").version, 1);  // keys are per model
  EXPECT_EQ(Register("churn").version, 3);                 // no key, no deduplication
  EXPECT_EQ(Register("churn").version, 4);
}

TEST_P(StateStoreConformance, AnArtifactIsSetOnceAfterRegistration) {
  FERRY_ASSERT_OK_AND_ASSIGN(
      ModelVersionRecord v,
      store_->RegisterModelVersion(
          {.model = "churn", .idempotency_key = "r1/register", .actor = "test"}));
  EXPECT_EQ(v.artifact_uri, "");
  FERRY_ASSERT_OK_AND_ASSIGN(
      ModelVersionRecord set,
      store_->SetModelVersionArtifact("churn", v.version, "file:///lake/models/churn/1"));
  EXPECT_EQ(set.artifact_uri, "file:///lake/models/churn/1");
  EXPECT_EQ(set.revision, v.revision);  // not a transition
  FERRY_ASSERT_OK_AND_ASSIGN(
      ModelVersionRecord again,
      store_->SetModelVersionArtifact("churn", v.version, "file:///lake/models/churn/1"));
  EXPECT_EQ(again.artifact_uri, "file:///lake/models/churn/1");
  absl::StatusOr<ModelVersionRecord> moved =
      store_->SetModelVersionArtifact("churn", v.version, "file:///elsewhere");
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(moved.status().message(),
            "churn:1 already has its artifact at file:///lake/models/churn/1; a version's "
            "artifact never moves");
  EXPECT_EQ(store_->GetModelVersion("churn", 1)->artifact_uri, "file:///lake/models/churn/1");
  EXPECT_EQ(store_->SetModelVersionArtifact("churn", 9, "file:///x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->SetModelVersionArtifact("churn", 1, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StateStoreConformance, EveryLegalModelVersionEdgeMovesAndIsRecorded) {
  const KindTable& kind = ModelVersionKind();
  for (size_t i = 0; i < kind.edges.size(); ++i) {
    const Edge& edge = kind.edges[i];
    SCOPED_TRACE(testing::Message() << edge.from << " -> " << edge.to);
    const int64_t version = Register("m").version;
    ASSERT_EQ(version, static_cast<int64_t>(i + 1));
    const ModelVersionRecord before = BringModelVersionTo("m", version, edge.from);
    ASSERT_EQ(before.state, edge.from);
    const std::string resource = "m:" + std::to_string(version);
    const size_t events_before = Events(resource).size();

    FERRY_ASSERT_OK_AND_ASSIGN(
        ModelVersionRecord moved,
        store_->TransitionModelVersion({.model = "m",
                                        .version = version,
                                        .from = edge.from,
                                        .to = edge.to,
                                        .expected_revision = before.revision,
                                        .reason = std::string(edge.why),
                                        .actor = "walker",
                                        .message = "edge " + std::to_string(i)}));
    EXPECT_EQ(moved.state, edge.to);
    EXPECT_EQ(moved.revision, before.revision + 1);
    EXPECT_EQ(moved.message, "edge " + std::to_string(i));
    EXPECT_GE(moved.updated_at, before.updated_at);
    EXPECT_EQ(moved.created_at, before.created_at);
    FERRY_ASSERT_OK_AND_ASSIGN(ModelVersionRecord stored, store_->GetModelVersion("m", version));
    EXPECT_EQ(stored.state, edge.to);
    EXPECT_EQ(stored.revision, before.revision + 1);
    EXPECT_EQ(stored.artifact_uri, before.artifact_uri);

    std::vector<EventRecord> events = Events(resource);
    ASSERT_EQ(events.size(), events_before + 1);
    const EventRecord& e = events.back();
    EXPECT_EQ(e.kind, "ModelVersion");
    EXPECT_EQ(e.resource, resource);
    EXPECT_EQ(e.from, edge.from);
    EXPECT_EQ(e.to, edge.to);
    EXPECT_EQ(e.version, stored.revision);
    EXPECT_EQ(e.actor, "walker");
    EXPECT_EQ(e.reason, edge.why);
  }
}

TEST_P(StateStoreConformance, EveryIllegalModelVersionPairIsInvalidArgumentAndChangesNothing) {
  const KindTable& kind = ModelVersionKind();
  std::vector<std::string_view> targets = kind.states;
  targets.push_back("bogus");
  int checked = 0;
  for (std::string_view from : kind.states) {
    const int64_t version = Register("m").version;
    const ModelVersionRecord before = BringModelVersionTo("m", version, from);
    ASSERT_EQ(before.state, from);
    const size_t events_before = Events("").size();
    for (std::string_view to : targets) {
      if (IsLegal(kind, from, to)) continue;
      SCOPED_TRACE(testing::Message() << from << " -> " << to);
      absl::StatusOr<ModelVersionRecord> r =
          store_->TransitionModelVersion({.model = "m",
                                          .version = version,
                                          .from = from,
                                          .to = to,
                                          .expected_revision = before.revision});
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
      ++checked;
    }
    FERRY_ASSERT_OK_AND_ASSIGN(ModelVersionRecord after, store_->GetModelVersion("m", version));
    EXPECT_EQ(after.state, before.state);
    EXPECT_EQ(after.revision, before.revision);
    EXPECT_EQ(Events("").size(), events_before);
  }
  const size_t n = kind.states.size();
  EXPECT_EQ(checked, static_cast<int>(n * (n + 1) - kind.edges.size()));
}

TEST_P(StateStoreConformance, StaleModelVersionRevisionIsFailedPreconditionAndChangesNothing) {
  Register("m");
  const ModelVersionRecord validated = BringModelVersionTo("m", 1, model_state::kValidated);
  ASSERT_EQ(validated.revision, 2);
  const size_t events_before = Events("").size();

  absl::StatusOr<ModelVersionRecord> stale =
      store_->TransitionModelVersion({.model = "m",
                                      .version = 1,
                                      .from = model_state::kRegistered,
                                      .to = model_state::kRejected,
                                      .expected_revision = 1});
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  absl::StatusOr<ModelVersionRecord> wrong_revision =
      store_->TransitionModelVersion({.model = "m",
                                      .version = 1,
                                      .from = model_state::kValidated,
                                      .to = model_state::kStaged,
                                      .expected_revision = 1});
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong_revision.status())) << wrong_revision.status();
  absl::StatusOr<ModelVersionRecord> missing =
      store_->TransitionModelVersion({.model = "m",
                                      .version = 2,
                                      .from = model_state::kRegistered,
                                      .to = model_state::kValidated,
                                      .expected_revision = 1});
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();

  FERRY_ASSERT_OK_AND_ASSIGN(ModelVersionRecord after, store_->GetModelVersion("m", 1));
  EXPECT_EQ(after.state, model_state::kValidated);
  EXPECT_EQ(after.revision, 2);
  EXPECT_EQ(Events("").size(), events_before);
}

TEST_P(StateStoreConformance, ThreadsRegisteringOneModelGetDistinctConsecutiveVersions) {
  constexpr int kThreads = 8;
  constexpr int kEach = 5;
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<absl::Status> errors(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      for (int j = 0; j < kEach; ++j) {
        absl::StatusOr<ModelVersionRecord> v = stores[i]->RegisterModelVersion(
            {.model = "churn", .actor = "thread " + std::to_string(i)});
        if (!v.ok()) {
          errors[i] = v.status();
          return;
        }
        got[i].push_back(v->version);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : errors) EXPECT_TRUE(s.ok()) << s;

  std::vector<int64_t> all;
  for (const std::vector<int64_t>& mine : got) {
    // One thread's registrations are numbered in the order it made them.
    EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<int64_t> want(kThreads * kEach);
  std::iota(want.begin(), want.end(), 1);
  EXPECT_EQ(all, want);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ModelVersionRecord> versions,
                             store_->ListModelVersions("churn"));
  EXPECT_EQ(versions.size(), want.size());
  FERRY_ASSERT_OK_AND_ASSIGN(ModelRecord model, store_->GetModel("churn"));
  EXPECT_EQ(model.latest_version, kThreads * kEach);
  EXPECT_EQ(Events("").size(), want.size());  // one creation event each
}

TEST_P(StateStoreConformance, ThreadsRetryingOneRegistrationGetOneVersion) {
  constexpr int kThreads = 8;
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<absl::StatusOr<ModelVersionRecord>> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] =
          stores[i]->RegisterModelVersion({.model = "churn", .idempotency_key = "r1/register"});
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->version, 1);
  }
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ModelVersionRecord> versions,
                             store_->ListModelVersions("churn"));
  EXPECT_EQ(versions.size(), 1u);
  EXPECT_EQ(Events("churn:1").size(), 1u);
}

TEST_P(StateStoreConformance, AliasesMoveByCompareAndSetAndAreRecorded) {
  for (int i = 0; i < 3; ++i) Register("churn");
  EXPECT_TRUE(absl::IsNotFound(store_->GetAlias("churn", "champion").status()));

  // expected_current = 0: only if the alias does not exist yet.
  FERRY_ASSERT_OK_AND_ASSIGN(ModelAliasRecord champion, store_->SetAlias({.model = "churn",
                                                                          .alias = "champion",
                                                                          .version = 1,
                                                                          .expected_current = 0,
                                                                          .reason = "first",
                                                                          .actor = "me"}));
  EXPECT_EQ(champion.model, "churn");
  EXPECT_EQ(champion.alias, "champion");
  EXPECT_EQ(champion.version, 1);
  EXPECT_NE(champion.updated_at, absl::InfinitePast());
  absl::StatusOr<ModelAliasRecord> r = store_->SetAlias(
      {.model = "churn", .alias = "champion", .version = 2, .expected_current = 0});
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();

  FERRY_ASSERT_OK_AND_ASSIGN(champion, store_->SetAlias({.model = "churn",
                                                         .alias = "champion",
                                                         .version = 2,
                                                         .expected_current = 1,
                                                         .reason = "promoted",
                                                         .actor = "ferry deploy"}));
  EXPECT_EQ(champion.version, 2);
  // A stale compare-and-set: it points to 2 now.
  r = store_->SetAlias(
      {.model = "churn", .alias = "champion", .version = 3, .expected_current = 1});
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  FERRY_ASSERT_OK_AND_ASSIGN(champion, store_->GetAlias("churn", "champion"));
  EXPECT_EQ(champion.version, 2);
  // Pointing it where it already points changes nothing and records nothing.
  FERRY_ASSERT_OK_AND_ASSIGN(
      champion, store_->SetAlias(
                    {.model = "churn", .alias = "champion", .version = 2, .expected_current = 2}));
  EXPECT_EQ(champion.version, 2);
  // Without an expectation, it moves from wherever it is.
  FERRY_ASSERT_OK(
      store_->SetAlias({.model = "churn", .alias = "challenger", .version = 3}).status());
  FERRY_ASSERT_OK(
      store_->SetAlias({.model = "churn", .alias = "challenger", .version = 1}).status());

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ModelAliasRecord> aliases, store_->ListAliases("churn"));
  ASSERT_EQ(aliases.size(), 2u);
  EXPECT_EQ(aliases[0].alias, "challenger");
  EXPECT_EQ(aliases[0].version, 1);
  EXPECT_EQ(aliases[1].alias, "champion");
  EXPECT_EQ(aliases[1].version, 2);

  const std::vector<EventRecord> events = Events("churn@champion");
  EXPECT_EQ(Steps(events),
            (std::vector<VersionStep>{{"ModelAlias", "", "1", 1}, {"ModelAlias", "1", "2", 2}}));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].resource, "churn@champion");
  EXPECT_EQ(events[1].actor, "ferry deploy");
  EXPECT_EQ(events[1].reason, "promoted");

  FERRY_ASSERT_OK(store_->DeleteAlias("churn", "challenger", "me"));
  EXPECT_TRUE(absl::IsNotFound(store_->GetAlias("churn", "challenger").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->DeleteAlias("churn", "challenger", "me")));
  EXPECT_EQ(
      Steps(Events("churn@challenger")),
      (std::vector<VersionStep>{
          {"ModelAlias", "", "3", 3}, {"ModelAlias", "3", "1", 1}, {"ModelAlias", "1", "", 0}}));
  FERRY_ASSERT_OK_AND_ASSIGN(aliases, store_->ListAliases("churn"));
  EXPECT_EQ(aliases.size(), 1u);

  // Refused without a trace: bad names, missing versions and models.
  const size_t events_before = Events("").size();
  for (const std::string bad : {"", "7", "latest", "a b", "x:y", ".a"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(
        store_->SetAlias({.model = "churn", .alias = bad, .version = 1}).status()));
  }
  EXPECT_TRUE(absl::IsNotFound(
      store_->SetAlias({.model = "churn", .alias = "champion", .version = 9}).status()));
  EXPECT_TRUE(absl::IsNotFound(
      store_->SetAlias({.model = "nope", .alias = "champion", .version = 1}).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->ListAliases("nope").status()));
  EXPECT_EQ(Events("").size(), events_before);
  FERRY_ASSERT_OK(store_->CreateModel("empty", "").status());
  FERRY_ASSERT_OK_AND_ASSIGN(aliases, store_->ListAliases("empty"));
  EXPECT_TRUE(aliases.empty());
}

TEST_P(StateStoreConformance, AliasesNeverNameRejectedOrTombstonedVersions) {
  for (int i = 0; i < 4; ++i) Register("churn");
  BringModelVersionTo("churn", 1, model_state::kRejected);
  BringModelVersionTo("churn", 2, model_state::kTombstoned);
  for (int64_t version : {1, 2}) {
    SCOPED_TRACE(version);
    absl::StatusOr<ModelAliasRecord> r =
        store_->SetAlias({.model = "churn", .alias = "champion", .version = version});
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  }
  EXPECT_TRUE(absl::IsNotFound(store_->GetAlias("churn", "champion").status()));

  // A version an alias names cannot be rejected or deleted until the alias moves.
  FERRY_ASSERT_OK(store_->SetAlias({.model = "churn", .alias = "champion", .version = 3}).status());
  FERRY_ASSERT_OK(store_->SetAlias({.model = "churn", .alias = "shadow", .version = 3}).status());
  const size_t events_before = Events("").size();
  for (std::string_view to : {model_state::kRejected, model_state::kTombstoned}) {
    SCOPED_TRACE(to);
    absl::StatusOr<ModelVersionRecord> r =
        store_->TransitionModelVersion({.model = "churn",
                                        .version = 3,
                                        .from = model_state::kRegistered,
                                        .to = to,
                                        .expected_revision = 1});
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
    EXPECT_NE(r.status().message().find("champion, shadow"), std::string::npos) << r.status();
  }
  FERRY_ASSERT_OK_AND_ASSIGN(ModelVersionRecord v3, store_->GetModelVersion("churn", 3));
  EXPECT_EQ(v3.state, model_state::kRegistered);
  EXPECT_EQ(v3.revision, 1);
  EXPECT_EQ(Events("").size(), events_before);

  // Archiving keeps it usable (a rollback target), so the alias may stay.
  const ModelVersionRecord archived = BringModelVersionTo("churn", 3, model_state::kArchived);
  EXPECT_EQ(archived.state, model_state::kArchived);
  FERRY_ASSERT_OK(store_->DeleteAlias("churn", "champion", "me"));
  FERRY_ASSERT_OK(store_->SetAlias({.model = "churn", .alias = "shadow", .version = 4}).status());
  FERRY_ASSERT_OK(store_
                      ->TransitionModelVersion({.model = "churn",
                                                .version = 3,
                                                .from = model_state::kArchived,
                                                .to = model_state::kTombstoned,
                                                .expected_revision = archived.revision})
                      .status());
}

TEST_P(StateStoreConformance, ThreadsRaceOneAliasMove) {
  constexpr int kThreads = 8;
  for (int i = 0; i < kThreads + 1; ++i) Register("churn");
  FERRY_ASSERT_OK(store_->SetAlias({.model = "churn", .alias = "champion", .version = 1}).status());
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<absl::Status> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = stores[i]
                       ->SetAlias({.model = "churn",
                                   .alias = "champion",
                                   .version = i + 2,
                                   .expected_current = 1,
                                   .actor = "thread " + std::to_string(i)})
                       .status();
    });
  }
  for (std::thread& t : threads) t.join();

  int winner = -1;
  int lost = 0;
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].ok()) {
      EXPECT_EQ(winner, -1) << "two winners";
      winner = i;
    } else if (absl::IsFailedPrecondition(results[i])) {
      ++lost;
    } else {
      ADD_FAILURE() << results[i];
    }
  }
  ASSERT_NE(winner, -1);
  EXPECT_EQ(lost, kThreads - 1);
  FERRY_ASSERT_OK_AND_ASSIGN(ModelAliasRecord champion, store_->GetAlias("churn", "champion"));
  EXPECT_EQ(champion.version, winner + 2);
  const std::vector<EventRecord> events = Events("churn@champion");
  ASSERT_EQ(events.size(), 2u);  // created, and the one winning move
  EXPECT_EQ(events[1].from, "1");
  EXPECT_EQ(events[1].to, std::to_string(winner + 2));
  EXPECT_EQ(events[1].actor, "thread " + std::to_string(winner));
}

TEST_P(StateStoreConformance, ProcessesRaceOneAliasMove) {
  constexpr int kChildren = 4;
  for (int i = 0; i < kChildren + 1; ++i) Register("churn");
  FERRY_ASSERT_OK(store_->SetAlias({.model = "churn", .alias = "champion", .version = 1}).status());
  store_.reset();  // no connection is carried across fork()

  std::map<int, int> codes;
  RaceInChildren(
      uri_, kChildren,
      [](StateStore& store, int i) {
        return store
            .SetAlias({.model = "churn",
                       .alias = "champion",
                       .version = i + 2,
                       .expected_current = 1,
                       .actor = "child"})
            .status();
      },
      codes);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(codes[kChildWon], 1);
  EXPECT_EQ(codes[kChildLost], kChildren - 1);
  EXPECT_EQ(codes[kChildOtherError], 0);
  EXPECT_EQ(codes[kChildOpenFailed], 0);

  store_ = Connect();
  ASSERT_NE(store_, nullptr);
  FERRY_ASSERT_OK_AND_ASSIGN(ModelAliasRecord champion, store_->GetAlias("churn", "champion"));
  EXPECT_GE(champion.version, 2);
  EXPECT_LE(champion.version, kChildren + 1);
  const std::vector<EventRecord> events = Events("churn@champion");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].to, std::to_string(champion.version));
}

TEST_P(StateStoreConformance, ProcessesRegisteringOneModelGetDistinctVersions) {
  constexpr int kChildren = 4;
  FERRY_ASSERT_OK(store_->CreateModel("churn", "").status());
  store_.reset();
  std::map<int, int> codes;
  RaceInChildren(
      uri_, kChildren,
      [](StateStore& store, int) -> absl::Status {
        for (int j = 0; j < 3; ++j) {
          FERRY_RETURN_IF_ERROR(store.RegisterModelVersion({.model = "churn"}).status());
        }
        return absl::OkStatus();
      },
      codes);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(codes[kChildWon], kChildren);
  store_ = Connect();
  ASSERT_NE(store_, nullptr);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ModelVersionRecord> versions,
                             store_->ListModelVersions("churn"));
  ASSERT_EQ(versions.size(), static_cast<size_t>(kChildren * 3));
  for (size_t i = 0; i < versions.size(); ++i) {
    EXPECT_EQ(versions[i].version, static_cast<int64_t>(i + 1));
  }
}

TEST_P(StateStoreConformance, ResolveModelRefs) {
  for (int i = 0; i < 4; ++i) Register("churn");
  BringModelVersionTo("churn", 1, model_state::kProduction);
  BringModelVersionTo("churn", 2, model_state::kRejected);
  BringModelVersionTo("churn", 4, model_state::kTombstoned);
  FERRY_ASSERT_OK(store_->SetAlias({.model = "churn", .alias = "champion", .version = 1}).status());

  auto resolve = [&](std::string_view ref) -> int64_t {
    absl::StatusOr<ModelVersionRecord> v = ResolveModelRef(*store_, ref);
    EXPECT_TRUE(v.ok()) << ref << ": " << v.status();
    return v.ok() ? v->version : -1;
  };
  EXPECT_EQ(resolve("churn:1"), 1);
  EXPECT_EQ(resolve("churn:2"), 2);  // a version asked for by number is returned, whatever state
  EXPECT_EQ(resolve("churn:champion"), 1);
  EXPECT_EQ(resolve("churn"), 3);  // the newest that is neither rejected nor tombstoned
  EXPECT_EQ(resolve("churn:latest"), 3);
  FERRY_ASSERT_OK_AND_ASSIGN(ModelVersionRecord v, ResolveModelRef(*store_, "churn:champion"));
  EXPECT_EQ(v.state, model_state::kProduction);

  for (std::string_view missing : {"churn:9", "churn:nope", "nope", "nope:1", "nope:champion"}) {
    SCOPED_TRACE(missing);
    EXPECT_TRUE(absl::IsNotFound(ResolveModelRef(*store_, missing).status()));
  }
  for (std::string_view bad : {"", "churn:", "churn:0", ":7", "a b:1", "churn:a b"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(ResolveModelRef(*store_, bad).status()));
  }
  Register("dud");
  BringModelVersionTo("dud", 1, model_state::kRejected);
  absl::StatusOr<ModelVersionRecord> none = ResolveModelRef(*store_, "dud");
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
  FERRY_ASSERT_OK(store_->CreateModel("fresh", "").status());
  EXPECT_TRUE(absl::IsNotFound(ResolveModelRef(*store_, "fresh").status()));
}

// --- Experiments ---

// What a train task of run `run_id` records; every field set.
NewExperiment Trained(const std::string& name, const std::string& run_id,
                      const std::string& task = "train",
                      const std::string& model_type = "logistic_regression") {
  return {.name = name,
          .run_id = run_id,
          .task = task,
          .model_type = model_type,
          .params_json = R"({"C": 0.5, "seed": 7})",
          .metrics_json = R"({"train": {"auc": 0.91, "log_loss": 0.25}})",
          .dataset = "features@3",
          .dataset_version = "d3b07384d113",
          .code_hash = "sha256:9f86d081",
          .artifact_uri = "file:///lake/runs/p/" + run_id + "/" + task + "/output/model",
          .duration_seconds = 12.375};
}

std::vector<int64_t> Ids(const std::vector<ExperimentRecord>& experiments) {
  std::vector<int64_t> ids;
  for (const ExperimentRecord& e : experiments) ids.push_back(e.id);
  return ids;
}

nlohmann::json Json(const std::string& text) { return nlohmann::json::parse(text); }

void ExpectFieldsOf(const ExperimentRecord& got, const NewExperiment& want) {
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.run_id, want.run_id);
  EXPECT_EQ(got.task, want.task);
  EXPECT_EQ(got.model_type, want.model_type);
  EXPECT_EQ(got.params_json, want.params_json);
  EXPECT_EQ(got.metrics_json, want.metrics_json);
  EXPECT_EQ(got.dataset, want.dataset);
  EXPECT_EQ(got.dataset_version, want.dataset_version);
  EXPECT_EQ(got.code_hash, want.code_hash);
  EXPECT_EQ(got.artifact_uri, want.artifact_uri);
  EXPECT_EQ(got.duration_seconds, want.duration_seconds);
}

TEST_P(StateStoreConformance, RecordAndGetExperimentRoundTripEveryField) {
  const NewExperiment e = Trained("churn-lr", "r1");
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord recorded, store_->RecordExperiment(e));
  EXPECT_EQ(recorded.id, 1);
  ExpectFieldsOf(recorded, e);
  EXPECT_EQ(recorded.model_version, "");
  EXPECT_NE(recorded.created_at, absl::InfinitePast());
  EXPECT_EQ(recorded.updated_at, recorded.created_at);

  std::unique_ptr<StateStore> other = Connect();
  ASSERT_NE(other, nullptr);
  for (StateStore* store : {store_.get(), other.get()}) {
    FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord got, store->GetExperiment(1));
    EXPECT_EQ(got.id, 1);
    ExpectFieldsOf(got, e);
    EXPECT_EQ(got.model_version, "");
    EXPECT_EQ(got.created_at, recorded.created_at);
    EXPECT_EQ(got.updated_at, recorded.updated_at);
    FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord found, store->FindExperiment("r1", "train"));
    EXPECT_EQ(found.id, 1);
    ExpectFieldsOf(found, e);
  }

  FERRY_ASSERT_OK(store_->SetExperimentModelVersion(1, "churn:7"));
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord registered, other->GetExperiment(1));
  EXPECT_EQ(registered.model_version, "churn:7");
  ExpectFieldsOf(registered, e);
  EXPECT_EQ(registered.created_at, recorded.created_at);
  EXPECT_GE(registered.updated_at, recorded.updated_at);
  // An experiment is not a state machine: it writes no events.
  EXPECT_TRUE(Events("").empty());
}

TEST_P(StateStoreConformance, ExperimentIdsIncreaseInCreationOrder) {
  std::vector<int64_t> ids;
  for (const std::string run : {"r1", "r2"}) {
    FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained("x", run)));
    ids.push_back(e.id);
  }
  // Without a run id nothing is idempotent: each call records a new experiment.
  for (int i = 0; i < 2; ++i) {
    FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained("x", "", "")));
    ids.push_back(e.id);
  }
  // A retry takes no number; the next new experiment gets the next one.
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord retry, store_->RecordExperiment(Trained("x", "r1")));
  EXPECT_EQ(retry.id, 1);
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained("x", "r3")));
  ids.push_back(e.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3, 4, 5}));

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ExperimentRecord> all, store_->ListExperiments({}));
  EXPECT_EQ(Ids(all), (std::vector<int64_t>{5, 4, 3, 2, 1}));
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GE(all[i - 1].created_at, all[i].created_at);
}

TEST_P(StateStoreConformance, RetriedTrainTaskUpdatesItsExperimentAndKeepsIdAndModelVersion) {
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord first,
                             store_->RecordExperiment(Trained("churn", "r1")));
  FERRY_ASSERT_OK(store_->SetExperimentModelVersion(first.id, "churn:7"));
  FERRY_ASSERT_OK(store_->SetExperimentMetrics(first.id, "evaluate", R"({"auc": 0.8})"));

  // The retry (another attempt, another connection) trained something else: every field it sets
  // is replaced, metrics included.
  NewExperiment retry = {.name = "churn-v2",
                         .run_id = "r1",
                         .task = "train",
                         .model_type = "xgboost",
                         .params_json = R"({"max_depth": 4, "seed": 8})",
                         .metrics_json = R"({"train": {"auc": 0.95}})",
                         .dataset = "features@4",
                         .dataset_version = "c157a79031e1",
                         .code_hash = "sha256:60303ae2",
                         .artifact_uri = "file:///lake/runs/p/r1/train/output/model-2",
                         .duration_seconds = 3.5};
  std::unique_ptr<StateStore> other = Connect();
  ASSERT_NE(other, nullptr);
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord second, other->RecordExperiment(retry));
  EXPECT_EQ(second.id, first.id);
  ExpectFieldsOf(second, retry);
  EXPECT_EQ(second.model_version, "churn:7");
  EXPECT_EQ(second.created_at, first.created_at);
  EXPECT_GE(second.updated_at, first.updated_at);

  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord got, store_->FindExperiment("r1", "train"));
  EXPECT_EQ(got.id, first.id);
  ExpectFieldsOf(got, retry);
  EXPECT_EQ(got.model_version, "churn:7");
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ExperimentRecord> all, store_->ListExperiments({}));
  EXPECT_EQ(Ids(all), (std::vector<int64_t>{first.id}));

  // Another task of the run, or the same task of another run, is another experiment.
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord other_task,
                             store_->RecordExperiment(Trained("churn", "r1", "train_xgb")));
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord other_run,
                             store_->RecordExperiment(Trained("churn", "r2")));
  EXPECT_EQ(other_task.id, 2);
  EXPECT_EQ(other_run.id, 3);
  EXPECT_EQ(other_task.model_version, "");
  FERRY_ASSERT_OK_AND_ASSIGN(got, store_->FindExperiment("r1", "train_xgb"));
  EXPECT_EQ(got.id, 2);
  FERRY_ASSERT_OK_AND_ASSIGN(got, store_->FindExperiment("r2", "train"));
  EXPECT_EQ(got.id, 3);
}

TEST_P(StateStoreConformance, ListExperimentsFiltersByNameAndTypeNewestFirst) {
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ExperimentRecord> none, store_->ListExperiments({}));
  EXPECT_TRUE(none.empty());
  // id: name, model type
  const std::vector<std::pair<std::string, std::string>> made = {
      {"churn", "logistic_regression"},  // 1
      {"churn", "xgboost"},              // 2
      {"fraud", "xgboost"},              // 3
      {"churn", "logistic_regression"},  // 4
      {"fraud", "python"},               // 5
  };
  for (size_t i = 0; i < made.size(); ++i) {
    FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained(
                                                       made[i].first, "r" + std::to_string(i + 1),
                                                       "train", made[i].second)));
    ASSERT_EQ(e.id, static_cast<int64_t>(i + 1));
  }
  auto list = [&](const ExperimentFilter& f) {
    absl::StatusOr<std::vector<ExperimentRecord>> got = store_->ListExperiments(f);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? Ids(*got) : std::vector<int64_t>{};
  };
  using IdList = std::vector<int64_t>;
  EXPECT_EQ(list({}), (IdList{5, 4, 3, 2, 1}));
  EXPECT_EQ(list({.name = "churn"}), (IdList{4, 2, 1}));
  EXPECT_EQ(list({.name = "fraud"}), (IdList{5, 3}));
  EXPECT_EQ(list({.model_type = "xgboost"}), (IdList{3, 2}));
  EXPECT_EQ(list({.name = "churn", .model_type = "logistic_regression"}), (IdList{4, 1}));
  EXPECT_EQ(list({.name = "churn", .model_type = "python"}), IdList{});
  EXPECT_EQ(list({.name = "nope"}), IdList{});
  EXPECT_EQ(list({.limit = 2}), (IdList{5, 4}));
  EXPECT_EQ(list({.name = "churn", .limit = 1}), (IdList{4}));
  EXPECT_EQ(list({.model_type = "xgboost", .limit = 10}), (IdList{3, 2}));

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ExperimentRecord> fraud,
                             store_->ListExperiments({.name = "fraud"}));
  ASSERT_EQ(fraud.size(), 2u);
  EXPECT_EQ(fraud[0].model_type, "python");
  EXPECT_EQ(fraud[0].run_id, "r5");
  ExpectFieldsOf(fraud[1], Trained("fraud", "r3", "train", "xgboost"));
}

TEST_P(StateStoreConformance, SetExperimentMetricsReplacesOneSectionAndKeepsTheOthers) {
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained("churn", "r1")));
  FERRY_ASSERT_OK(store_->SetExperimentMetrics(e.id, "evaluate", R"({"auc": 0.8, "f1": 0.5})"));
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord got, store_->GetExperiment(e.id));
  EXPECT_EQ(Json(got.metrics_json), Json(R"({"train": {"auc": 0.91, "log_loss": 0.25},
                                             "evaluate": {"auc": 0.8, "f1": 0.5}})"));
  EXPECT_GE(got.updated_at, e.updated_at);
  EXPECT_EQ(got.created_at, e.created_at);

  // A section is replaced as a whole, not merged key by key.
  FERRY_ASSERT_OK(store_->SetExperimentMetrics(e.id, "evaluate", R"({"auc": 0.82})"));
  FERRY_ASSERT_OK(store_->SetExperimentMetrics(e.id, "train", R"({"auc": 0.93})"));
  FERRY_ASSERT_OK(store_->SetExperimentMetrics(e.id, "canary", "{}"));
  FERRY_ASSERT_OK_AND_ASSIGN(got, store_->GetExperiment(e.id));
  EXPECT_EQ(Json(got.metrics_json),
            Json(R"({"train": {"auc": 0.93}, "evaluate": {"auc": 0.82}, "canary": {}})"));
  // Everything else is as recorded.
  const NewExperiment recorded = Trained("churn", "r1");
  EXPECT_EQ(got.params_json, recorded.params_json);
  EXPECT_EQ(got.artifact_uri, recorded.artifact_uri);
  EXPECT_EQ(got.model_version, "");

  // An experiment recorded with no metrics gets its first section.
  NewExperiment bare = Trained("churn", "r2");
  bare.metrics_json = "{}";
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord b, store_->RecordExperiment(bare));
  FERRY_ASSERT_OK(store_->SetExperimentMetrics(b.id, "evaluate", R"({"rmse": 1.25})"));
  FERRY_ASSERT_OK_AND_ASSIGN(got, store_->GetExperiment(b.id));
  EXPECT_EQ(Json(got.metrics_json), Json(R"({"evaluate": {"rmse": 1.25}})"));
}

TEST_P(StateStoreConformance, ThreadsSettingDifferentMetricsSectionsBothSurvive) {
  constexpr int kThreads = 2;
  constexpr int kWrites = 200;
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained("churn", "r1")));
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  const std::string sections[kThreads] = {"evaluate", "canary"};
  std::vector<absl::Status> errors(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      for (int j = 1; j <= kWrites && errors[i].ok(); ++j) {
        errors[i] =
            stores[i]->SetExperimentMetrics(e.id, sections[i], nlohmann::json{{"write", j}}.dump());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : errors) EXPECT_TRUE(s.ok()) << s;

  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord got, store_->GetExperiment(e.id));
  EXPECT_EQ(Json(got.metrics_json), (nlohmann::json{{"train", {{"auc", 0.91}, {"log_loss", 0.25}}},
                                                    {"evaluate", {{"write", kWrites}}},
                                                    {"canary", {{"write", kWrites}}}}));
}

TEST_P(StateStoreConformance, ProcessesSettingDifferentMetricsSectionsAllSurvive) {
  constexpr int kChildren = 4;
  constexpr int kWrites = 50;
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained("churn", "r1")));
  store_.reset();  // no connection is carried across fork()

  std::map<int, int> codes;
  const int64_t id = e.id;
  RaceInChildren(
      uri_, kChildren,
      [id](StateStore& store, int i) -> absl::Status {
        for (int j = 1; j <= kWrites; ++j) {
          FERRY_RETURN_IF_ERROR(
              store.SetExperimentMetrics(id, "section" + std::to_string(i),
                                         nlohmann::json{{"child", i}, {"write", j}}.dump()));
        }
        return absl::OkStatus();
      },
      codes);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(codes[kChildWon], kChildren);

  store_ = Connect();
  ASSERT_NE(store_, nullptr);
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord got, store_->GetExperiment(id));
  nlohmann::json want = {{"train", {{"auc", 0.91}, {"log_loss", 0.25}}}};
  for (int i = 0; i < kChildren; ++i) {
    want["section" + std::to_string(i)] = {{"child", i}, {"write", kWrites}};
  }
  EXPECT_EQ(Json(got.metrics_json), want);
}

TEST_P(StateStoreConformance, ExperimentErrorsSayWhatIsWrongAndChangeNothing) {
  // Unknown ids and tasks.
  absl::Status s = store_->GetExperiment(41).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_EQ(s.message(), "no experiment 41; `ferry experiments` lists them");
  s = store_->SetExperimentMetrics(41, "evaluate", "{}");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_EQ(s.message(), "no experiment 41; `ferry experiments` lists them");
  s = store_->SetExperimentModelVersion(41, "churn:7");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_EQ(s.message(), "no experiment 41; `ferry experiments` lists them");
  s = store_->FindExperiment("r1", "train").status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_NE(s.message().find("r1/train"), std::string::npos) << s;

  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord e, store_->RecordExperiment(Trained("churn", "r1")));
  EXPECT_TRUE(absl::IsNotFound(store_->FindExperiment("r1", "evaluate").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->FindExperiment("r2", "train").status()));
  FERRY_ASSERT_OK(store_->RecordExperiment(Trained("churn", "", "train")).status());
  // Experiments recorded outside a run are not found by run.
  EXPECT_TRUE(absl::IsNotFound(store_->FindExperiment("", "train").status()));

  // Bad new experiments, each naming the field at fault.
  struct Bad {
    std::string what;
    NewExperiment e;
    std::string names;  // in the message
  };
  std::vector<Bad> bad;
  auto with = [](auto change) {
    NewExperiment e = Trained("churn", "r1");
    change(e);
    return e;
  };
  bad.push_back({"empty name", with([](NewExperiment& e) { e.name = ""; }), "name"});
  bad.push_back(
      {"params not JSON", with([](NewExperiment& e) { e.params_json = "{C: 1"; }), "params_json"});
  bad.push_back(
      {"params an array", with([](NewExperiment& e) { e.params_json = "[1, 2]"; }), "params_json"});
  bad.push_back(
      {"params empty", with([](NewExperiment& e) { e.params_json = ""; }), "params_json"});
  bad.push_back(
      {"metrics a number", with([](NewExperiment& e) { e.metrics_json = "0.9"; }), "metrics_json"});
  bad.push_back({"metrics not JSON", with([](NewExperiment& e) { e.metrics_json = "auc=0.9"; }),
                 "metrics_json"});
  bad.push_back({"negative duration", with([](NewExperiment& e) { e.duration_seconds = -1; }),
                 "duration_seconds"});
  bad.push_back({"NaN duration", with([](NewExperiment& e) { e.duration_seconds = std::nan(""); }),
                 "duration_seconds"});
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    s = store_->RecordExperiment(b.e).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_NE(s.message().find(b.names), std::string::npos) << s;
  }

  // Bad metrics sections.
  for (const std::string text : {"", "not json", "[1]", "\"auc\"", "{\"auc\": }"}) {
    SCOPED_TRACE(text);
    s = store_->SetExperimentMetrics(e.id, "evaluate", text);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_NE(s.message().find("evaluate"), std::string::npos) << s;
    EXPECT_NE(s.message().find("experiment 1"), std::string::npos) << s;
  }
  s = store_->SetExperimentMetrics(e.id, "", "{}");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("section"), std::string::npos) << s;

  // None of that changed anything.
  FERRY_ASSERT_OK_AND_ASSIGN(ExperimentRecord got, store_->GetExperiment(e.id));
  ExpectFieldsOf(got, Trained("churn", "r1"));
  EXPECT_EQ(got.updated_at, e.updated_at);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ExperimentRecord> all, store_->ListExperiments({}));
  EXPECT_EQ(Ids(all), (std::vector<int64_t>{2, 1}));
}

// --- Endpoints ---

TEST_P(StateStoreConformance, CreateGetAndListEndpoints) {
  const std::string config =
      R"({"variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 100}]})";
  FERRY_ASSERT_OK_AND_ASSIGN(
      EndpointRecord churn,
      store_->CreateEndpoint({.name = "churn", .config_json = config, .actor = "ferry deploy"}));
  EXPECT_EQ(churn.name, "churn");
  EXPECT_EQ(churn.state, endpoint_state::kCreating);
  EXPECT_EQ(churn.version, 1);
  EXPECT_EQ(churn.config_json, config);
  EXPECT_NE(churn.created_at, absl::InfinitePast());
  EXPECT_EQ(churn.updated_at, churn.created_at);
  EXPECT_EQ(churn.message, "");
  MakeEndpoint("alpha");

  FERRY_ASSERT_OK_AND_ASSIGN(EndpointRecord got, store_->GetEndpoint("churn"));
  EXPECT_EQ(got.name, "churn");
  EXPECT_EQ(got.state, endpoint_state::kCreating);
  EXPECT_EQ(got.version, 1);
  EXPECT_EQ(got.config_json, config);
  EXPECT_EQ(got.created_at, churn.created_at);
  FERRY_ASSERT_OK_AND_ASSIGN(EndpointRecord alpha, store_->GetEndpoint("alpha"));
  EXPECT_EQ(alpha.config_json, "{}");  // NewEndpoint's default

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<EndpointRecord> all, store_->ListEndpoints());
  ASSERT_EQ(all.size(), 2u);  // by name
  EXPECT_EQ(all[0].name, "alpha");
  EXPECT_EQ(all[1].name, "churn");

  const std::vector<EventRecord> events = Events("churn");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "Endpoint");
  EXPECT_EQ(events[0].from, "");
  EXPECT_EQ(events[0].to, endpoint_state::kCreating);
  EXPECT_EQ(events[0].version, 1);
  EXPECT_EQ(events[0].actor, "ferry deploy");
  EXPECT_EQ(events[0].at, churn.created_at);

  absl::Status missing = store_->GetEndpoint("nope").status();
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_NE(missing.message().find("nope"), std::string::npos) << missing;
}

TEST_P(StateStoreConformance, EndpointCreationErrorsChangeNothing) {
  MakeEndpoint("churn");
  MakeEndpoint("gone");
  BringEndpointTo("gone", endpoint_state::kDeleted);
  const size_t events_before = Events("").size();

  absl::Status taken = store_->CreateEndpoint({.name = "churn"}).status();
  EXPECT_TRUE(absl::IsAlreadyExists(taken)) << taken;
  EXPECT_NE(taken.message().find("creating"), std::string::npos) << taken;
  // A deleted endpoint keeps its name.
  absl::Status deleted = store_->CreateEndpoint({.name = "gone"}).status();
  EXPECT_TRUE(absl::IsAlreadyExists(deleted)) << deleted;
  EXPECT_NE(deleted.message().find("deleted"), std::string::npos) << deleted;

  for (const std::string& bad : {std::string(), std::string("-x"), std::string("a/b"),
                                 std::string("a..b"), std::string(129, 'a')}) {
    absl::Status s = store_->CreateEndpoint({.name = bad}).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << "'" << bad << "': " << s;
  }
  for (const char* bad_config : {"", "[]", "7", "{", "\"text\""}) {
    absl::Status s = store_->CreateEndpoint({.name = "fresh", .config_json = bad_config}).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << bad_config << ": " << s;
    EXPECT_NE(s.message().find("config_json"), std::string::npos) << s;
  }
  EXPECT_TRUE(absl::IsNotFound(store_->GetEndpoint("fresh").status()));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<EndpointRecord> all, store_->ListEndpoints());
  EXPECT_EQ(all.size(), 2u);
  EXPECT_EQ(Events("").size(), events_before);
}

TEST_P(StateStoreConformance, EveryLegalEndpointEdgeMovesAndIsRecorded) {
  const KindTable& kind = EndpointKind();
  for (size_t i = 0; i < kind.edges.size(); ++i) {
    const Edge& edge = kind.edges[i];
    SCOPED_TRACE(testing::Message() << edge.from << " -> " << edge.to);
    const std::string name = "edge" + std::to_string(i);
    MakeEndpoint(name, R"({"old": true})");
    const EndpointRecord before = BringEndpointTo(name, edge.from);
    ASSERT_EQ(before.state, edge.from);
    const size_t events_before = Events(name).size();

    // Every other edge writes the config and the message; the rest keep them.
    const bool writes = i % 2 == 0;
    const std::string config = fmt::format(R"({{"edge": {}}})", i);
    EndpointTransition t{.name = name,
                         .from = edge.from,
                         .to = edge.to,
                         .expected_version = before.version,
                         .reason = std::string(edge.why),
                         .actor = "walker"};
    if (writes) {
      t.config_json = config;
      t.message = "edge " + std::to_string(i);
    }
    FERRY_ASSERT_OK_AND_ASSIGN(EndpointRecord after, store_->TransitionEndpoint(t));
    EXPECT_EQ(after.state, edge.to);
    EXPECT_EQ(after.version, before.version + 1);
    EXPECT_EQ(after.config_json, writes ? config : before.config_json);
    EXPECT_EQ(after.message, writes ? "edge " + std::to_string(i) : before.message);
    EXPECT_EQ(after.created_at, before.created_at);
    EXPECT_GE(after.updated_at, before.updated_at);
    FERRY_ASSERT_OK_AND_ASSIGN(EndpointRecord stored, store_->GetEndpoint(name));
    EXPECT_EQ(stored.state, edge.to);
    EXPECT_EQ(stored.version, before.version + 1);
    EXPECT_EQ(stored.config_json, after.config_json);
    EXPECT_EQ(stored.message, after.message);

    const std::vector<EventRecord> events = Events(name);
    ASSERT_EQ(events.size(), events_before + 1);
    const EventRecord& e = events.back();
    EXPECT_EQ(e.kind, "Endpoint");
    EXPECT_EQ(e.resource, name);
    EXPECT_EQ(e.from, edge.from);
    EXPECT_EQ(e.to, edge.to);
    EXPECT_EQ(e.version, stored.version);
    EXPECT_EQ(e.actor, "walker");
    EXPECT_EQ(e.reason, edge.why);
    EXPECT_EQ(e.at, stored.updated_at);
  }
}

TEST_P(StateStoreConformance, EveryIllegalEndpointPairIsInvalidArgumentAndChangesNothing) {
  const KindTable& kind = EndpointKind();
  std::vector<std::string_view> targets = kind.states;
  targets.push_back("bogus");
  int checked = 0;
  for (std::string_view from : kind.states) {
    const std::string name = "from-" + std::string(from);
    MakeEndpoint(name);
    const EndpointRecord before = BringEndpointTo(name, from);
    ASSERT_EQ(before.state, from);
    const size_t events_before = Events("").size();
    for (std::string_view to : targets) {
      if (IsLegal(kind, from, to)) continue;
      SCOPED_TRACE(testing::Message() << from << " -> " << to);
      absl::StatusOr<EndpointRecord> r = store_->TransitionEndpoint(
          {.name = name, .from = from, .to = to, .expected_version = before.version});
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
      ++checked;
    }
    FERRY_ASSERT_OK_AND_ASSIGN(EndpointRecord after, store_->GetEndpoint(name));
    EXPECT_EQ(after.state, before.state);
    EXPECT_EQ(after.version, before.version);
    EXPECT_EQ(Events("").size(), events_before);
  }
  absl::StatusOr<EndpointRecord> r = store_->TransitionEndpoint({.name = "from-creating",
                                                                 .from = "bogus",
                                                                 .to = endpoint_state::kInService,
                                                                 .expected_version = 1});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  const size_t n = kind.states.size();
  EXPECT_EQ(checked, static_cast<int>(n * (n + 1) - kind.edges.size()));
}

TEST_P(StateStoreConformance, StaleEndpointVersionIsFailedPreconditionAndChangesNothing) {
  MakeEndpoint("churn", R"({"v": 1})");
  const EndpointRecord in_service = BringEndpointTo("churn", endpoint_state::kInService);
  ASSERT_EQ(in_service.version, 2);
  const size_t events_before = Events("").size();

  // Someone else already took creating -> in_service.
  absl::StatusOr<EndpointRecord> stale =
      store_->TransitionEndpoint({.name = "churn",
                                  .from = endpoint_state::kCreating,
                                  .to = endpoint_state::kInService,
                                  .expected_version = 1,
                                  .config_json = R"({"v": 2})"});
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  EXPECT_NE(stale.status().message().find("in_service@v2"), std::string::npos) << stale.status();
  // The right state at the wrong version.
  absl::StatusOr<EndpointRecord> wrong_version =
      store_->TransitionEndpoint({.name = "churn",
                                  .from = endpoint_state::kInService,
                                  .to = endpoint_state::kUpdating,
                                  .expected_version = 1,
                                  .config_json = R"({"v": 2})"});
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong_version.status())) << wrong_version.status();
  absl::StatusOr<EndpointRecord> missing =
      store_->TransitionEndpoint({.name = "nope",
                                  .from = endpoint_state::kCreating,
                                  .to = endpoint_state::kInService,
                                  .expected_version = 1});
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  absl::StatusOr<EndpointRecord> bad_config =
      store_->TransitionEndpoint({.name = "churn",
                                  .from = endpoint_state::kInService,
                                  .to = endpoint_state::kUpdating,
                                  .expected_version = 2,
                                  .config_json = "[1, 2]"});
  EXPECT_TRUE(absl::IsInvalidArgument(bad_config.status())) << bad_config.status();

  FERRY_ASSERT_OK_AND_ASSIGN(EndpointRecord after, store_->GetEndpoint("churn"));
  EXPECT_EQ(after.state, endpoint_state::kInService);
  EXPECT_EQ(after.version, 2);
  EXPECT_EQ(after.config_json, R"({"v": 1})");
  EXPECT_EQ(Events("").size(), events_before);
}

// --- Deployments ---

TEST_P(StateStoreConformance, CreateGetAndListDeployments) {
  MakeEndpoint("churn", R"({"variants": []})");
  MakeEndpoint("fraud");
  MakeEndpoint("quiet");
  FERRY_ASSERT_OK_AND_ASSIGN(
      DeploymentRecord d1,
      store_->CreateDeployment({.id = "d1",
                                .endpoint = "churn",
                                .strategy = "blue_green",
                                .spec_json = R"({"model": "churn", "version": 7})",
                                .from_config_json = R"({"variants": []})",
                                .idempotency_key = "k1",
                                .actor = "ferry deploy"}));
  EXPECT_EQ(d1.id, "d1");
  EXPECT_EQ(d1.endpoint, "churn");
  EXPECT_EQ(d1.state, deployment_state::kPending);
  EXPECT_EQ(d1.version, 1);
  EXPECT_EQ(d1.strategy, "blue_green");
  EXPECT_EQ(d1.spec_json, R"({"model": "churn", "version": 7})");
  EXPECT_EQ(d1.from_config_json, R"({"variants": []})");
  EXPECT_EQ(d1.to_config_json, "");
  EXPECT_EQ(d1.idempotency_key, "k1");
  EXPECT_NE(d1.created_at, absl::InfinitePast());
  EXPECT_EQ(d1.baking_since, absl::InfinitePast());
  EXPECT_EQ(d1.finished_at, absl::InfinitePast());
  EXPECT_EQ(d1.message, "");
  EXPECT_EQ(d1.actor, "ferry deploy");

  FERRY_ASSERT_OK_AND_ASSIGN(DeploymentRecord got, store_->GetDeployment("d1"));
  EXPECT_EQ(got.endpoint, "churn");
  EXPECT_EQ(got.strategy, "blue_green");
  EXPECT_EQ(got.spec_json, d1.spec_json);
  EXPECT_EQ(got.created_at, d1.created_at);
  EXPECT_EQ(got.actor, "ferry deploy");

  const std::vector<EventRecord> events = Events("d1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "Deployment");
  EXPECT_EQ(events[0].from, "");
  EXPECT_EQ(events[0].to, deployment_state::kPending);
  EXPECT_EQ(events[0].version, 1);
  EXPECT_EQ(events[0].actor, "ferry deploy");

  BringDeploymentTo("d1", deployment_state::kPromoted);
  MakeDeployment("d2", "fraud");
  MakeDeployment("d3", "churn");

  auto ids = [](const std::vector<DeploymentRecord>& ds) {
    std::vector<std::string> out;
    for (const DeploymentRecord& d : ds) out.push_back(d.id);
    return out;
  };
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> all, store_->ListDeployments("", 0));
  EXPECT_EQ(ids(all), (std::vector<std::string>{"d3", "d2", "d1"}));  // newest first
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> churn,
                             store_->ListDeployments("churn", 0));
  EXPECT_EQ(ids(churn), (std::vector<std::string>{"d3", "d1"}));
  EXPECT_EQ(churn[1].state, deployment_state::kPromoted);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> newest, store_->ListDeployments("", 2));
  EXPECT_EQ(ids(newest), (std::vector<std::string>{"d3", "d2"}));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> last,
                             store_->ListDeployments("churn", 1));
  EXPECT_EQ(ids(last), (std::vector<std::string>{"d3"}));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> none,
                             store_->ListDeployments("quiet", 0));
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(absl::IsNotFound(store_->ListDeployments("nope", 0).status()));
  absl::Status missing = store_->GetDeployment("d9").status();
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_NE(missing.message().find("d9"), std::string::npos) << missing;
}

TEST_P(StateStoreConformance, DeploymentCreationErrorsChangeNothing) {
  MakeEndpoint("churn");
  MakeDeployment("d1", "churn");
  BringDeploymentTo("d1", deployment_state::kFailed);
  const size_t events_before = Events("").size();
  const NewDeployment good{.id = "d2",
                           .endpoint = "churn",
                           .strategy = "shadow",
                           .spec_json = "{}",
                           .from_config_json = "{}"};

  NewDeployment unknown_endpoint = good;
  unknown_endpoint.endpoint = "nope";
  absl::Status s = store_->CreateDeployment(unknown_endpoint).status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_NE(s.message().find("nope"), std::string::npos) << s;

  NewDeployment taken = good;
  taken.id = "d1";
  s = store_->CreateDeployment(taken).status();
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;

  std::vector<std::pair<std::string, NewDeployment>> invalid;
  for (const char* id : {"", "-d", "d/1"}) {
    NewDeployment d = good;
    d.id = id;
    invalid.emplace_back(std::string("id ") + id, d);
  }
  for (const char* strategy : {"", "Canary", "linear"}) {
    NewDeployment d = good;
    d.strategy = strategy;
    invalid.emplace_back(std::string("strategy ") + strategy, d);
  }
  for (const char* json : {"", "[]", "{"}) {
    NewDeployment spec = good;
    spec.spec_json = json;
    invalid.emplace_back(std::string("spec_json ") + json, spec);
    NewDeployment from = good;
    from.from_config_json = json;
    invalid.emplace_back(std::string("from_config_json ") + json, from);
  }
  NewDeployment bad_endpoint = good;
  bad_endpoint.endpoint = "a b";
  invalid.emplace_back("endpoint 'a b'", bad_endpoint);
  for (const auto& [what, d] : invalid) {
    s = store_->CreateDeployment(d).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << what << ": " << s;
  }

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> all, store_->ListDeployments("", 0));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, "d1");
  EXPECT_EQ(Events("").size(), events_before);
  // And the good one is fine.
  FERRY_ASSERT_OK(store_->CreateDeployment(good).status());
}

TEST_P(StateStoreConformance, EveryLegalDeploymentEdgeMovesAndIsRecorded) {
  const KindTable& kind = DeploymentKind();
  const absl::Time t0 = absl::FromUnixMicros(1'800'000'000'123'456);
  for (size_t i = 0; i < kind.edges.size(); ++i) {
    const Edge& edge = kind.edges[i];
    SCOPED_TRACE(testing::Message() << edge.from << " -> " << edge.to);
    // One endpoint per edge: each has its deployment in flight.
    const std::string endpoint = "e" + std::to_string(i);
    const std::string id = "d" + std::to_string(i);
    MakeEndpoint(endpoint);
    MakeDeployment(id, endpoint);
    const DeploymentRecord before = BringDeploymentTo(id, edge.from);
    ASSERT_EQ(before.state, edge.from);
    const size_t events_before = Events(id).size();

    const absl::Time at = t0 + absl::Seconds(static_cast<int64_t>(i));
    const std::string to_config = fmt::format(R"({{"edge": {}}})", i);
    const bool writes = i % 2 == 0;
    DeploymentTransition t{.id = id,
                           .from = edge.from,
                           .to = edge.to,
                           .expected_version = before.version,
                           .reason = std::string(edge.why),
                           .actor = "walker",
                           .at = at};
    if (writes) {
      t.to_config_json = to_config;
      t.message = "error_rate 0.31 > 0.01 over 42 requests";
    }
    FERRY_ASSERT_OK_AND_ASSIGN(DeploymentRecord after, store_->TransitionDeployment(t));
    EXPECT_EQ(after.state, edge.to);
    EXPECT_EQ(after.version, before.version + 1);
    EXPECT_EQ(after.to_config_json, writes ? to_config : before.to_config_json);
    EXPECT_EQ(after.message, writes ? "error_rate 0.31 > 0.01 over 42 requests" : before.message);
    EXPECT_EQ(after.created_at, before.created_at);
    EXPECT_EQ(after.baking_since, edge.to == deployment_state::kBaking ? at : before.baking_since);
    EXPECT_EQ(after.finished_at, IsTerminal(kind, edge.to) ? at : absl::InfinitePast());
    FERRY_ASSERT_OK_AND_ASSIGN(DeploymentRecord stored, store_->GetDeployment(id));
    EXPECT_EQ(stored.state, edge.to);
    EXPECT_EQ(stored.version, before.version + 1);
    EXPECT_EQ(stored.baking_since, after.baking_since);
    EXPECT_EQ(stored.finished_at, after.finished_at);
    EXPECT_EQ(stored.to_config_json, after.to_config_json);
    EXPECT_EQ(stored.message, after.message);
    EXPECT_EQ(stored.spec_json, before.spec_json);

    const std::vector<EventRecord> events = Events(id);
    ASSERT_EQ(events.size(), events_before + 1);
    const EventRecord& e = events.back();
    EXPECT_EQ(e.kind, "Deployment");
    EXPECT_EQ(e.resource, id);
    EXPECT_EQ(e.from, edge.from);
    EXPECT_EQ(e.to, edge.to);
    EXPECT_EQ(e.version, stored.version);
    EXPECT_EQ(e.actor, "walker");
    EXPECT_EQ(e.reason, edge.why);
    EXPECT_EQ(e.at, at);
  }
}

TEST_P(StateStoreConformance, EveryIllegalDeploymentPairIsInvalidArgumentAndChangesNothing) {
  const KindTable& kind = DeploymentKind();
  std::vector<std::string_view> targets = kind.states;
  targets.push_back("bogus");
  int checked = 0;
  for (std::string_view from : kind.states) {
    const std::string id = "from-" + std::string(from);
    MakeEndpoint(id);
    MakeDeployment(id, id);
    const DeploymentRecord before = BringDeploymentTo(id, from);
    ASSERT_EQ(before.state, from);
    const size_t events_before = Events("").size();
    for (std::string_view to : targets) {
      if (IsLegal(kind, from, to)) continue;
      SCOPED_TRACE(testing::Message() << from << " -> " << to);
      absl::StatusOr<DeploymentRecord> r = store_->TransitionDeployment(
          {.id = id, .from = from, .to = to, .expected_version = before.version});
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
      ++checked;
    }
    FERRY_ASSERT_OK_AND_ASSIGN(DeploymentRecord after, store_->GetDeployment(id));
    EXPECT_EQ(after.state, before.state);
    EXPECT_EQ(after.version, before.version);
    EXPECT_EQ(after.finished_at, before.finished_at);
    EXPECT_EQ(Events("").size(), events_before);
  }
  const size_t n = kind.states.size();
  EXPECT_EQ(checked, static_cast<int>(n * (n + 1) - kind.edges.size()));
}

TEST_P(StateStoreConformance, StaleDeploymentVersionIsFailedPreconditionAndChangesNothing) {
  MakeEndpoint("churn");
  MakeDeployment("d1", "churn");
  const DeploymentRecord baking = BringDeploymentTo("d1", deployment_state::kBaking);
  ASSERT_EQ(baking.version, 2);
  const size_t events_before = Events("").size();

  // Two reconcilers saw it pending; the other one moved it first.
  absl::StatusOr<DeploymentRecord> stale =
      store_->TransitionDeployment({.id = "d1",
                                    .from = deployment_state::kPending,
                                    .to = deployment_state::kBaking,
                                    .expected_version = 1});
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  EXPECT_NE(stale.status().message().find("baking@v2"), std::string::npos) << stale.status();
  absl::StatusOr<DeploymentRecord> wrong_version =
      store_->TransitionDeployment({.id = "d1",
                                    .from = deployment_state::kBaking,
                                    .to = deployment_state::kPromoted,
                                    .expected_version = 1,
                                    .to_config_json = "{}"});
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong_version.status())) << wrong_version.status();
  absl::StatusOr<DeploymentRecord> missing =
      store_->TransitionDeployment({.id = "d9",
                                    .from = deployment_state::kPending,
                                    .to = deployment_state::kBaking,
                                    .expected_version = 1});
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();

  FERRY_ASSERT_OK_AND_ASSIGN(DeploymentRecord after, store_->GetDeployment("d1"));
  EXPECT_EQ(after.state, deployment_state::kBaking);
  EXPECT_EQ(after.version, 2);
  EXPECT_EQ(after.to_config_json, "");
  EXPECT_EQ(after.baking_since, baking.baking_since);
  EXPECT_EQ(Events("").size(), events_before);
}

TEST_P(StateStoreConformance, OneDeploymentInFlightPerEndpoint) {
  MakeEndpoint("churn");
  MakeEndpoint("fraud");
  MakeDeployment("d1", "churn");
  const size_t events_before = Events("").size();

  // Pending, then baking: a second one is refused, naming the first and its state.
  absl::Status refused = store_
                             ->CreateDeployment({.id = "d2",
                                                 .endpoint = "churn",
                                                 .strategy = "blue_green",
                                                 .spec_json = "{}",
                                                 .from_config_json = "{}"})
                             .status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_NE(refused.message().find("d1"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("pending"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("ferry rollback churn"), std::string::npos) << refused;
  EXPECT_TRUE(absl::IsNotFound(store_->GetDeployment("d2").status()));
  EXPECT_EQ(Events("").size(), events_before);

  BringDeploymentTo("d1", deployment_state::kBaking);
  refused = store_
                ->CreateDeployment({.id = "d2",
                                    .endpoint = "churn",
                                    .strategy = "canary",
                                    .spec_json = "{}",
                                    .from_config_json = "{}"})
                .status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(refused.message(),
            "endpoint churn has deployment d1 in flight (baking); wait for it or `ferry "
            "rollback churn`");

  // Another endpoint is not held up.
  MakeDeployment("f1", "fraud");

  // Once the one in flight is done, whatever the end, the next one may start.
  std::string live = "d1";
  int next = 2;
  for (std::string_view end :
       {deployment_state::kPromoted, deployment_state::kRolledBack, deployment_state::kFailed}) {
    SCOPED_TRACE(end);
    EXPECT_EQ(BringDeploymentTo(live, end).state, end);
    live = "d" + std::to_string(next++);
    EXPECT_EQ(MakeDeployment(live, "churn").state, deployment_state::kPending);
  }
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> churn,
                             store_->ListDeployments("churn", 0));
  ASSERT_EQ(churn.size(), 4u);
  int in_flight = 0;
  for (const DeploymentRecord& d : churn)
    in_flight += IsTerminal(DeploymentKind(), d.state) ? 0 : 1;
  EXPECT_EQ(in_flight, 1);
}

TEST_P(StateStoreConformance, DeploymentIdempotencyKeyReturnsTheFirstAndWritesNothing) {
  MakeEndpoint("churn");
  MakeEndpoint("fraud");
  const DeploymentRecord first = MakeDeployment("d1", "churn", "deploy-42");
  const size_t events_before = Events("").size();

  // A retry with another id (a new NewDeploymentId) gets the first one, in flight or not.
  FERRY_ASSERT_OK_AND_ASSIGN(DeploymentRecord retry,
                             store_->CreateDeployment({.id = "d2",
                                                       .endpoint = "churn",
                                                       .strategy = "canary",
                                                       .spec_json = "{}",
                                                       .from_config_json = "{}",
                                                       .idempotency_key = "deploy-42"}));
  EXPECT_EQ(retry.id, "d1");
  EXPECT_EQ(retry.state, deployment_state::kPending);
  EXPECT_EQ(retry.created_at, first.created_at);
  EXPECT_EQ(Events("").size(), events_before);
  BringDeploymentTo("d1", deployment_state::kRolledBack);
  const size_t events_after_end = Events("").size();
  FERRY_ASSERT_OK_AND_ASSIGN(retry, store_->CreateDeployment({.id = "d3",
                                                              .endpoint = "churn",
                                                              .strategy = "canary",
                                                              .spec_json = "{}",
                                                              .from_config_json = "{}",
                                                              .idempotency_key = "deploy-42"}));
  EXPECT_EQ(retry.id, "d1");
  EXPECT_EQ(retry.state, deployment_state::kRolledBack);
  EXPECT_EQ(Events("").size(), events_after_end);
  EXPECT_TRUE(absl::IsNotFound(store_->GetDeployment("d2").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetDeployment("d3").status()));

  // The key is per endpoint; another key makes a new deployment.
  EXPECT_EQ(MakeDeployment("f1", "fraud", "deploy-42").id, "f1");
  EXPECT_EQ(MakeDeployment("d4", "churn", "deploy-43").id, "d4");
  // A new key while one is in flight is refused as any other.
  absl::Status refused = store_
                             ->CreateDeployment({.id = "d5",
                                                 .endpoint = "churn",
                                                 .strategy = "canary",
                                                 .spec_json = "{}",
                                                 .from_config_json = "{}",
                                                 .idempotency_key = "deploy-44"})
                             .status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_NE(refused.message().find("d4"), std::string::npos) << refused;
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> all, store_->ListDeployments("", 0));
  EXPECT_EQ(all.size(), 3u);
}

// The status a loser of a deployment race must get: FailedPrecondition naming the deployment in
// flight, read after the race. InternalError (counted as neither won nor lost) otherwise.
absl::Status CheckNamesTheWinner(StateStore& store, const absl::Status& status) {
  if (!absl::IsFailedPrecondition(status)) return status;
  FERRY_ASSIGN_OR_RETURN(std::vector<DeploymentRecord> all, store.ListDeployments("churn", 0));
  if (all.size() != 1) {
    return absl::InternalError(fmt::format("{} deployments after the race", all.size()));
  }
  if (status.message().find(all[0].id) == std::string_view::npos) {
    return absl::InternalError(
        fmt::format("'{}' does not name the winner {}", status.message(), all[0].id));
  }
  return status;
}

TEST_P(StateStoreConformance, ThreadsRaceOneDeploymentPerEndpoint) {
  constexpr int kThreads = 8;
  MakeEndpoint("churn");
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<absl::Status> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = stores[i]
                       ->CreateDeployment({.id = "d" + std::to_string(i),
                                           .endpoint = "churn",
                                           .strategy = "canary",
                                           .spec_json = "{}",
                                           .from_config_json = "{}",
                                           .actor = "thread " + std::to_string(i)})
                       .status();
    });
  }
  for (std::thread& t : threads) t.join();

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> all,
                             store_->ListDeployments("churn", 0));
  ASSERT_EQ(all.size(), 1u);
  const std::string winner = all[0].id;
  int won = 0;
  int lost = 0;
  for (int i = 0; i < kThreads; ++i) {
    const absl::Status& s = results[i];
    if (s.ok()) {
      ++won;
      EXPECT_EQ("d" + std::to_string(i), winner);
    } else if (absl::IsFailedPrecondition(s)) {
      ++lost;
      EXPECT_NE(s.message().find(winner), std::string::npos) << s;
    } else {
      ADD_FAILURE() << s;
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(lost, kThreads - 1);
  EXPECT_EQ(Events(winner).size(), 1u);
  std::vector<EventRecord> events = Events("");
  EXPECT_EQ(std::count_if(events.begin(), events.end(),
                          [](const EventRecord& e) { return e.kind == "Deployment"; }),
            1);
}

TEST_P(StateStoreConformance, ProcessesRaceOneDeploymentPerEndpoint) {
  constexpr int kChildren = 4;
  MakeEndpoint("churn");
  store_.reset();  // no connection is carried across fork()

  std::map<int, int> codes;
  RaceInChildren(
      uri_, kChildren,
      [](StateStore& store, int i) {
        const absl::Status status = store
                                        .CreateDeployment({.id = "d" + std::to_string(i),
                                                           .endpoint = "churn",
                                                           .strategy = "canary",
                                                           .spec_json = "{}",
                                                           .from_config_json = "{}",
                                                           .actor = "child"})
                                        .status();
        return CheckNamesTheWinner(store, status);
      },
      codes);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(codes[kChildWon], 1);
  EXPECT_EQ(codes[kChildLost], kChildren - 1);
  EXPECT_EQ(codes[kChildOtherError], 0);
  EXPECT_EQ(codes[kChildOpenFailed], 0);

  store_ = Connect();
  ASSERT_NE(store_, nullptr);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<DeploymentRecord> all,
                             store_->ListDeployments("churn", 0));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].state, deployment_state::kPending);
  EXPECT_EQ(Events(all[0].id).size(), 1u);
}

// --- Variant stats ---

VariantStatsRecord Stats(const std::string& endpoint, const std::string& instance,
                         const std::string& variant, int64_t requests) {
  return {.endpoint = endpoint,
          .instance = instance,
          .variant = variant,
          .model = "churn",
          .model_version = 7,
          .endpoint_version = 3,
          .ready = true,
          .requests = requests,
          .errors = requests / 10,
          .latency_json = fmt::format(R"({{"bounds_ms": [0.5, 1, 5], "counts": [{}, 0, 0, 1]}})",
                                      requests - 1)};
}

TEST_P(StateStoreConformance, VariantStatsAreReplacedListedAndDeletedPerInstance) {
  const absl::Time at = absl::FromUnixMicros(1'800'000'000'000'001);
  VariantStatsRecord a_green = Stats("churn", "101@host:8080", "green", 5);
  a_green.updated_at = at;
  FERRY_ASSERT_OK(store_->PutVariantStats(a_green));
  FERRY_ASSERT_OK(store_->PutVariantStats(Stats("churn", "101@host:8080", "blue", 50)));
  FERRY_ASSERT_OK(store_->PutVariantStats(Stats("churn", "100@host:8081", "blue", 40)));
  FERRY_ASSERT_OK(store_->PutVariantStats(Stats("fraud", "101@host:8080", "blue", 9)));

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<VariantStatsRecord> rows,
                             store_->ListVariantStats("churn"));
  ASSERT_EQ(rows.size(), 3u);  // by instance, then variant
  EXPECT_EQ(rows[0].instance, "100@host:8081");
  EXPECT_EQ(rows[1].instance, "101@host:8080");
  EXPECT_EQ(rows[1].variant, "blue");
  EXPECT_EQ(rows[2].variant, "green");
  const VariantStatsRecord& g = rows[2];
  EXPECT_EQ(g.endpoint, "churn");
  EXPECT_EQ(g.model, "churn");
  EXPECT_EQ(g.model_version, 7);
  EXPECT_EQ(g.endpoint_version, 3);
  EXPECT_TRUE(g.ready);
  EXPECT_EQ(g.requests, 5);
  EXPECT_EQ(g.errors, 0);
  EXPECT_EQ(g.latency_json, a_green.latency_json);
  EXPECT_EQ(g.updated_at, at);
  EXPECT_NE(rows[0].updated_at, absl::InfinitePast());  // the store's clock

  // A new report replaces the whole row.
  VariantStatsRecord replaced = Stats("churn", "101@host:8080", "green", 80);
  replaced.ready = false;
  replaced.model_version = 8;
  replaced.endpoint_version = 4;
  replaced.errors = 79;
  replaced.updated_at = at + absl::Seconds(5);
  FERRY_ASSERT_OK(store_->PutVariantStats(replaced));
  FERRY_ASSERT_OK_AND_ASSIGN(rows, store_->ListVariantStats("churn"));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_FALSE(rows[2].ready);
  EXPECT_EQ(rows[2].model_version, 8);
  EXPECT_EQ(rows[2].endpoint_version, 4);
  EXPECT_EQ(rows[2].requests, 80);
  EXPECT_EQ(rows[2].errors, 79);
  EXPECT_EQ(rows[2].latency_json, replaced.latency_json);
  EXPECT_EQ(rows[2].updated_at, at + absl::Seconds(5));

  // A process that stops removes its rows of that endpoint only.
  FERRY_ASSERT_OK(store_->DeleteVariantStats("churn", "101@host:8080"));
  FERRY_ASSERT_OK_AND_ASSIGN(rows, store_->ListVariantStats("churn"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].instance, "100@host:8081");
  FERRY_ASSERT_OK_AND_ASSIGN(rows, store_->ListVariantStats("fraud"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].requests, 9);
  // Deleting what is not there is fine; an endpoint with no rows lists none.
  FERRY_ASSERT_OK(store_->DeleteVariantStats("churn", "101@host:8080"));
  FERRY_ASSERT_OK_AND_ASSIGN(rows, store_->ListVariantStats("nope"));
  EXPECT_TRUE(rows.empty());
}

TEST_P(StateStoreConformance, BadVariantStatsAreInvalidArgumentAndChangeNothing) {
  const VariantStatsRecord good = Stats("churn", "1@h:1", "blue", 10);
  FERRY_ASSERT_OK(store_->PutVariantStats(good));
  std::vector<std::pair<std::string, VariantStatsRecord>> bad;
  for (const char* latency : {"", "[]", "{", R"({"bounds_ms": [1, 2]})", R"({"counts": [1]})",
                              R"({"bounds_ms": [1, 2], "counts": [1, 2]})",        // no +Inf count
                              R"({"bounds_ms": [1, 2], "counts": [1, 2, 3, 4]})",  // one too many
                              R"({"bounds_ms": [2, 1], "counts": [0, 0, 0]})",     // decreasing
                              R"({"bounds_ms": [1, 1], "counts": [0, 0, 0]})",     // repeated
                              R"({"bounds_ms": [1, "2"], "counts": [0, 0, 0]})",   // not a number
                              R"({"bounds_ms": [1, 2], "counts": [0, -1, 0]})",    // negative
                              R"({"bounds_ms": [1, 2], "counts": [0, 1.5, 0]})",   // not an integer
                              R"({"bounds_ms": 1, "counts": [0, 0]})"}) {
    VariantStatsRecord s = good;
    s.requests = 99;
    s.latency_json = latency;
    bad.emplace_back(std::string("latency_json ") + latency, s);
  }
  for (int field = 0; field < 3; ++field) {
    VariantStatsRecord s = good;
    (field == 0 ? s.endpoint : field == 1 ? s.instance : s.variant) = "";
    bad.emplace_back("empty key field " + std::to_string(field), s);
  }
  VariantStatsRecord negative = good;
  negative.errors = -1;
  bad.emplace_back("negative errors", negative);
  for (const auto& [what, s] : bad) {
    const absl::Status status = store_->PutVariantStats(s);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << what << ": " << status;
  }
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<VariantStatsRecord> rows,
                             store_->ListVariantStats("churn"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].requests, 10);
  // An empty histogram (no bounds, one +Inf count) is a histogram.
  VariantStatsRecord empty = good;
  empty.latency_json = R"({"bounds_ms": [], "counts": [0]})";
  FERRY_ASSERT_OK(store_->PutVariantStats(empty));
}

// --- API keys ---

TEST_P(StateStoreConformance, ApiKeysAreCreatedListedAndRevoked) {
  const std::string hash(64, 'a');
  FERRY_ASSERT_OK_AND_ASSIGN(
      ApiKeyRecord k1,
      store_->CreateApiKey({.id = "k1", .name = "ci", .role = "invoke", .hash = hash}));
  EXPECT_EQ(k1.id, "k1");
  EXPECT_EQ(k1.name, "ci");
  EXPECT_EQ(k1.role, "invoke");
  EXPECT_EQ(k1.hash, hash);
  EXPECT_NE(k1.created_at, absl::InfinitePast());
  EXPECT_EQ(k1.revoked_at, absl::InfinitePast());
  // created_at as given; a revoked_at given at creation is ignored: a new key is live.
  const absl::Time earlier = absl::FromUnixMicros(1'600'000'000'000'000);
  FERRY_ASSERT_OK_AND_ASSIGN(ApiKeyRecord k0, store_->CreateApiKey({.id = "k0",
                                                                    .name = "ops",
                                                                    .role = "admin",
                                                                    .hash = std::string(64, 'b'),
                                                                    .created_at = earlier,
                                                                    .revoked_at = earlier}));
  EXPECT_EQ(k0.created_at, earlier);
  EXPECT_EQ(k0.revoked_at, absl::InfinitePast());

  absl::Status taken =
      store_->CreateApiKey({.id = "k1", .name = "other", .role = "admin", .hash = hash}).status();
  EXPECT_TRUE(absl::IsAlreadyExists(taken)) << taken;

  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ApiKeyRecord> keys, store_->ListApiKeys());
  ASSERT_EQ(keys.size(), 2u);  // by creation time
  EXPECT_EQ(keys[0].id, "k0");
  EXPECT_EQ(keys[0].role, "admin");
  EXPECT_EQ(keys[1].id, "k1");
  EXPECT_EQ(keys[1].name, "ci");  // not overwritten by the refused duplicate

  FERRY_ASSERT_OK(store_->RevokeApiKey("k1"));
  FERRY_ASSERT_OK_AND_ASSIGN(keys, store_->ListApiKeys());
  ASSERT_EQ(keys.size(), 2u);  // revoked ones are listed
  const absl::Time revoked = keys[1].revoked_at;
  EXPECT_NE(revoked, absl::InfinitePast());
  EXPECT_GE(revoked, keys[1].created_at);
  EXPECT_EQ(keys[0].revoked_at, absl::InfinitePast());
  FERRY_ASSERT_OK(store_->RevokeApiKey("k1"));  // again: the first time stays
  FERRY_ASSERT_OK_AND_ASSIGN(keys, store_->ListApiKeys());
  EXPECT_EQ(keys[1].revoked_at, revoked);

  absl::Status missing = store_->RevokeApiKey("k9");
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_NE(missing.message().find("k9"), std::string::npos) << missing;
}

TEST_P(StateStoreConformance, BadApiKeysAreInvalidArgumentAndChangeNothing) {
  const std::string hash(64, 'a');
  const std::vector<std::pair<std::string, ApiKeyRecord>> bad = {
      {"empty id", {.id = "", .role = "invoke", .hash = hash}},
      {"empty role", {.id = "k1", .role = "", .hash = hash}},
      {"unknown role", {.id = "k1", .role = "root", .hash = hash}},
      {"role case", {.id = "k1", .role = "Admin", .hash = hash}},
      {"empty hash", {.id = "k1", .role = "invoke", .hash = ""}},
  };
  for (const auto& [what, k] : bad) {
    const absl::Status status = store_->CreateApiKey(k).status();
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << what << ": " << status;
  }
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<ApiKeyRecord> keys, store_->ListApiKeys());
  EXPECT_TRUE(keys.empty());
}

}  // namespace
// --- Jobs (batch jobs, monitor runs) ---

TEST_P(StateStoreConformance, CreateGetListJobsAndIdempotencyKey) {
  FERRY_ASSERT_OK_AND_ASSIGN(JobRecord b1, store_->CreateJob({.id = "b1",
                                                              .kind = "BatchJob",
                                                              .subject = "churn:7",
                                                              .spec_json = R"({"input": "a"})",
                                                              .idempotency_key = "k1",
                                                              .actor = "ana"}));
  EXPECT_EQ(b1.state, batch_state::kQueued);
  EXPECT_EQ(b1.version, 1);
  EXPECT_EQ(b1.kind, "BatchJob");
  EXPECT_EQ(b1.subject, "churn:7");
  EXPECT_EQ(b1.spec_json, R"({"input": "a"})");
  EXPECT_EQ(b1.result_json, "{}");
  EXPECT_EQ(b1.actor, "ana");
  EXPECT_EQ(b1.started_at, absl::InfinitePast());
  // The same key again returns the first job and writes nothing.
  const size_t events_before = Events("").size();
  FERRY_ASSERT_OK_AND_ASSIGN(
      JobRecord again,
      store_->CreateJob(
          {.id = "b2", .kind = "BatchJob", .subject = "churn:7", .idempotency_key = "k1"}));
  EXPECT_EQ(again.id, "b1");
  EXPECT_EQ(Events("").size(), events_before);
  absl::StatusOr<JobRecord> missing = store_->GetJob("b2");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  // The same key in another kind is another job.
  MakeJob("m1", MonitorRunKind(), "churn", "k1");
  MakeJob("b3", BatchJobKind(), "fraud:1");
  MakeJob("m2", MonitorRunKind(), "fraud");

  auto ids = [](const std::vector<JobRecord>& js) {
    std::vector<std::string> out;
    for (const JobRecord& j : js) out.push_back(j.id);
    return out;
  };
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<JobRecord> batch, store_->ListJobs("BatchJob", "", 0));
  EXPECT_EQ(ids(batch), (std::vector<std::string>{"b3", "b1"}));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<JobRecord> monitors,
                             store_->ListJobs("MonitorRun", "churn", 0));
  EXPECT_EQ(ids(monitors), (std::vector<std::string>{"m1"}));
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<JobRecord> one, store_->ListJobs("BatchJob", "", 1));
  EXPECT_EQ(ids(one), (std::vector<std::string>{"b3"}));

  const std::vector<EventRecord> events = Events("b1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "BatchJob");
  EXPECT_EQ(events[0].to, "queued");
}

TEST_P(StateStoreConformance, JobCreationErrorsChangeNothing) {
  MakeJob("b1", BatchJobKind(), "churn:7");
  const size_t events_before = Events("").size();
  absl::StatusOr<JobRecord> kind = store_->CreateJob({.id = "x1", .kind = "Backfill"});
  EXPECT_TRUE(absl::IsInvalidArgument(kind.status())) << kind.status();
  absl::StatusOr<JobRecord> id = store_->CreateJob({.id = "../b", .kind = "BatchJob"});
  EXPECT_TRUE(absl::IsInvalidArgument(id.status())) << id.status();
  absl::StatusOr<JobRecord> spec =
      store_->CreateJob({.id = "b2", .kind = "BatchJob", .spec_json = "[1]"});
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << spec.status();
  absl::StatusOr<JobRecord> taken = store_->CreateJob({.id = "b1", .kind = "BatchJob"});
  EXPECT_TRUE(absl::IsAlreadyExists(taken.status())) << taken.status();
  EXPECT_EQ(Events("").size(), events_before);
  FERRY_ASSERT_OK_AND_ASSIGN(std::vector<JobRecord> all, store_->ListJobs("BatchJob", "", 0));
  EXPECT_EQ(all.size(), 1u);
}

TEST_P(StateStoreConformance, EveryLegalJobEdgeMovesAndIsRecorded) {
  for (const KindTable* kind : {&BatchJobKind(), &MonitorRunKind()}) {
    for (size_t i = 0; i < kind->edges.size(); ++i) {
      const Edge& edge = kind->edges[i];
      SCOPED_TRACE(testing::Message() << kind->name << " " << edge.from << " -> " << edge.to);
      const std::string id = fmt::format("{}{}", kind->name, i);
      MakeJob(id, *kind, "churn");
      const JobRecord before = BringJobTo(id, *kind, edge.from);
      ASSERT_EQ(before.state, edge.from);
      const size_t events_before = Events(id).size();
      const bool writes = i % 2 == 0;
      JobTransition t{.id = id,
                      .from = edge.from,
                      .to = edge.to,
                      .expected_version = before.version,
                      .reason = std::string(edge.why),
                      .actor = "walker"};
      if (writes) {
        t.result_json = R"({"rows": 42})";
        t.message = "2 of 3 files scored";
        t.owner_pid = 4242;
        t.owner_host = "host1";
      }
      FERRY_ASSERT_OK_AND_ASSIGN(JobRecord after, store_->TransitionJob(t));
      EXPECT_EQ(after.state, edge.to);
      EXPECT_EQ(after.version, before.version + 1);
      EXPECT_EQ(after.result_json, writes ? R"({"rows": 42})" : before.result_json);
      EXPECT_EQ(after.message, writes ? "2 of 3 files scored" : before.message);
      EXPECT_EQ(after.owner_pid, writes ? 4242 : before.owner_pid);
      EXPECT_EQ(after.owner_host, writes ? "host1" : before.owner_host);
      if (edge.to == "running") {
        EXPECT_GE(after.started_at, before.created_at);
      } else {
        EXPECT_EQ(after.started_at, before.started_at);
      }
      EXPECT_EQ(after.finished_at != absl::InfinitePast(),
                IsTerminal(*kind, edge.to) || before.finished_at != absl::InfinitePast());
      FERRY_ASSERT_OK_AND_ASSIGN(JobRecord stored, store_->GetJob(id));
      EXPECT_EQ(stored.state, edge.to);
      EXPECT_EQ(stored.version, after.version);
      EXPECT_EQ(stored.result_json, after.result_json);
      const std::vector<EventRecord> events = Events(id);
      ASSERT_EQ(events.size(), events_before + 1);
      EXPECT_EQ(events.back().kind, kind->name);
      EXPECT_EQ(events.back().from, edge.from);
      EXPECT_EQ(events.back().to, edge.to);
      EXPECT_EQ(events.back().reason, edge.why);
    }
  }
}

TEST_P(StateStoreConformance, EveryIllegalJobPairIsInvalidArgumentAndChangesNothing) {
  for (const KindTable* kind : {&BatchJobKind(), &MonitorRunKind()}) {
    std::vector<std::string_view> targets = kind->states;
    targets.push_back("bogus");
    int checked = 0;
    for (std::string_view from : kind->states) {
      const std::string id = fmt::format("{}-{}", kind->name, from);
      MakeJob(id, *kind, "churn");
      const JobRecord before = BringJobTo(id, *kind, from);
      ASSERT_EQ(before.state, from);
      const size_t events_before = Events("").size();
      for (std::string_view to : targets) {
        if (IsLegal(*kind, from, to)) continue;
        SCOPED_TRACE(testing::Message() << kind->name << " " << from << " -> " << to);
        absl::StatusOr<JobRecord> r = store_->TransitionJob(
            {.id = id, .from = from, .to = to, .expected_version = before.version});
        EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
        ++checked;
      }
      FERRY_ASSERT_OK_AND_ASSIGN(JobRecord after, store_->GetJob(id));
      EXPECT_EQ(after.state, before.state);
      EXPECT_EQ(after.version, before.version);
      EXPECT_EQ(Events("").size(), events_before);
    }
    const size_t n = kind->states.size();
    EXPECT_EQ(checked, static_cast<int>(n * (n + 1) - kind->edges.size()));
  }
}

TEST_P(StateStoreConformance, StaleJobVersionIsFailedPreconditionAndResultNeedsItsState) {
  MakeJob("b1", BatchJobKind(), "churn:7");
  const JobRecord running = BringJobTo("b1", BatchJobKind(), batch_state::kRunning);
  absl::StatusOr<JobRecord> stale = store_->TransitionJob({.id = "b1",
                                                           .from = batch_state::kQueued,
                                                           .to = batch_state::kRunning,
                                                           .expected_version = 1});
  EXPECT_TRUE(absl::IsFailedPrecondition(stale.status())) << stale.status();
  absl::StatusOr<JobRecord> missing = store_->TransitionJob({.id = "b9",
                                                             .from = batch_state::kQueued,
                                                             .to = batch_state::kRunning,
                                                             .expected_version = 1});
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();

  ASSERT_TRUE(store_->SetJobResult("b1", batch_state::kRunning, R"({"files_done": 1})").ok());
  FERRY_ASSERT_OK_AND_ASSIGN(JobRecord got, store_->GetJob("b1"));
  EXPECT_EQ(got.result_json, R"({"files_done": 1})");
  EXPECT_EQ(got.version, running.version);  // progress is not a transition
  absl::Status wrong_state = store_->SetJobResult("b1", batch_state::kQueued, "{}");
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong_state)) << wrong_state;
  absl::Status not_object = store_->SetJobResult("b1", batch_state::kRunning, "3");
  EXPECT_TRUE(absl::IsInvalidArgument(not_object)) << not_object;
  FERRY_ASSERT_OK_AND_ASSIGN(JobRecord after, store_->GetJob("b1"));
  EXPECT_EQ(after.result_json, R"({"files_done": 1})");
}

TEST_P(StateStoreConformance, ThreadsRaceOneJobTransition) {
  constexpr int kThreads = 8;
  MakeJob("b1", BatchJobKind(), "churn:7");
  std::vector<std::unique_ptr<StateStore>> stores;
  for (int i = 0; i < kThreads; ++i) {
    stores.push_back(Connect());
    ASSERT_NE(stores.back(), nullptr);
  }
  std::vector<absl::Status> results(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = stores[i]
                       ->TransitionJob({.id = "b1",
                                        .from = batch_state::kQueued,
                                        .to = batch_state::kRunning,
                                        .expected_version = 1,
                                        .actor = "thread " + std::to_string(i),
                                        .owner_pid = 100 + i})
                       .status();
    });
  }
  for (std::thread& t : threads) t.join();
  int won = -1;
  int lost = 0;
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].ok()) {
      EXPECT_EQ(won, -1) << "two winners";
      won = i;
    } else if (absl::IsFailedPrecondition(results[i])) {
      ++lost;
    } else {
      ADD_FAILURE() << results[i];
    }
  }
  ASSERT_GE(won, 0);
  EXPECT_EQ(lost, kThreads - 1);
  FERRY_ASSERT_OK_AND_ASSIGN(JobRecord after, store_->GetJob("b1"));
  EXPECT_EQ(after.owner_pid, 100 + won);
  EXPECT_EQ(after.version, 2);
  EXPECT_EQ(Events("b1").size(), 2u);
}

}  // namespace ferry::state
