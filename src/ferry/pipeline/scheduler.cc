#include "ferry/pipeline/scheduler.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/common/units.h"
#include "ferry/pipeline/checkpoint.h"
#include "ferry/pipeline/workdir.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"
#include "fmt/ranges.h"

namespace ferry::pipeline {

namespace ts = state::task_state;
namespace rs = state::run_state;

struct Scheduler::Node {
  const ResolvedStep* step = nullptr;
  state::TaskRunRecord rec;  // as last persisted
  // State and version after the transitions planned in the current batch: a batch may move a
  // task twice (pending -> queued -> running), each move expecting the version the previous wrote.
  std::string planned_state;
  int64_t planned_version = 0;
  std::string output_hash;  // once succeeded or cached
  std::string cache_error;  // why its cache key could not be computed (a declared file)
  std::vector<int> children;
  std::vector<int> parents;
  int unfinished_parents = 0;
  int base_attempts = 0;  // attempts before this drive queued it; retries count from here
  int64_t handle = 0;     // live process
  absl::Time deadline = absl::InfiniteFuture();
  bool timed_out = false;
  // Its folder is laid out for the next attempt, ahead of time (LayOutAhead).
  bool laid_out = false;
  std::string dir_key;  // runs/<p>/<r>/<task>
  std::string dir;      // its local folder
};

// The loop: each turn persists one batch of transitions (exits, the children they release,
// retries whose backoff ended, and the tasks moved into free slots) in one transaction, then
// launches the tasks that batch moved to `running`, then waits for the next exit or deadline.
class Scheduler::Impl {
 public:
  Impl(const SchedulerDeps& deps, const ResolvedPipeline& p, const Selection& sel)
      : d_(deps), p_(p), sel_(sel) {}

  absl::StatusOr<state::PipelineRunRecord> Drive() {
    FERRY_RETURN_IF_ERROR(Load());
    std::vector<state::TaskTransition> batch;
    FERRY_RETURN_IF_ERROR(Start(&batch));
    absl::Time next_run_check = Now();
    while (true) {
      if (!cancelling_ && d_.cancel != nullptr && d_.cancel->load()) {
        FERRY_RETURN_IF_ERROR(BeginCancel("cancelled by a signal", &batch));
      }
      std::vector<int> launch;
      if (!cancelling_) PlanDispatch(&batch, &launch);
      FERRY_RETURN_IF_ERROR(Apply(batch));
      for (int idx : launch) FERRY_RETURN_IF_ERROR(LaunchOne(idx, &batch));
      if (!batch.empty()) continue;  // launch failures to persist
      if (live_.empty() && queue_.empty() && timers_.empty()) break;
      if (!cancelling_) LayOutAhead();

      absl::Time now = Now();
      absl::Time wake = now + (d_.observer ? d_.observer->tick() : absl::Seconds(1));
      if (!timers_.empty()) wake = std::min(wake, timers_.begin()->first);
      for (const auto& [handle, idx] : live_) {
        // A timed-out task is being stopped: the executor enforces the grace period.
        if (!nodes_[idx].timed_out) wake = std::min(wake, nodes_[idx].deadline);
      }
      FERRY_ASSIGN_OR_RETURN(std::vector<exec::ExitInfo> exits,
                             d_.executor->Wait(std::max(absl::ZeroDuration(), wake - now)));
      FERRY_RETURN_IF_ERROR(RecordPids(exits));
      for (const exec::ExitInfo& e : exits) FERRY_RETURN_IF_ERROR(OnExit(e, &batch));
      FERRY_RETURN_IF_ERROR(OnDeadlines(&batch));
      if (d_.observer) d_.observer->OnTick();
      // `ferry cancel` from another process: the signal it sends normally gets here first; the
      // store is checked too, at most once a second, for when the signal cannot reach us.
      if (!cancelling_ && Now() >= next_run_check) {
        next_run_check = Now() + absl::Seconds(1);
        FERRY_ASSIGN_OR_RETURN(state::PipelineRunRecord run, d_.store->GetRun(p_.run_id));
        if (run.state == rs::kCancelling) FERRY_RETURN_IF_ERROR(BeginCancel(run.message, &batch));
      }
    }
    return Finish();
  }

