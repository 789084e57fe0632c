#pragma once
// Parsing of the human units used in YAML: durations ("500ms", "30s", "10m", "1h", "1d", or a bare
// number of seconds) and sizes ("512Mi", "2Gi", "1G", "100k", or bytes). Errors say what is wrong.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry {

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);
absl::StatusOr<int64_t> ParseBytes(std::string_view text);
std::string HumanDuration(absl::Duration d);  // "1.2s", "340ms", "2m05s"

}  // namespace ferry
