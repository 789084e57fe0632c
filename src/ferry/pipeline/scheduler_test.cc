// The scheduler, driven through the runner (StartRun / ResumeRun) against the real pieces: the
// SQLite state store, the local lake and LocalExecutor running short `sh` scripts. Each step
// appends "<task> <attempt>" to a ledger file in its project folder, so a test knows exactly
// what ran.
//
// The key test kills the run at every persistence point in turn (a FaultyStateStore refuses every
// write after the K-th, in a child process that then exits, as `kill -9` would leave it) and checks
// that `--resume` completes the run without running again anything the store had as succeeded.

#include "ferry/pipeline/scheduler.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ferry/common/clock.h"
#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/config/pipeline_spec.h"
#include "ferry/config/project.h"
#include "ferry/exec/local_executor.h"
#include "ferry/pipeline/internal/counting_state_store.h"
#include "ferry/pipeline/internal/faulty_state_store.h"
#include "ferry/pipeline/runner.h"
#include "ferry/pipeline/step_kind.h"
#include "ferry/state/kinds.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ferry::pipeline {
namespace {

namespace ts = state::task_state;
namespace rs = state::run_state;
using internal::CountingStateStore;
using internal::FaultyStateStore;

constexpr char kPipeline[] = "p";  // every test's pipeline is <project>/p.yaml

// --- Pipelines ----------------------------------------------------------------------------------

std::string ChannelVar(const std::string& step) {
  std::string out = "SM_CHANNEL_";
  for (char c : step) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return out;
}

// A command step whose script appends "<name> <attempt>" to the project's ledger, runs `body`
// (shell lines that may exit early), then writes "<name>(<its inputs' outputs>)" to
// output/data/out. `fields` are extra YAML lines of the step ("    retries: 2\n").
std::string ScriptStep(const std::string& name, const std::vector<std::string>& needs,
                       const std::string& body = "", const std::string& fields = "") {
  std::string yaml = fmt::format("  {}:\n", name);
  if (!needs.empty()) yaml += fmt::format("    needs: [{}]\n", fmt::join(needs, ", "));
  yaml += fields;
  yaml += "    command: |-\n";
  yaml += fmt::format("      echo \"{} $FERRY_ATTEMPT\" >> ledger\n", name);
  if (!body.empty()) yaml += "      " + body + "\n";
  if (needs.empty()) {
    yaml += fmt::format("      printf '{}()' > \"$SM_OUTPUT_DATA_DIR/out\"\n", name);
  } else {
    std::string inputs;
    for (const std::string& n : needs) inputs += fmt::format(" \"${}/out\"", ChannelVar(n));
    yaml += fmt::format("      printf '{}(%s)' \"$(cat{})\" > \"$SM_OUTPUT_DATA_DIR/out\"\n", name,
                        inputs);
  }
  return yaml;
}

// a -> {b, c} -> d -> e. `bodies` adds shell lines to some steps.
std::string Diamond(int max_parallel, const std::map<std::string, std::string>& bodies = {}) {
  auto body = [&](const std::string& step) {
    auto it = bodies.find(step);
    return it == bodies.end() ? std::string() : it->second;
  };
  return fmt::format("max_parallel: {}\nsteps:\n", max_parallel) + ScriptStep("a", {}, body("a")) +
         ScriptStep("b", {"a"}, body("b")) + ScriptStep("c", {"a"}, body("c")) +
         ScriptStep("d", {"b", "c"}, body("d")) + ScriptStep("e", {"d"}, body("e"));
}

const std::vector<std::string> kDiamondTasks = {"a", "b", "c", "d", "e"};
const std::map<std::string, std::string> kDiamondOutputs = {{"a", "a()"},
                                                            {"b", "b(a())"},
                                                            {"c", "c(a())"},
                                                            {"d", "d(b(a())c(a()))"},
                                                            {"e", "e(d(b(a())c(a())))"}};

// --- A project folder ---------------------------------------------------------------------------

// One project: <root>/ferry.yaml, <root>/p.yaml, and the state store and lake under <root>.
struct Sandbox {
  std::string root;
  config::ProjectConfig project;
  config::PipelineSpec spec;
  std::unique_ptr<state::StateStore> store;  // null until OpenStores()
  std::unique_ptr<storage::ArtifactStore> lake;