 private:
  absl::Time Now() const { return d_.clock->Now(); }

  absl::Status Load() {
    FERRY_ASSIGN_OR_RETURN(std::vector<state::TaskRunRecord> recs, d_.store->GetTasks(p_.run_id));
    FERRY_ASSIGN_OR_RETURN(std::string key, storage::layout::RunParams(p_.name, p_.run_id));
    FERRY_ASSIGN_OR_RETURN(run_files_.params, d_.lake->LocalPath(key));
    FERRY_ASSIGN_OR_RETURN(key, storage::layout::RunHyperparameters(p_.name, p_.run_id));
    FERRY_ASSIGN_OR_RETURN(run_files_.hyperparameters, d_.lake->LocalPath(key));
    nodes_.resize(p_.steps.size());
    for (size_t i = 0; i < p_.steps.size(); ++i) {
      nodes_[i].step = &p_.steps[i];
      index_[p_.steps[i].name] = static_cast<int>(i);
    }
    for (state::TaskRunRecord& r : recs) {
      auto it = index_.find(r.task);
      if (it == index_.end()) {
        return absl::DataLossError(
            fmt::format("run {} has task '{}' that its spec lacks", p_.run_id, r.task));
      }
      nodes_[it->second].rec = std::move(r);
    }
    for (size_t i = 0; i < nodes_.size(); ++i) {
      Node& n = nodes_[i];
      if (n.rec.task.empty()) {
        return absl::DataLossError(
            fmt::format("task '{}' of run {} is missing from the store", n.step->name, p_.run_id));
      }
      n.planned_state = n.rec.state;
      n.planned_version = n.rec.version;
      n.output_hash = n.rec.output_hash;
      FERRY_ASSIGN_OR_RETURN(n.dir_key, storage::layout::TaskDir(p_.name, p_.run_id, n.step->name));
      FERRY_ASSIGN_OR_RETURN(n.dir, d_.lake->LocalPath(n.dir_key));
      n.base_attempts = n.rec.attempts;
      for (const std::string& need : n.step->needs) {
        int parent = index_.at(need);
        n.parents.push_back(parent);
        nodes_[parent].children.push_back(static_cast<int>(i));
      }
    }
    return absl::OkStatus();
  }

  static bool Done(std::string_view state) {
    return state == ts::kSucceeded || state == ts::kCached;
  }

