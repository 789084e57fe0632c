#pragma once
// The batch scoring engine for one input file: streams the file (CSV with a header row or JSONL,
// optionally zstd-compressed) in chunks of rows, parses and scores the chunks on N threads
// (model/bundle.h PrepareFeatures + Model::Predict, the serving code path), and writes the scored
// rows to a local output file in input order, bad rows to a local quarantine file. Memory is
// bounded by 2 x threads chunks (of at most chunk_rows rows and about chunk_bytes bytes each),
// whatever the input's size. The caller commits the files (batch_job.cc).
//
// Thread-safety: ScoreFile is reentrant; it starts and joins its own threads. `log`, when given,
// is appended to from the calling thread only.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "ferry/audit/inference_log.h"
#include "ferry/batch/batch_job.h"
#include "ferry/common/clock.h"
#include "ferry/model/bundle.h"

namespace ferry::batch::internal {

enum class Format { kCsv, kJsonl };

// The format of a file by its name: ".csv", ".jsonl" or ".ndjson", optionally followed by ".zst".
// InvalidArgument naming the file and the accepted endings otherwise.
absl::StatusOr<Format> FormatOf(std::string_view name, bool* zstd);

struct ScoreFileOptions {
  std::string input_path;       // a local file
  std::string display;          // how messages name the input ("lake://in/a.csv")
  std::string output_path;      // local file written (created or truncated); ".zst" compresses
  std::string quarantine_path;  // local CSV "line,reason,text" written when a row is bad
  int threads = 0;              // 0 = one per core
  size_t chunk_rows = 65536;
  size_t chunk_bytes = 8 << 20;
  BadRowPolicy policy;
  std::string model_name;
  int64_t model_version = 0;
  // When set, every scored row is appended to it (a record per docs/serving.md, mode "batch").
  audit::InferenceLog* log = nullptr;
  std::string log_endpoint;
  std::string time_column;  // the row's time for the log; "" = the clock's now
  const Clock* clock = nullptr;
  // Called from the calling thread after each group of chunks: bytes read so far (compressed
  // bytes for .zst), rows so far.
  std::function<void(int64_t bytes, int64_t rows)> on_progress;
};

struct ScoreFileStats {
  int64_t rows = 0, scored = 0, bad = 0;
  int64_t peak_buffered_rows = 0;  // the most rows held in memory at once
};

// Scores one file. InvalidArgument/FailedPrecondition naming the file (and line) when the file
// cannot be read as its format, lacks a column the model needs, or breaks the bad-row policy;
// the files may then be partial, and the caller discards them. The quarantine file exists only
// when stats.bad > 0.
absl::StatusOr<ScoreFileStats> ScoreFile(const model::Bundle& bundle,
                                         const ScoreFileOptions& options);

// A valid UUIDv7 (RFC 9562) from a millisecond timestamp and 74 random bits drawn from `state`
// (splitmix64): cheap enough for one id per row. Writes 36 characters at `out`.
void FormatUuidV7(int64_t unix_ms, uint64_t* state, char* out);

}  // namespace ferry::batch::internal