  // Writes the files and loads the project and the pipeline; opens nothing.
  static absl::StatusOr<Sandbox> Create(const std::string& root, const std::string& pipeline_yaml,
                                        const std::string& ferry_yaml = "") {
    FERRY_RETURN_IF_ERROR(MakeDirs(root));
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(root + "/ferry.yaml", ferry_yaml, false));
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(root + "/p.yaml", pipeline_yaml, false));
    Sandbox s;
    s.root = root;
    FERRY_ASSIGN_OR_RETURN(s.project, config::LoadProject(root));
    FERRY_ASSIGN_OR_RETURN(
        s.spec, LoadAndValidate(root + "/p.yaml", s.project, StepKindRegistry::Default()));
    return s;
  }

  absl::Status OpenStores() {
    FERRY_ASSIGN_OR_RETURN(store, state::OpenStateStore("sqlite://" + root + "/state.db"));
    FERRY_ASSIGN_OR_RETURN(lake, storage::OpenArtifactStore("file://" + root + "/lake"));
    return absl::OkStatus();
  }

  // A context over `over` (the real store, or a decorator of it).
  RunContext Context(exec::Executor& executor, state::StateStore& over,
                     const std::atomic<bool>* cancel = nullptr,
                     RunObserver* observer = nullptr) const {
    RunContext ctx;
    ctx.project = &project;
    ctx.store = &over;
    ctx.lake = lake.get();
    ctx.executor = &executor;
    ctx.clock = &SystemClock::Get();
    ctx.kinds = &StepKindRegistry::Default();
    ctx.observer = observer;
    ctx.cancel = cancel;
    return ctx;
  }

  // Starts a run of p.yaml on the real store with a fresh executor.
  absl::StatusOr<state::PipelineRunRecord> Run(const RunRequest& req = {}) {
    exec::LocalExecutor executor;
    return StartRun(Context(executor, *store), spec, req);
  }
  absl::StatusOr<state::PipelineRunRecord> Resume(const std::string& run_id) {
    exec::LocalExecutor executor;
    return ResumeRun(Context(executor, *store), run_id);
  }

  // The ledger's lines, in the order they were appended.
  std::vector<std::string> Ledger() const {
    absl::StatusOr<std::string> text = ReadFile(root + "/ledger");
    std::vector<std::string> lines;
    if (!text.ok()) return lines;
    size_t start = 0;
    while (start < text->size()) {
      size_t nl = text->find('\n', start);
      if (nl == std::string::npos) nl = text->size();
      lines.push_back(text->substr(start, nl - start));
      start = nl + 1;
    }
    return lines;
  }

  absl::StatusOr<std::map<std::string, state::TaskRunRecord>> Tasks(const std::string& run_id) {
    FERRY_ASSIGN_OR_RETURN(std::vector<state::TaskRunRecord> tasks, store->GetTasks(run_id));
    std::map<std::string, state::TaskRunRecord> out;
    for (state::TaskRunRecord& t : tasks) out[t.task] = std::move(t);
    return out;
  }

  std::string TaskDir(const std::string& run_id, const std::string& task) const {
    return *storage::layout::TaskDir(kPipeline, run_id, task);
  }

  // What a task left in output/data/out of the checkpoint `output_uri`.
  std::string Output(const std::string& output_uri) {
    absl::StatusOr<std::string> text = lake->Get(output_uri + "/output/data/out");
    return text.ok() ? *text : "<" + std::string(text.status().message()) + ">";
  }
};

int Count(const std::vector<std::string>& ledger, const std::string& task) {
  return static_cast<int>(std::count_if(ledger.begin(), ledger.end(), [&](const std::string& l) {
    return l.rfind(task + " ", 0) == 0;
  }));
}

// The attempt number of the task's last line in the ledger; 0 when it never ran.
int LastAttempt(const std::vector<std::string>& ledger, const std::string& task) {
  for (auto it = ledger.rbegin(); it != ledger.rend(); ++it) {
    if (it->rfind(task + " ", 0) == 0) return std::stoi(it->substr(task.size() + 1));
  }
  return 0;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> Outcomes(state::StateStore& store, const std::string& run_id,
                                  const std::string& task) {
  std::vector<std::string> out;
  absl::StatusOr<std::vector<state::AttemptRecord>> attempts = store.GetAttempts(run_id, task);
  EXPECT_TRUE(attempts.ok()) << attempts.status();
  if (attempts.ok()) {
    for (const state::AttemptRecord& a : *attempts) out.push_back(a.outcome);
  }
  return out;
}

// Counts ticks and lets the loop turn often, so that the cancel flag is seen at once.
class TickObserver final : public RunObserver {
 public:
  explicit TickObserver(absl::Duration tick) : tick_(tick) {}
  void OnTaskChanged(const state::TaskRunRecord&, const std::string&) override {}
  void OnTick() override { ++ticks_; }
  absl::Duration tick() const override { return tick_; }
  int ticks() const { return ticks_; }

 private:
  absl::Duration tick_;
  int ticks_ = 0;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_scheduler_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }

  // The test's project, in dir_, with its stores open.
  void Open(const std::string& pipeline_yaml, const std::string& ferry_yaml = "") {
    absl::StatusOr<Sandbox> s = Sandbox::Create(dir_, pipeline_yaml, ferry_yaml);
    ASSERT_TRUE(s.ok()) << s.status();
    sb_ = std::move(*s);
    absl::Status opened = sb_.OpenStores();
    ASSERT_TRUE(opened.ok()) << opened;
  }

  std::map<std::string, state::TaskRunRecord> Tasks(const std::string& run_id) {
    absl::StatusOr<std::map<std::string, state::TaskRunRecord>> tasks = sb_.Tasks(run_id);
    EXPECT_TRUE(tasks.ok()) << tasks.status();
    return tasks.ok() ? *tasks : std::map<std::string, state::TaskRunRecord>{};
  }

  // A first, complete run of the diamond.
  state::PipelineRunRecord RunDiamondOnce() {
    absl::StatusOr<state::PipelineRunRecord> run = sb_.Run();
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return {};
    EXPECT_EQ(run->state, rs::kSucceeded) << run->message;
    EXPECT_EQ(Sorted(sb_.Ledger()), (std::vector<std::string>{"a 1", "b 1", "c 1", "d 1", "e 1"}));
    return *run;
  }

  std::string dir_;
  Sandbox sb_;
};

