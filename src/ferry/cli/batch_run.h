#pragma once
// Running a batch job in this process, for `ferry batch --wait` and `ferry batch-job run`: the
// progress on stderr (a bar redrawn in place on a TTY, one line per finished file otherwise), the
// stop flag (SIGINT/SIGTERM, or `ferry batch-job stop` seen in the store), the summary on stdout
// and the exit code. Also the text and JSON forms of a job that `ferry batch-jobs` and
// `ferry batch-job show` print. Single-threaded apart from the store watcher it starts while a
// job runs (which opens its own store instance).

#include <string>

#include "ferry/cli/cli_common.h"
#include "ferry/state/state_store.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {

// Runs or resumes job `job_id` of `project` and prints its summary (JSON when `as_json`).
// Exit codes: 0 completed; 1 failed; 128 + the signal (130 SIGINT, 143 SIGTERM) when a signal
// stopped it; 5 when `ferry batch-job stop` stopped it; otherwise ExitCodeFor the error (4 when
// another live process runs the job).
int RunBatchJobHere(Project& project, const std::string& job_id, bool as_json);

// The job as `batch-job show --json` prints it: id, state, model, spec, result, times, owner,
// message (and events when `with_events`).
nlohmann::json BatchJobJson(state::StateStore& store, const state::JobRecord& job,
                            bool with_events);

// "3 of 12": files whose output the job's result_json records as committed, of the files in its
// input manifest (or of those it records, when the manifest cannot be read).
std::pair<int, int> CommittedFiles(storage::ArtifactStore& lake, const state::JobRecord& job);

}  // namespace ferry::cli
