#pragma once
// InferenceWindow: a window [from, to) of one endpoint's inference log (audit/inference_log.h),
// turned from JSON lines into columns — the input of the monitor's drift, quality and performance
// computations and of the `inference_log` step's dataset. A value type; ReadInferenceWindow is a
// pure function of the lake's content (thread-safe as far as the ArtifactStore is).
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(InferenceWindow w,
//                          ReadInferenceWindow(lake, "churn", now - absl::Hours(24), now, schema));
//   const data::Column* plan = w.inputs.Find("plan");

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/data/table.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::monitor {

// One row per inference-log record (one served input row), in segment order.
struct InferenceWindow {
  std::string endpoint;
  absl::Time from, to;
  std::vector<std::string> transaction_ids;  // one per row
  std::vector<absl::Time> times;
  std::vector<std::string> variants, modes;  // "live", "shadow", "batch"
  std::vector<std::string> models;           // "churn:7"
  std::vector<nlohmann::json> outputs;       // {"label","probabilities"} | {"value"}
  data::Table inputs;  // one column per input key seen; typed by `schema` when given, else inferred
  std::map<std::string, int64_t>
      type_errors;       // per column: values that did not fit the type (left null)
  int64_t segments = 0;  // segment files read
};

// Reads every committed segment overlapping [from, to) (audit/inference_log.h
// ListInferenceSegments, ReadInferenceSegment) and keeps records with from <= time < to.
// `schema` is model.json's input_schema ([{name, type}]) or null. Without a schema a column's
// type is inferred from its JSON values: all integers -> int64, numbers -> float64, all booleans
// -> bool, anything else -> string (values of another JSON type count as type errors only when
// the schema fixes the type). A key absent from a record is a null.
// Errors: InvalidArgument for a bad endpoint name or schema; DataLoss (from the reader) for a
// corrupt segment, naming its key.
absl::StatusOr<InferenceWindow> ReadInferenceWindow(storage::ArtifactStore& lake,
                                                    std::string_view endpoint, absl::Time from,
                                                    absl::Time to, const nlohmann::json& schema);

}  // namespace ferry::monitor