// --- 1. A crash at every persistence point ------------------------------------------------------

// Runs StartRun of the sandbox's pipeline over a store that dies after `writes_before_crash`
// writes, in a child process that then exits like a killed `ferry run` (its task processes are
// killed with its executor). Returns the child's report: {ok, code, message, state, writes,
// crashed}.
absl::StatusOr<nlohmann::json> StartAndCrashInChild(const Sandbox& parent,
                                                    int writes_before_crash) {
  const std::string report_path = parent.root + "/child.json";
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // The child: nothing of the parent's gtest state may be touched; exit with _exit only.
    int code = 0;
    {
      Sandbox s;
      s.root = parent.root;
      s.project = parent.project;
      s.spec = parent.spec;
      if (!s.OpenStores().ok()) ::_exit(90);
      nlohmann::json report;
      {
        FaultyStateStore faulty(*s.store, writes_before_crash);
        exec::LocalExecutor executor;
        absl::StatusOr<state::PipelineRunRecord> run =
            StartRun(s.Context(executor, faulty), s.spec, {});
        report = {{"ok", run.ok()},
                  {"code", static_cast<int>(run.status().code())},
                  {"message", std::string(run.status().message())},
                  {"state", run.ok() ? run->state : ""},
                  {"writes", faulty.writes()},
                  {"crashed", faulty.crashed()}};
      }  // the executor goes: it kills what the run left running
      if (!WriteFileAtomic(report_path, report.dump(), false).ok()) code = 91;
    }
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(fmt::format("the child ended with status {:#x}", status));
  }
  FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(report_path));
  return nlohmann::json::parse(text);
}

// The store and the lake of a diamond run that ended well: every task succeeded with its
// checkpoint committed, and each output is what its inputs imply.
void ExpectDiamondDone(Sandbox& sb, const std::string& run_id) {
  absl::StatusOr<std::map<std::string, state::TaskRunRecord>> tasks = sb.Tasks(run_id);
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), kDiamondTasks.size());
  std::vector<std::string> ledger = sb.Ledger();
  for (const std::string& name : kDiamondTasks) {
    SCOPED_TRACE("task " + name);
    const state::TaskRunRecord& t = tasks->at(name);
    EXPECT_EQ(t.state, ts::kSucceeded);
    EXPECT_EQ(t.output_uri, sb.TaskDir(run_id, name));
    EXPECT_TRUE(sb.lake->CheckCommitted(t.output_uri).ok());
    EXPECT_EQ(sb.Output(t.output_uri), kDiamondOutputs.at(name));
    // The last attempt is the one that produced the checkpoint, and it ran to the end.
    EXPECT_EQ(LastAttempt(ledger, name), t.attempts);
    std::vector<std::string> outcomes = Outcomes(*sb.store, run_id, name);
    ASSERT_EQ(static_cast<int>(outcomes.size()), t.attempts);
    EXPECT_EQ(outcomes.back(), ts::kSucceeded);
  }
}

class CrashAtEveryWriteTest : public SchedulerTest, public ::testing::WithParamInterface<int> {};

