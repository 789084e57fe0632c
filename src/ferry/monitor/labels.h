#pragma once
// Ground truth for an endpoint's predictions: outcomes keyed by the transaction id of the
// inference-log record they belong to, stored under labels/<endpoint>/ (storage/layout.h
// LabelsDir) as immutable zstd JSONL objects, one per ingest. The monitor joins them with the
// inference log (docs/monitoring.md). Functions are stateless; concurrent ingests write distinct
// objects, so they are safe to run from several processes.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(LabelIngest in, IngestLabels(lake, "churn", "outcomes.csv",
//                                                       "transaction_id", "churned", clock));
//   FERRY_ASSIGN_OR_RETURN(auto labels, ReadLabels(lake, "churn"));   // id -> "1"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "ferry/common/clock.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::monitor {

struct LabelIngest {
  std::string key;         // the object written
  int64_t rows = 0;        // labels written
  int64_t duplicates = 0;  // repeated ids within the file (the last one wins)
  int64_t skipped = 0;     // rows without an id or a label (always 0 on success: they are errors)
};

// Reads a CSV (or JSONL: one object per line; ".zst" compressed either way) file with an id
// column and a label column; writes one zstd JSONL object
// labels/<endpoint>/<yyyymmddThhmmssZ>-<6 hex>.jsonl.zst with {"transaction_id", "label",
// "ingested_at"} per line. InvalidArgument naming file:line for a row without an id or a label,
// or a missing column (naming the columns found); NotFound for a missing file; nothing is written
// on error.
absl::StatusOr<LabelIngest> IngestLabels(storage::ArtifactStore& lake, std::string_view endpoint,
                                         const std::string& path, const std::string& id_column,
                                         const std::string& label_column, const Clock& clock);

// transaction id -> label as text ("1", "0", "41.5"); a later ingest (by object name, which
// sorts by time) wins for the same id. Empty when nothing was ingested. DataLoss naming the key
// for a corrupt object.
absl::StatusOr<std::unordered_map<std::string, std::string>> ReadLabels(
    storage::ArtifactStore& lake, std::string_view endpoint);

}  // namespace ferry::monitor
