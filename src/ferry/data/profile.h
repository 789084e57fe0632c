#pragma once
// Profile: per-column statistics of a table, stored beside every dataset version
// (profile.json) so that later drift comparisons need only the profile, never the data again.
// Computing a profile reads each column once; columns are profiled in parallel. Thread-safe
// (pure functions).
//
// Per column: count (non-null), nulls, and for numeric columns min/max/mean/std, quantiles and a
// histogram of fixed bins (equal width between min and max; the edges are stored so that another
// table's values can be counted into the same bins); for string columns the number of distinct
// values and the most frequent ones with their counts.
//
// Example:
//   Profile p = ComputeProfile(table);
//   nlohmann::json j = ProfileToJson(p);   // what profile.json holds
//   FERRY_ASSIGN_OR_RETURN(Profile back, ProfileFromJson(j));

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/data/table.h"
#include "nlohmann/json.hpp"

namespace ferry::data {

struct Histogram {
  std::vector<double> edges;    // bins + 1 increasing edges; the last bin includes its right edge
  std::vector<int64_t> counts;  // one per bin
};

struct ColumnProfile {
  std::string name;
  ColumnType type = ColumnType::kFloat64;
  int64_t count = 0;  // non-null values
  int64_t nulls = 0;
  // Numeric columns (bool as 0/1, timestamps in microseconds); NaN values are left out of these.
  std::optional<double> min, max, mean, std;  // std: sample standard deviation (n - 1), as pandas
  std::vector<std::pair<double, double>> quantiles;  // (q, value) for q in ProfileOptions
  Histogram histogram;
  // String columns.
  int64_t distinct = 0;
  std::vector<std::pair<std::string, int64_t>> top;  // most frequent first, ties by value
};

struct Profile {
  int64_t rows = 0;
  std::vector<ColumnProfile> columns;
  const ColumnProfile* Find(std::string_view name) const;
};

struct ProfileOptions {
  int bins = 20;
  int top_k = 20;
  std::vector<double> quantiles = {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99};
  int threads = 0;  // 0 = one per core
};

Profile ComputeProfile(const Table& table, const ProfileOptions& opts = {});
// Counts `column`'s values into `edges` (values outside go to the first / last bin).
std::vector<int64_t> CountIntoBins(const Column& column, const std::vector<double>& edges);

nlohmann::json ProfileToJson(const Profile& profile);
absl::StatusOr<Profile> ProfileFromJson(const nlohmann::json& json);

}  // namespace ferry::data