TEST_P(CrashAtEveryWriteTest, ResumeCompletesWithoutRerunningWhatSucceeded) {
  const int max_parallel = GetParam();
  const std::string pipeline = Diamond(max_parallel);
  int clean_writes = -1;  // writes of the first run the faulty store let finish
  int last_k = -1;        // its budget
  for (int k = 0; k <= 30 && clean_writes < 0; ++k) {
    last_k = k;
    SCOPED_TRACE(fmt::format("crash after {} writes", k));
    absl::StatusOr<Sandbox> created = Sandbox::Create(fmt::format("{}/k{}", dir_, k), pipeline);
    ASSERT_TRUE(created.ok()) << created.status();
    Sandbox& sb = *created;

    absl::StatusOr<nlohmann::json> report = StartAndCrashInChild(sb, k);
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_TRUE(sb.OpenStores().ok());
    absl::StatusOr<std::vector<state::PipelineRunRecord>> runs = sb.store->ListRuns(kPipeline, 10);
    ASSERT_TRUE(runs.ok()) << runs.status();

    if (!(*report)["crashed"].get<bool>()) {
      // The budget covered the whole run: this is a clean run, and the end of the sweep.
      ASSERT_TRUE((*report)["ok"].get<bool>()) << report->dump();
      EXPECT_EQ((*report)["state"], rs::kSucceeded);
      clean_writes = (*report)["writes"].get<int>();
      ASSERT_EQ(runs->size(), 1u);
      ExpectDiamondDone(sb, runs->front().id);
      EXPECT_EQ(Sorted(sb.Ledger()), (std::vector<std::string>{"a 1", "b 1", "c 1", "d 1", "e 1"}));
      break;
    }
    // The store's failure reached the caller as it was, and nothing after it was written.
    EXPECT_FALSE((*report)["ok"].get<bool>()) << report->dump();
    EXPECT_EQ((*report)["code"].get<int>(), static_cast<int>(absl::StatusCode::kUnavailable))
        << report->dump();
    EXPECT_EQ((*report)["writes"].get<int>(), k);

    // What the dead owner left: the store's task states, the checkpoints in the lake, the ledger.
    std::map<std::string, state::TaskRunRecord> before;
    std::set<std::string> committed_before;
    if (k == 0) {
      ASSERT_EQ(runs->size(), 0u);  // CreateRun itself failed
    } else {
      ASSERT_EQ(runs->size(), 1u);
      absl::StatusOr<std::map<std::string, state::TaskRunRecord>> tasks =
          sb.Tasks(runs->front().id);
      ASSERT_TRUE(tasks.ok()) << tasks.status();
      before = *tasks;
      for (const std::string& name : kDiamondTasks) {
        if (sb.lake->CheckCommitted(sb.TaskDir(runs->front().id, name)).ok()) {
          committed_before.insert(name);
        }
      }
    }
    const std::vector<std::string> ledger_before = sb.Ledger();

    // A new owner, healthy store and new executor, takes over (or starts over when no run exists).
    absl::StatusOr<state::PipelineRunRecord> done = k == 0 ? sb.Run() : sb.Resume(runs->front().id);
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->state, rs::kSucceeded) << done->message;
    if (k > 0) {
      EXPECT_EQ(done->id, runs->front().id);
    }
    ExpectDiamondDone(sb, done->id);

    std::vector<std::string> ledger = sb.Ledger();
    for (const std::string& name : kDiamondTasks) {
      SCOPED_TRACE("task " + name);
      EXPECT_GE(Count(ledger, name), 1);
      bool succeeded = before.count(name) && before.at(name).state == ts::kSucceeded;
      // A checkpoint committed in the lake (its `succeeded` perhaps not yet persisted) counts too.
      if (succeeded || committed_before.count(name)) {
        EXPECT_EQ(Count(ledger_before, name), 1);
        EXPECT_EQ(Count(ledger, name), 1) << "ran again after the crash";
      }
      if (succeeded) {
        // Nothing about it changed: no new attempt.
        absl::StatusOr<std::map<std::string, state::TaskRunRecord>> after = sb.Tasks(done->id);
        ASSERT_TRUE(after.ok());
        EXPECT_EQ(after->at(name).attempts, before.at(name).attempts);
      }
    }
  }
  // The sweep ended at a budget that let the run finish, so it crashed at each write in turn.
  // With one slot: CreateRun, run -> running, one batch per task that starts it (with its
  // predecessor's end), e's end, run -> succeeded: 9 writes. A task still running when the loop
  // next wakes also gets its pid recorded (SetAttemptPid), at most one per task: up to 14. With
  // two slots, b and c may end in one batch.
  EXPECT_GE(clean_writes, max_parallel == 1 ? 9 : 8) << clean_writes;
  EXPECT_LE(clean_writes, 14) << clean_writes;
  // Every smaller budget crashed (checked in the loop). The clean run may need fewer writes than
  // its budget: how many tasks end in one batch, and which get a pid recorded, depends on timing,
  // so the run at budget k-1 may have needed k writes and this one fewer.
  EXPECT_LE(clean_writes, last_k);
}

INSTANTIATE_TEST_SUITE_P(MaxParallel, CrashAtEveryWriteTest, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return fmt::format("MaxParallel{}", info.param);
                         });

// --- 2. Event-driven readiness ------------------------------------------------------------------

TEST_F(SchedulerTest, FanOutWritesAConstantNumberOfTimesPerTask) {
  constexpr int kLeaves = 50;
  constexpr int kTasks = kLeaves + 2;
  std::string yaml = "max_parallel: 2\nsteps:\n" + ScriptStep("root", {});
  std::vector<std::string> leaves;
  for (int i = 0; i < kLeaves; ++i) {
    leaves.push_back(fmt::format("l{}", i));
    yaml += ScriptStep(leaves.back(), {"root"});
  }
  // The sink counts its input channels.
  yaml += fmt::format(
      "  sink:\n    needs: [{}]\n    command: |-\n      echo \"sink $FERRY_ATTEMPT\" >> ledger\n"
      "      ls \"$SM_INPUT_DIR/data\" | wc -l | tr -d ' ' > \"$SM_OUTPUT_DATA_DIR/out\"\n",
      fmt::join(leaves, ", "));
  Open(yaml);

  CountingStateStore counting(*sb_.store);
  exec::LocalExecutor executor;
  absl::StatusOr<state::PipelineRunRecord> run =
      StartRun(sb_.Context(executor, counting), sb_.spec, {});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kSucceeded) << run->message;

  const CountingStateStore::Counts& c = counting.counts();
  EXPECT_EQ(c.create_run, 1);
  EXPECT_EQ(c.transition_run, 2);             // queued -> running -> succeeded
  EXPECT_EQ(c.task_transitions, 3 * kTasks);  // pending -> queued -> running -> succeeded
  EXPECT_LE(c.set_attempt_pid, kTasks);       // only for tasks still running a turn after launch
  EXPECT_EQ(c.put_checkpoint, 0);             // indexed in the `succeeded` transition
  EXPECT_EQ(c.get_tasks, 1);                  // read once; never rescanned
  EXPECT_EQ(c.get_checkpoint, kTasks);        // one cache lookup per task, when it is ready
  // One batch per turn of the loop, and a turn per exit at most: root's start, one per exit
  // (each starting the next queued task), and the sink's end. At least 28: two exits per turn.
  EXPECT_LE(c.transition_tasks, kTasks + 1);
  EXPECT_GE(c.transition_tasks, 3 + kLeaves / 2);
  EXPECT_LE(c.writes(), 2 * kTasks + 4);

  std::vector<std::string> ledger = sb_.Ledger();
  EXPECT_EQ(static_cast<int>(ledger.size()), kTasks);
  EXPECT_EQ(ledger.front(), "root 1");
  EXPECT_EQ(ledger.back(), "sink 1");
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(sb_.Output(tasks.at("sink").output_uri), "50\n");

  // max_parallel holds, and is used: at most (and at some point exactly) two attempts overlap.
  std::vector<std::pair<absl::Time, int>> edges;  // +1 at a start, -1 at an end
  for (const auto& [name, t] : tasks) {
    EXPECT_EQ(t.state, ts::kSucceeded) << name;
    absl::StatusOr<std::vector<state::AttemptRecord>> attempts =
        sb_.store->GetAttempts(run->id, name);
    ASSERT_TRUE(attempts.ok());
    ASSERT_EQ(attempts->size(), 1u) << name;
    edges.emplace_back(attempts->front().started_at, +1);
    edges.emplace_back(attempts->front().finished_at, -1);
  }
  std::sort(edges.begin(), edges.end());  // at equal times, ends (-1) before starts
  int live = 0, most = 0;
  for (const auto& [at, delta] : edges) most = std::max(most, live += delta);
  EXPECT_EQ(most, 2);
}

