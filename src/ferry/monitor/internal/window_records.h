#pragma once
// The two halves of ReadInferenceWindow, for the monitor, which must see which model served the
// window (to pick the baseline and its input schema) before it types the columns, without reading
// the segments twice. Pure functions; thread-safe.

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/monitor/window.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::monitor::internal {

struct WindowRecords {
  std::vector<nlohmann::json> records;  // from <= time < to, in segment order
  std::vector<absl::Time> times;        // parsed "time" of each record
  int64_t segments = 0;
};

// Lists and reads the segments overlapping [from, to) (in parallel) and keeps the records inside.
// DataLoss naming the key for a record without a valid "time".
absl::StatusOr<WindowRecords> ReadWindowRecords(storage::ArtifactStore& lake,
                                                std::string_view endpoint, absl::Time from,
                                                absl::Time to);

// Turns the records into columns (consumes them). InvalidArgument for a malformed schema.
absl::StatusOr<InferenceWindow> BuildWindow(std::string_view endpoint, absl::Time from,
                                            absl::Time to, WindowRecords records,
                                            const nlohmann::json& schema);

// "name:version" of a record's model ({"name", "version"}), "" when absent.
std::string ModelRef(const nlohmann::json& record);

}  // namespace ferry::monitor::internal