  // Classifies every task once, at the start of the drive.
  absl::Status Start(std::vector<state::TaskTransition>* batch) {
    for (Node& n : nodes_) {
      for (int parent : n.parents) {
        if (!Done(nodes_[parent].rec.state)) ++n.unfinished_parents;
      }
    }
    // Tasks not selected by --only/--from and not needed by the selection are skipped.
    std::vector<bool> needed(nodes_.size(), !sel_.active);
    if (sel_.active) {
      for (int i = static_cast<int>(nodes_.size()) - 1; i >= 0; --i) {
        if (sel_.selected.count(nodes_[i].step->name)) needed[i] = true;
        if (needed[i]) {
          for (int parent : nodes_[i].parents) needed[parent] = true;
        }
      }
    }
    // Skips first, so that a cache hit below does not promote a task that is not needed.
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!needed[i] && nodes_[i].planned_state == ts::kPending) {
        Move(nodes_[i], ts::kSkipped, "not selected by --only/--from", batch);
      }
    }
    // Then each task by the state it was loaded in; a pending task may have been promoted
    // meanwhile by a cache hit of its last parent (planned_state tells).
    for (size_t i = 0; i < nodes_.size(); ++i) {
      Node& n = nodes_[i];
      const std::string& loaded = n.rec.state;
      if (loaded == ts::kQueued) {
        queue_.push_back(static_cast<int>(i));
      } else if (loaded == ts::kRetrying) {
        timers_.emplace(n.rec.retry_at, static_cast<int>(i));
      } else if (loaded == ts::kRunning) {
        return absl::FailedPreconditionError(fmt::format(
            "task '{}' of run {} is still running under another owner", n.step->name, p_.run_id));
      } else if (n.planned_state == ts::kPending && n.unfinished_parents == 0) {
        FERRY_RETURN_IF_ERROR(Promote(static_cast<int>(i), batch));
      }
    }
    return absl::OkStatus();
  }

  // Plans a transition of `n` into `batch` and returns it for extra fields.
  state::TaskTransition& Move(Node& n, std::string_view to, std::string reason,
                              std::vector<state::TaskTransition>* batch) {
    state::TaskTransition t;
    t.run_id = p_.run_id;
    t.task = n.step->name;
    t.from = state::TaskRunKind().states[StateIndex(n.planned_state)];
    t.to = to;
    t.expected_version = n.planned_version;
    t.reason = std::move(reason);
    n.planned_state = std::string(to);
    ++n.planned_version;
    batch->push_back(std::move(t));
    return batch->back();
  }

  static size_t StateIndex(std::string_view state) {
    const auto& states = state::TaskRunKind().states;
    size_t i = std::find(states.begin(), states.end(), state) - states.begin();
    FERRY_CHECK(i < states.size());
    return i;
  }

  // A pending task whose upstream tasks are all done: a cache hit, or queued to run.
  absl::Status Promote(int idx, std::vector<state::TaskTransition>* batch) {
    Node& n = nodes_[idx];
    std::map<std::string, std::string> upstream;
    for (int parent : n.parents) upstream[nodes_[parent].step->name] = nodes_[parent].output_hash;
    absl::StatusOr<std::string> key = CacheKey(p_, *n.step, upstream);
    bool forced = sel_.active && sel_.selected.count(n.step->name);
    if (key.ok() && n.step->cache && !forced) {
      absl::StatusOr<state::CheckpointRecord> hit = d_.store->GetCheckpoint(*key);
      if (hit.ok() && d_.lake->CheckCommitted(hit->output_uri).ok()) {
        if (hit->output_uri != n.dir_key) Discard(n);
        state::TaskTransition& t =
            Move(n, ts::kCached, "checkpoint hit from run " + hit->run_id, batch);
        t.cache_key = *key;
        t.output_uri = hit->output_uri;
        t.output_hash = hit->output_hash;
        return MarkDone(idx, hit->output_hash, batch);
      }
      if (!hit.ok() && hit.status().code() != absl::StatusCode::kNotFound) return hit.status();
    }
    state::TaskTransition& t = Move(n, ts::kQueued, forced ? "selected" : "ready", batch);
    if (key.ok()) {
      t.cache_key = *key;
      n.cache_error.clear();
    } else {
      n.cache_error = std::string(key.status().message());
      t.message = n.cache_error;
    }
    queue_.push_back(idx);
    return absl::OkStatus();
  }

  // A task's output is final: its children are one step closer to ready; those with no
  // unfinished parent left are promoted in the same batch.
  absl::Status MarkDone(int idx, const std::string& output_hash,
                        std::vector<state::TaskTransition>* batch) {
    nodes_[idx].output_hash = output_hash;
    for (int child : nodes_[idx].children) {
      Node& c = nodes_[child];
      if (--c.unfinished_parents == 0 && c.planned_state == ts::kPending && !cancelling_) {
        FERRY_RETURN_IF_ERROR(Promote(child, batch));
      }
    }
    return absl::OkStatus();
  }

  // Persists a batch in one transaction, then updates the records and tells the observer.
  absl::Status Apply(std::vector<state::TaskTransition>& batch) {
    if (batch.empty()) return absl::OkStatus();
    FERRY_ASSIGN_OR_RETURN(std::vector<state::TaskRunRecord> recs,
                           d_.store->TransitionTasks(batch, d_.actor));
    for (size_t i = 0; i < recs.size(); ++i) {
      Node& n = nodes_[IndexOf(recs[i].task)];
      n.rec = std::move(recs[i]);
      if (d_.observer) d_.observer->OnTaskChanged(n.rec, batch[i].reason);
    }
    batch.clear();
    return absl::OkStatus();
  }

  int IndexOf(const std::string& task) const {
    auto it = index_.find(task);
    FERRY_CHECK(it != index_.end());
    return it->second;
  }

  // Moves queued tasks into free slots (to `running`, in the batch); `launch` gets them, to be
  // started once the batch is persisted.
  void PlanDispatch(std::vector<state::TaskTransition>* batch, std::vector<int>* launch) {
    int slots = p_.max_parallel - static_cast<int>(live_.size());
    while (slots-- > 0 && !queue_.empty()) {
      int idx = queue_.front();
      queue_.pop_front();
      Node& n = nodes_[idx];
      int attempt = n.rec.attempts + 1;
      absl::StatusOr<std::string> log_key =
          storage::layout::TaskLog(p_.name, p_.run_id, n.step->name, attempt);
      FERRY_CHECK(log_key.ok());  // names were validated when the run was created
      Move(n, ts::kRunning, fmt::format("attempt {}", attempt), batch).log_uri = *log_key;
      launch->push_back(idx);
    }
  }

  absl::Status LaunchOne(int idx, std::vector<state::TaskTransition>* batch) {
    Node& n = nodes_[idx];
    // A file the step declares is missing: its inputs are not what the pipeline says, so the
    // attempt fails (retries may find the file) rather than run uncached and unexplained.
    absl::StatusOr<int64_t> handle =
        n.cache_error.empty() ? Launch(n) : absl::FailedPreconditionError(n.cache_error);
    if (!handle.ok()) {
      return AttemptFailed(idx, 127, std::string(handle.status().message()), batch);
    }
    n.handle = *handle;
    n.timed_out = false;
    n.deadline = n.step->resources.timeout > absl::ZeroDuration()
                     ? Now() + n.step->resources.timeout
                     : absl::InfiniteFuture();
    live_[*handle] = idx;
    unrecorded_pids_.push_back(idx);
    return absl::OkStatus();
  }

  // Records the process groups of tasks launched in the last turn that are still running, so
  // that a resume or a cancel after this process dies can kill what they started. Deferred to
  // the next turn (at most a tick later) because a short task has usually exited by then and
  // needs no write at all: the task itself dies with this process (PR_SET_PDEATHSIG) anyway.
  absl::Status RecordPids(const std::vector<exec::ExitInfo>& exits) {
    for (int idx : unrecorded_pids_) {
      const Node& n = nodes_[idx];
      bool exited = std::any_of(exits.begin(), exits.end(),
                                [&](const exec::ExitInfo& e) { return e.handle == n.handle; });
      if (n.handle == 0 || exited) continue;
      FERRY_RETURN_IF_ERROR(d_.store->SetAttemptPid(p_.run_id, n.step->name, n.handle));
    }
    unrecorded_pids_.clear();
    return absl::OkStatus();
  }

  // The local folders of a task's upstream tasks, by name: where each one's output is (a
  // cache hit's is an earlier run's folder) or, for one still running, will be.
  absl::StatusOr<std::map<std::string, std::string>> Channels(const Node& n) {
    std::map<std::string, std::string> channels;
    for (int parent : n.parents) {
      const Node& up = nodes_[parent];
      if (Done(up.rec.state)) {
        FERRY_ASSIGN_OR_RETURN(channels[up.step->name], d_.lake->LocalPath(up.rec.output_uri));
      } else {
        channels[up.step->name] = up.dir;
      }
    }
    return channels;
  }

  // While the tasks it launched run, the scheduler lays out the folders of the tasks that are
  // next (pending, every upstream task done or running), so that when they become ready their
  // launch does not wait for the file system: a folder is eight directories, two links and a
  // symlink per upstream, and the log file, a third of the time between two tasks of a chain. It
  // uses the time it would otherwise spend waiting, at most `max_parallel` folders per turn. A
  // folder laid out for a task that then does not run (a cache hit, an upstream failure, a cancel)
  // is removed again (Discard).
  void LayOutAhead() {
    int budget = p_.max_parallel;
    for (const auto& [handle, idx] : live_) {
      for (int child : nodes_[idx].children) {
        if (budget <= 0) return;
        Node& c = nodes_[child];
        if (c.laid_out || c.planned_state != ts::kPending) continue;
        // At most max_parallel upstream tasks run at once: a task waiting on more is not next
        // (a fan-in's sink is skipped here without walking its parents at every turn).
        if (c.unfinished_parents > p_.max_parallel) continue;
        bool near = std::all_of(c.parents.begin(), c.parents.end(), [&](int parent) {
          return Done(nodes_[parent].planned_state) || nodes_[parent].handle != 0;
        });
        if (!near) continue;
        --budget;
        absl::StatusOr<std::map<std::string, std::string>> channels = Channels(c);
        // A failure here is not the task's: its launch lays the folder out again and reports.
        c.laid_out = channels.ok() && LayOutWorkdir(p_, *c.step, run_files_, c.dir, *channels).ok();
        if (c.laid_out) CreateLog(c, c.rec.attempts + 1);
      }
    }
  }

  // Creates the (empty) log file of an attempt ahead of time, which the task's process would
  // otherwise create on start. Best effort: the process creates it when this did not.
  void CreateLog(const Node& n, int attempt) {
    absl::StatusOr<std::string> key =
        storage::layout::TaskLog(p_.name, p_.run_id, n.step->name, attempt);
    absl::StatusOr<std::string> path = key.ok() ? d_.lake->LocalPath(*key) : key;
    if (!path.ok()) return;
    int fd = ::open(path->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
  }

  // Removes the folder laid out ahead for a task that will not run in this drive.
  void Discard(Node& n) {
    if (!n.laid_out) return;
    n.laid_out = false;
    (void)RemoveAll(n.dir);  // best effort: an empty folder left behind is harmless
  }

  absl::StatusOr<int64_t> Launch(Node& n) {
    FERRY_ASSIGN_OR_RETURN(auto channels, Channels(n));
    if (!n.laid_out) FERRY_RETURN_IF_ERROR(LayOutWorkdir(p_, *n.step, run_files_, n.dir, channels));
    n.laid_out = false;  // this attempt uses the folder; a retry lays it out again
    std::map<std::string, std::string> env =
        WorkdirEnvironment(p_, *n.step, n.rec.attempts, n.dir, channels, d_.lake->root_uri());
    FERRY_ASSIGN_OR_RETURN(
        std::string log_key,
        storage::layout::TaskLog(p_.name, p_.run_id, n.step->name, n.rec.attempts));
    FERRY_ASSIGN_OR_RETURN(std::string log_path, d_.lake->LocalPath(log_key));
    exec::LaunchSpec spec;
    spec.label = fmt::format("{}/{}#{}", p_.run_id, n.step->name, n.rec.attempts);
    spec.argv = n.step->argv;
    spec.env = std::move(env);
    spec.cwd = p_.project_dir;
    spec.log_path = log_path;
    spec.resources = n.step->resources;
    return d_.executor->Launch(spec);
  }

  absl::Status OnExit(const exec::ExitInfo& e, std::vector<state::TaskTransition>* batch) {
    auto it = live_.find(e.handle);
    if (it == live_.end()) return absl::OkStatus();
    int idx = it->second;
    live_.erase(it);
    Node& n = nodes_[idx];
    n.handle = 0;
    if (cancelling_) {
      Move(n, ts::kCancelled, "run cancelled: " + e.message, batch).exit_code = e.exit_code;
      return absl::OkStatus();
    }
    if (e.exit_code == 0 && !n.timed_out) return Succeeded(idx, batch);
    std::string why =
        n.timed_out ? fmt::format("timed out after {}", HumanDuration(n.step->resources.timeout))
                    : e.message;
    std::string failure = ReadFailureMessage(n.dir);
    if (!failure.empty()) why += ": " + failure;
    return AttemptFailed(idx, e.exit_code, why, batch);
  }

  // Commits the checkpoint in the lake (manifest last); the transition to succeeded indexes it.
  absl::Status Succeeded(int idx, std::vector<state::TaskTransition>* batch) {
    Node& n = nodes_[idx];
    FERRY_ASSIGN_OR_RETURN(OutputSummary out, SummarizeOutput(n.dir));
    nlohmann::json manifest = {
        {"pipeline", p_.name},
        {"run_id", p_.run_id},
        {"task", n.step->name},
        {"attempt", n.rec.attempts},
        {"cache_key", n.rec.cache_key},
        {"output_hash", out.hash},
        {"files", out.files},
        {"committed_at", absl::FormatTime(absl::RFC3339_sec, Now(), absl::UTCTimeZone())}};
    // A checkpoint can be recomputed: ordered, not flushed (resume repairs what a power loss
    // takes).
    FERRY_RETURN_IF_ERROR(
        d_.lake->Commit(n.dir_key, manifest.dump(2), storage::Durability::kOrdered));
    state::TaskTransition& t = Move(n, ts::kSucceeded, "exited with code 0", batch);
    t.exit_code = 0;
    t.message = "";  // whatever an earlier attempt left
    t.output_uri = n.dir_key;
    t.output_hash = out.hash;
    if (!n.rec.cache_key.empty() && n.step->cache) {
      t.checkpoint = state::CheckpointRecord{.cache_key = n.rec.cache_key,
                                             .pipeline = p_.name,
                                             .run_id = p_.run_id,
                                             .task = n.step->name,
                                             .output_uri = n.dir_key,
                                             .output_hash = out.hash,
                                             .created_at = Now()};
    }
    return MarkDone(idx, out.hash, batch);
  }

  absl::Status AttemptFailed(int idx, int exit_code, const std::string& why,
                             std::vector<state::TaskTransition>* batch) {
    Node& n = nodes_[idx];
    int tries = n.rec.attempts - n.base_attempts;
    if (tries <= n.step->resources.retries) {
      absl::Duration delay = config::RetryDelay(n.step->resources, tries);
      state::TaskTransition& t = Move(n, ts::kRetrying,
                                      fmt::format("{}; retry {} of {} in {}", why, tries,
                                                  n.step->resources.retries, HumanDuration(delay)),
                                      batch);
      t.exit_code = exit_code;
      t.retry_at = Now() + delay;
      t.message = why;
      timers_.emplace(*t.retry_at, idx);
      return absl::OkStatus();
    }
    state::TaskTransition& t = Move(n, ts::kFailed, why, batch);
    t.exit_code = exit_code;
    t.message = why;
    // Everything downstream that has not started can no longer run.
    std::vector<int> stack(n.children.begin(), n.children.end());
    std::vector<bool> seen(nodes_.size(), false);
    while (!stack.empty()) {
      int c = stack.back();
      stack.pop_back();
      if (seen[c]) continue;
      seen[c] = true;
      if (nodes_[c].planned_state == ts::kPending) {
        Discard(nodes_[c]);
        Move(nodes_[c], ts::kUpstreamFailed, fmt::format("upstream task '{}' failed", n.step->name),
             batch);
      }
      for (int cc : nodes_[c].children) stack.push_back(cc);
    }
    return absl::OkStatus();
  }

  // Timeouts of running tasks, and retries whose backoff has elapsed.
  absl::Status OnDeadlines(std::vector<state::TaskTransition>* batch) {
    absl::Time now = Now();
    for (auto& [handle, idx] : live_) {
      Node& n = nodes_[idx];
      if (!n.timed_out && n.deadline <= now) {
        n.timed_out = true;
        FERRY_RETURN_IF_ERROR(d_.executor->Terminate(handle, p_.kill_grace));
      }
    }
    while (!timers_.empty() && timers_.begin()->first <= now) {
      int idx = timers_.begin()->second;
      timers_.erase(timers_.begin());
      if (cancelling_ || nodes_[idx].planned_state != ts::kRetrying) continue;
      Move(nodes_[idx], ts::kQueued, "backoff elapsed", batch);
      queue_.push_back(idx);
    }
    return absl::OkStatus();
  }

  absl::Status BeginCancel(const std::string& why, std::vector<state::TaskTransition>* batch) {
    cancelling_ = true;
    FERRY_ASSIGN_OR_RETURN(state::PipelineRunRecord run, d_.store->GetRun(p_.run_id));
    if (run.state == rs::kRunning) {
      FERRY_RETURN_IF_ERROR(d_.store
                                ->TransitionRun({.id = p_.run_id,
                                                 .from = rs::kRunning,
                                                 .to = rs::kCancelling,
                                                 .expected_version = run.version,
                                                 .reason = why,
                                                 .actor = d_.actor,
                                                 .message = why})
                                .status());
    }
    for (Node& n : nodes_) {
      if (n.planned_state == ts::kPending || n.planned_state == ts::kQueued ||
          n.planned_state == ts::kRetrying) {
        if (n.planned_state == ts::kPending) Discard(n);
        Move(n, ts::kCancelled, "run cancelled", batch);
      }
    }
    queue_.clear();
    timers_.clear();
    for (const auto& [handle, idx] : live_) {
      FERRY_RETURN_IF_ERROR(d_.executor->Terminate(handle, p_.kill_grace));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<state::PipelineRunRecord> Finish() {
    FERRY_ASSIGN_OR_RETURN(state::PipelineRunRecord run, d_.store->GetRun(p_.run_id));
    std::string_view to = rs::kSucceeded;
    std::string message;
    if (run.state == rs::kCancelling) {
      to = rs::kCancelled;
      message = run.message;
    } else {
      std::vector<std::string> failed;
      for (const Node& n : nodes_) {
        if (!Done(n.rec.state) && n.rec.state != ts::kSkipped) {
          failed.push_back(n.step->name + " " + n.rec.state);
        }
      }
      if (!failed.empty()) {
        to = rs::kFailed;
        message = fmt::format("{}", fmt::join(failed, ", "));
      }
    }
    return d_.store->TransitionRun({.id = p_.run_id,
                                    .from = run.state,
                                    .to = to,
                                    .expected_version = run.version,
                                    .reason = message.empty() ? "all tasks done" : message,
                                    .actor = d_.actor,
                                    .owner_pid = 0,
                                    .message = message});
  }

  SchedulerDeps d_;
  const ResolvedPipeline& p_;
  const Selection& sel_;
  RunFiles run_files_;  // the run's parameter files, which every task's folder links to
  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> index_;  // task name -> node
  std::deque<int> queue_;                       // ready to launch, FIFO
  std::multimap<absl::Time, int> timers_;       // retrying tasks by retry_at
  std::map<int64_t, int> live_;                 // executor handle -> node
  std::vector<int> unrecorded_pids_;  // launched last turn, process group not yet in the store
  bool cancelling_ = false;
};

Scheduler::Scheduler(SchedulerDeps deps, const ResolvedPipeline& pipeline, Selection selection)
    : deps_(std::move(deps)), pipeline_(pipeline), selection_(std::move(selection)) {}

absl::StatusOr<state::PipelineRunRecord> Scheduler::Drive() {
  Impl impl(deps_, pipeline_, selection_);
  return impl.Drive();
}

}  // namespace ferry::pipeline