// --- 3. Retries ---------------------------------------------------------------------------------

// r fails its first two attempts; `down` needs it.
std::string FlakyPipeline(int retries) {
  return "steps:\n" +
         ScriptStep("r", {}, "[ \"$FERRY_ATTEMPT\" -ge 3 ] || exit 1",
                    fmt::format("    retries: {}\n    retry_backoff: 10ms\n", retries)) +
         ScriptStep("down", {"r"});
}

TEST_F(SchedulerTest, RetriesUntilAnAttemptSucceeds) {
  Open(FlakyPipeline(2));
  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kSucceeded) << run->message;
  EXPECT_EQ(run->message, "");

  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(tasks.at("r").state, ts::kSucceeded);
  EXPECT_EQ(tasks.at("r").attempts, 3);
  EXPECT_EQ(tasks.at("r").exit_code, 0);
  EXPECT_EQ(Outcomes(*sb_.store, run->id, "r"),
            (std::vector<std::string>{"retrying", "retrying", "succeeded"}));
  absl::StatusOr<std::vector<state::AttemptRecord>> attempts = sb_.store->GetAttempts(run->id, "r");
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 3u);
  EXPECT_EQ((*attempts)[0].exit_code, 1);
  EXPECT_EQ((*attempts)[1].exit_code, 1);
  EXPECT_EQ((*attempts)[2].exit_code, 0);

  // The path through the state machine, with the backoff doubling from 10ms.
  absl::StatusOr<std::vector<state::EventRecord>> events = sb_.store->GetEvents(run->id + "/r");
  ASSERT_TRUE(events.ok());
  std::vector<std::string> path;
  for (const state::EventRecord& e : *events) {
    path.push_back(e.from + ">" + e.to + (e.to == ts::kRetrying ? " " + e.reason : ""));
  }
  EXPECT_EQ(path,
            (std::vector<std::string>{">pending", "pending>queued", "queued>running",
                                      "running>retrying exited with code 1; retry 1 of 2 in 10ms",
                                      "retrying>queued", "queued>running",
                                      "running>retrying exited with code 1; retry 2 of 2 in 20ms",
                                      "retrying>queued", "queued>running", "running>succeeded"}));

  EXPECT_EQ(tasks.at("down").state, ts::kSucceeded);
  EXPECT_EQ(sb_.Output(tasks.at("down").output_uri), "down(r())");
  EXPECT_EQ(sb_.Ledger(), (std::vector<std::string>{"r 1", "r 2", "r 3", "down 1"}));
}

// `ferry show` prints a task's message beside its state: once an attempt succeeds, the earlier
// failures are history (in the attempts and the events), not the task's message.
TEST_F(SchedulerTest, SucceededTaskKeepsNoFailureMessage) {
  Open(FlakyPipeline(2));
  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run();
  ASSERT_TRUE(run.ok()) << run.status();
  state::TaskRunRecord r = Tasks(run->id).at("r");
  EXPECT_EQ(r.state, ts::kSucceeded);
  EXPECT_EQ(r.message, "");
}

TEST_F(SchedulerTest, ExhaustedRetriesFailTheTaskAndWhatIsDownstream) {
  Open(FlakyPipeline(1));
  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kFailed);
  EXPECT_EQ(run->message, "r failed, down upstream_failed");

  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(tasks.at("r").state, ts::kFailed);
  EXPECT_EQ(tasks.at("r").attempts, 2);
  EXPECT_EQ(tasks.at("r").exit_code, 1);
  EXPECT_EQ(tasks.at("r").message, "exited with code 1");
  EXPECT_EQ(Outcomes(*sb_.store, run->id, "r"), (std::vector<std::string>{"retrying", "failed"}));
  EXPECT_EQ(tasks.at("down").state, ts::kUpstreamFailed);
  EXPECT_EQ(tasks.at("down").attempts, 0);
  EXPECT_EQ(sb_.Ledger(), (std::vector<std::string>{"r 1", "r 2"}));
  // `down`'s folder was laid out while `r` ran; it never ran, so the folder is gone again.
  EXPECT_TRUE(PathExists(sb_.root + "/lake/" + sb_.TaskDir(run->id, "r")));
  EXPECT_FALSE(PathExists(sb_.root + "/lake/" + sb_.TaskDir(run->id, "down")));
}

