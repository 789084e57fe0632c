#pragma once
// Batch scoring jobs: score files (CSV with a header row, or JSONL; optionally zstd-compressed)
// from the lake or from disk with a registered model, and write a scored copy of each file. A job
// is a BatchJob row in the state store (queued -> running -> completed; failed, stopping ->
// stopped; see state/kinds.h) whose spec_json is BatchSpecToJson and whose result_json is
// BatchResultToJson, updated after each file.
//
// How a job runs: each input file is read as a stream in chunks of rows; chunks are parsed and
// scored on `threads` threads (the same code path as serving: model/bundle.h PrepareFeatures +
// Model::Predict) and written in input order, so memory stays bounded whatever the input's size.
// Each output file is written to a temp file and committed atomically (ArtifactStore::PutFile for
// lake outputs, rename for local ones); a re-run skips the files whose output is committed.
//
// Output format: mirrors the input (CSV in -> CSV out with a header; JSONL -> JSONL; .zst in ->
// .zst out), same file name under the output folder. Each output row is the input row unchanged
// plus, for classification, `prediction` (the label) and `probability_<class>` per class, for
// regression `prediction`; then `transaction_id` (UUIDv7) and `model` ("churn:7"). Numbers are
// printed shortest round-trip, so they parse back to the same double.
//
// Thread-safety: the functions are reentrant; RunBatchJob uses threads of its own and calls
// `progress` from one thread. Two processes running the same job are kept apart by the job's
// state (FailedPrecondition for the second).
//
// Example:
//   BatchSpec spec{.model_ref = "churn:champion", .inputs = {"lake://incoming/2026-11-*.csv"}};
//   FERRY_ASSIGN_OR_RETURN(auto job, SubmitBatchJob(store, lake, project_dir, spec, clock, "me"));
//   FERRY_ASSIGN_OR_RETURN(auto result, RunBatchJob(store, lake, project_dir, job.id, clock,
//                                                   nullptr, nullptr));

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/common/clock.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::batch {

// Bad rows (a field that does not parse as its input type, a wrong field count, a row the model
// cannot score) go to a quarantine file beside the output, with their line number and reason. A
// file fails (the job fails, its output is not committed) when it has more bad rows than
// max_bad_rows OR a larger share than max_bad_fraction; else its good rows are scored and written.
struct BadRowPolicy {
  int64_t max_bad_rows = 1000;
  double max_bad_fraction = 0.01;
};

struct BatchSpec {
  // As given: "churn:champion", "churn:7", "churn".
  std::string model_ref;
  // Resolved at submission: "churn" and 7 (a re-run scores with the same version).
  std::string model;
  int64_t model_version = 0;
  // As given: "lake://incoming/2026-11-*.csv", "data/*.csv", "/abs/x.jsonl.zst".
  std::vector<std::string> inputs;
  // "lake://scores/2026-11" or a local folder; "" = lake batch/<job-id>/output/.
  std::string output;
  int threads = 0;  // scoring threads; 0 = one per core
  BadRowPolicy bad_rows;
  // When set, each scored row also goes to this endpoint's inference log (mode "batch").
  std::string log_endpoint;
  // The column giving each row's time for that log (ISO 8601 or unix seconds); "" = now.
  std::string time_column;
};
nlohmann::json BatchSpecToJson(const BatchSpec& spec);
absl::StatusOr<BatchSpec> BatchSpecFromJson(const nlohmann::json& json);

struct FileResult {
  // As expanded: "lake://incoming/2026-11-01.csv" or an absolute local path.
  std::string input;
  std::string output;      // where its scored copy is: a lake URI or a local path
  std::string quarantine;  // where its bad rows are ("" when none)
  int64_t rows = 0, scored = 0, bad = 0;
  bool skipped = false;  // its output was already committed (resume)
  double seconds = 0;
};
struct BatchResult {
  std::vector<FileResult> files;
  int64_t rows = 0, scored = 0, bad = 0;
  double seconds = 0;
};
nlohmann::json BatchResultToJson(const BatchResult&);  // what the job's result_json holds

struct BatchProgress {
  int files_done = 0, files_total = 0;
  int64_t bytes_done = 0, bytes_total = 0, rows_done = 0;
};
// Called from one thread, at most ~10 times a second.
using ProgressFn = std::function<void(const BatchProgress&)>;

// Resolves spec.model_ref (state::ResolveModelRef), checks every input pattern matches at least
// one file (NotFound naming the pattern otherwise) and that output is writable, and creates the
// BatchJob (state kind "BatchJob", store->CreateJob) with spec_json = BatchSpecToJson and an
// idempotency key derived from the resolved spec (model, version, inputs, output): submitting the
// same job twice returns the first job — that is how a re-run after kill -9 resumes it.
absl::StatusOr<state::JobRecord> SubmitBatchJob(state::StateStore& store,
                                                storage::ArtifactStore& lake,
                                                const std::string& project_dir,
                                                const BatchSpec& spec, const Clock& clock,
                                                const std::string& actor);

// Runs or resumes job `job_id`: moves it to running (from queued, failed or stopped; a job left
// `running` or `stopping` by a dead owner — owner_host is this host and owner_pid is not alive —
// is first moved to failed with "the owner died"), then scores every input whose output is not yet
// committed (those are reported skipped), committing each output file atomically as it finishes
// (temp file + ArtifactStore::PutFile / rename), updating result_json after each file, and ends
// completed (or failed with the first error, naming the file and line). FailedPrecondition when
// another live process runs it. When *stop becomes true, it finishes the file in hand, moves the
// job to stopping -> stopped and returns Cancelled.
absl::StatusOr<BatchResult> RunBatchJob(state::StateStore& store, storage::ArtifactStore& lake,
                                        const std::string& project_dir, const std::string& job_id,
                                        const Clock& clock, const ProgressFn& progress,
                                        const std::atomic<bool>* stop);

}  // namespace ferry::batch