// --- 4. Timeout ---------------------------------------------------------------------------------

TEST_F(SchedulerTest, TimeoutKillsTheTaskAndFailsIt) {
  Open("steps:\n  slow:\n    command: sleep 30\n    timeout: 200ms\n",
       "executor: { kill_grace: 100ms }\n");
  absl::Time start = absl::Now();
  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // killed, not waited for
  EXPECT_EQ(run->state, rs::kFailed);
  EXPECT_EQ(run->message, "slow failed");

  state::TaskRunRecord slow = Tasks(run->id).at("slow");
  EXPECT_EQ(slow.state, ts::kFailed);
  EXPECT_EQ(slow.message, "timed out after 200ms");
  EXPECT_EQ(slow.exit_code, 128 + SIGTERM);
  EXPECT_EQ(slow.attempts, 1);
  EXPECT_EQ(Outcomes(*sb_.store, run->id, "slow"), (std::vector<std::string>{"failed"}));
}

// A task that ignores SIGTERM is killed once the grace period is over; the loop sleeps meanwhile
// (each turn of the loop ticks the observer, so a busy loop would tick thousands of times).
TEST_F(SchedulerTest, TimeoutEscalatesToSigkillWithoutBusyWaiting) {
  Open(
      "steps:\n  stubborn:\n    command: |-\n      trap '' TERM\n      sleep 30\n"
      "    timeout: 100ms\n",
      "executor: { kill_grace: 500ms }\n");
  TickObserver observer(absl::Seconds(1));
  exec::LocalExecutor executor;
  absl::StatusOr<state::PipelineRunRecord> run =
      StartRun(sb_.Context(executor, *sb_.store, nullptr, &observer), sb_.spec, {});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kFailed);
  state::TaskRunRecord stubborn = Tasks(run->id).at("stubborn");
  EXPECT_EQ(stubborn.message, "timed out after 100ms");
  EXPECT_EQ(stubborn.exit_code, 128 + SIGKILL);
  EXPECT_LE(observer.ticks(), 10);
}

// During a retry's backoff no process is live; the loop must still sleep until the backoff ends.
TEST_F(SchedulerTest, RetryBackoffWithoutBusyWaiting) {
  Open("steps:\n" + ScriptStep("r", {}, "[ \"$FERRY_ATTEMPT\" -ge 2 ] || exit 1",
                               "    retries: 1\n    retry_backoff: 500ms\n"));
  TickObserver observer(absl::Seconds(1));
  exec::LocalExecutor executor;
  absl::StatusOr<state::PipelineRunRecord> run =
      StartRun(sb_.Context(executor, *sb_.store, nullptr, &observer), sb_.spec, {});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kSucceeded) << run->message;
  EXPECT_EQ(sb_.Ledger(), (std::vector<std::string>{"r 1", "r 2"}));
  EXPECT_LE(observer.ticks(), 10);
}

// A run after one step changed: what is upstream of it is a cache hit, the step runs, and what
// is downstream is a cache hit again when the step's output did not change.
TEST_F(SchedulerTest, ChangedStepRunsBetweenCacheHits) {
  Open(Diamond(2));
  state::PipelineRunRecord first = RunDiamondOnce();
  absl::StatusOr<Sandbox> changed = Sandbox::Create(dir_, Diamond(2, {{"d", "true"}}));
  ASSERT_TRUE(changed.ok()) << changed.status();
  sb_.spec = changed->spec;

  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kSucceeded) << run->message;
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(tasks.at("a").state, ts::kCached);
  EXPECT_EQ(tasks.at("b").state, ts::kCached);
  EXPECT_EQ(tasks.at("c").state, ts::kCached);
  EXPECT_EQ(tasks.at("d").state, ts::kSucceeded);
  EXPECT_EQ(tasks.at("d").attempts, 1);
  EXPECT_EQ(tasks.at("e").state, ts::kCached);  // d's output is the same as before
  EXPECT_EQ(tasks.at("e").output_uri, sb_.TaskDir(first.id, "e"));
  // A cache hit has no folder in this run, though e's was laid out ahead while d ran.
  EXPECT_TRUE(PathExists(sb_.root + "/lake/" + sb_.TaskDir(run->id, "d")));
  EXPECT_FALSE(PathExists(sb_.root + "/lake/" + sb_.TaskDir(run->id, "e")));
  EXPECT_EQ(Sorted(sb_.Ledger()),
            (std::vector<std::string>{"a 1", "b 1", "c 1", "d 1", "d 1", "e 1"}));
}

// --- 5. Cancellation ----------------------------------------------------------------------------

TEST_F(SchedulerTest, CancelFlagStopsTheRunningTaskAndCancelsTheRest) {
  // One slot: `block` runs (until a file that never comes, at most ~20s), `other` waits queued,
  // `after` waits pending.
  Open(
      "max_parallel: 1\nsteps:\n"
      "  block:\n    command: |-\n"
      "      echo \"block $FERRY_ATTEMPT\" >> ledger\n"
      "      touch started\n"
      "      i=0\n"
      "      while [ ! -f release ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\n" +
      ScriptStep("other", {}) + ScriptStep("after", {"block"}));

  std::atomic<bool> cancel{false};
  // Like a signal handler: from another thread, once `block` is running.
  std::thread canceller([&] {
    for (int i = 0; i < 4000 && !PathExists(dir_ + "/started"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    cancel = true;
  });
  TickObserver observer(absl::Milliseconds(10));
  exec::LocalExecutor executor;
  absl::StatusOr<state::PipelineRunRecord> run =
      StartRun(sb_.Context(executor, *sb_.store, &cancel, &observer), sb_.spec, {});
  canceller.join();
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(PathExists(dir_ + "/started"));
  EXPECT_EQ(run->state, rs::kCancelled);
  EXPECT_EQ(run->message, "cancelled by a signal");
  EXPECT_EQ(executor.live(), 0);

  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(tasks.at("block").state, ts::kCancelled);
  EXPECT_EQ(tasks.at("block").exit_code, 128 + SIGTERM);
  EXPECT_EQ(tasks.at("block").attempts, 1);
  EXPECT_EQ(Outcomes(*sb_.store, run->id, "block"), (std::vector<std::string>{"cancelled"}));
  EXPECT_EQ(tasks.at("other").state, ts::kCancelled);  // was queued
  EXPECT_EQ(tasks.at("other").attempts, 0);
  EXPECT_EQ(tasks.at("after").state, ts::kCancelled);  // was pending
  EXPECT_EQ(tasks.at("after").attempts, 0);
  EXPECT_FALSE(PathExists(sb_.root + "/lake/" + sb_.TaskDir(run->id, "after")));
  EXPECT_EQ(sb_.Ledger(), (std::vector<std::string>{"block 1"}));
}

// --- 6. The cache and --only / --from -----------------------------------------------------------

TEST_F(SchedulerTest, SecondRunIsAllCacheHits) {
  Open(Diamond(2));
  state::PipelineRunRecord first = RunDiamondOnce();
  std::map<std::string, state::TaskRunRecord> first_tasks = Tasks(first.id);

  absl::StatusOr<state::PipelineRunRecord> second = sb_.Run();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->id, first.id);
  EXPECT_EQ(second->state, rs::kSucceeded) << second->message;
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(second->id);
  for (const std::string& name : kDiamondTasks) {
    SCOPED_TRACE("task " + name);
    EXPECT_EQ(tasks.at(name).state, ts::kCached);
    EXPECT_EQ(tasks.at(name).attempts, 0);
    // The first run's checkpoint, reused.
    EXPECT_EQ(tasks.at(name).output_uri, sb_.TaskDir(first.id, name));
    EXPECT_EQ(tasks.at(name).output_hash, first_tasks.at(name).output_hash);
    EXPECT_EQ(tasks.at(name).cache_key, first_tasks.at(name).cache_key);
  }
  EXPECT_EQ(sb_.Ledger().size(), 5u);  // nothing ran
}

TEST_F(SchedulerTest, OnlyRunsJustTheSelectedStep) {
  Open(Diamond(2));
  state::PipelineRunRecord first = RunDiamondOnce();

  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run({.only = {"d"}});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kSucceeded) << run->message;
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(tasks.at("a").state, ts::kCached);
  EXPECT_EQ(tasks.at("b").state, ts::kCached);
  EXPECT_EQ(tasks.at("c").state, ts::kCached);
  EXPECT_EQ(tasks.at("d").state, ts::kSucceeded);  // forced, though its checkpoint is current
  EXPECT_EQ(tasks.at("d").attempts, 1);
  EXPECT_EQ(tasks.at("d").output_uri, sb_.TaskDir(run->id, "d"));
  EXPECT_EQ(sb_.Output(tasks.at("d").output_uri), "d(b(a())c(a()))");
  EXPECT_EQ(tasks.at("e").state, ts::kSkipped);
  EXPECT_EQ(tasks.at("e").attempts, 0);
  EXPECT_EQ(Sorted(sb_.Ledger()),
            (std::vector<std::string>{"a 1", "b 1", "c 1", "d 1", "d 1", "e 1"}));
}

// a's cache hit releases b and c at once: c, not selected, must be skipped, not run or cached.
TEST_F(SchedulerTest, OnlySkipsWhatACacheHitReleasesButIsNotSelected) {
  Open(Diamond(2));
  state::PipelineRunRecord first = RunDiamondOnce();

  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run({.only = {"b"}});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kSucceeded) << run->message;
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(tasks.at("a").state, ts::kCached);
  EXPECT_EQ(tasks.at("b").state, ts::kSucceeded);
  EXPECT_EQ(tasks.at("b").attempts, 1);
  EXPECT_EQ(tasks.at("c").state, ts::kSkipped);
  EXPECT_EQ(tasks.at("d").state, ts::kSkipped);
  EXPECT_EQ(tasks.at("e").state, ts::kSkipped);
  EXPECT_EQ(Sorted(sb_.Ledger()),
            (std::vector<std::string>{"a 1", "b 1", "b 1", "c 1", "d 1", "e 1"}));
}

TEST_F(SchedulerTest, FromRunsTheStepAndWhatIsDownstream) {
  Open(Diamond(2));
  state::PipelineRunRecord first = RunDiamondOnce();

  absl::StatusOr<state::PipelineRunRecord> run = sb_.Run({.from = {"d"}});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state, rs::kSucceeded) << run->message;
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(run->id);
  EXPECT_EQ(tasks.at("a").state, ts::kCached);
  EXPECT_EQ(tasks.at("b").state, ts::kCached);
  EXPECT_EQ(tasks.at("c").state, ts::kCached);
  EXPECT_EQ(tasks.at("d").state, ts::kSucceeded);
  EXPECT_EQ(tasks.at("e").state, ts::kSucceeded);  // forced too, though d's output is unchanged
  EXPECT_EQ(sb_.Output(tasks.at("e").output_uri), "e(d(b(a())c(a())))");
  EXPECT_EQ(Sorted(sb_.Ledger()),
            (std::vector<std::string>{"a 1", "b 1", "c 1", "d 1", "d 1", "e 1", "e 1"}));
}

// --- 7. Resume after a failure ------------------------------------------------------------------

TEST_F(SchedulerTest, ResumeAfterAFailureRunsOnlyWhatDidNotSucceed) {
  Open(Diamond(
      2, {{"b", "[ -f flag ] || { echo 'no flag yet' > \"$SM_OUTPUT_DIR/failure\"; exit 3; }"}}));
  absl::StatusOr<state::PipelineRunRecord> failed = sb_.Run();
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state, rs::kFailed);
  EXPECT_EQ(failed->message, "b failed, d upstream_failed, e upstream_failed");
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(failed->id);
  EXPECT_EQ(tasks.at("a").state, ts::kSucceeded);
  EXPECT_EQ(tasks.at("b").state, ts::kFailed);
  EXPECT_EQ(tasks.at("b").exit_code, 3);
  EXPECT_EQ(tasks.at("b").message, "exited with code 3: no flag yet");
  EXPECT_EQ(tasks.at("c").state, ts::kSucceeded);
  EXPECT_EQ(tasks.at("d").state, ts::kUpstreamFailed);
  EXPECT_EQ(tasks.at("e").state, ts::kUpstreamFailed);

  ASSERT_TRUE(WriteFileAtomic(dir_ + "/flag", "", false).ok());
  absl::StatusOr<state::PipelineRunRecord> resumed = sb_.Resume(failed->id);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->id, failed->id);
  EXPECT_EQ(resumed->state, rs::kSucceeded) << resumed->message;
  ExpectDiamondDone(sb_, resumed->id);
  tasks = Tasks(resumed->id);
  EXPECT_EQ(tasks.at("a").attempts, 1);
  EXPECT_EQ(tasks.at("b").attempts, 2);
  EXPECT_EQ(tasks.at("c").attempts, 1);
  EXPECT_EQ(Outcomes(*sb_.store, resumed->id, "b"),
            (std::vector<std::string>{"failed", "succeeded"}));
  // a and c, which had succeeded, did not run again; b's second attempt is attempt 2.
  EXPECT_EQ(Sorted(sb_.Ledger()),
            (std::vector<std::string>{"a 1", "b 1", "b 2", "c 1", "d 1", "e 1"}));
}

// Checkpoints are committed in order but not flushed: a power loss can take one that the store
// records as done. A resume runs that task again instead of trusting the record.
TEST_F(SchedulerTest, ResumeRerunsADoneTaskWhoseCheckpointIsGone) {
  Open(Diamond(
      2, {{"b", "[ -f flag ] || { echo 'no flag yet' > \"$SM_OUTPUT_DIR/failure\"; exit 3; }"}}));
  absl::StatusOr<state::PipelineRunRecord> failed = sb_.Run();
  ASSERT_TRUE(failed.ok()) << failed.status();
  ASSERT_EQ(failed->state, rs::kFailed);
  // The power loss: c's manifest never reached the disk.
  std::string c_dir = sb_.root + "/lake/" + sb_.TaskDir(failed->id, "c");
  ASSERT_TRUE(PathExists(c_dir + "/manifest.json"));
  ASSERT_EQ(::unlink((c_dir + "/manifest.json").c_str()), 0);
  // A resume cannot write into a half-made version of c; it is cleared like a crashed attempt.
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/flag", "", false).ok());
  absl::StatusOr<state::PipelineRunRecord> resumed = sb_.Resume(failed->id);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->state, rs::kSucceeded) << resumed->message;
  ExpectDiamondDone(sb_, resumed->id);
  std::map<std::string, state::TaskRunRecord> tasks = Tasks(resumed->id);
  EXPECT_EQ(tasks.at("a").attempts, 1);
  EXPECT_EQ(tasks.at("c").attempts, 2);
  EXPECT_EQ(Sorted(sb_.Ledger()),
            (std::vector<std::string>{"a 1", "b 1", "b 2", "c 1", "c 2", "d 1", "e 1"}));
}

}  // namespace
}  // namespace ferry::pipeline
