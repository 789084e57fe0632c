#pragma once
// The drift statistics the monitor uses (data/drift.h: CompareToProfile, ColumnDriftToJson),
// through one include. While data/drift.h is not in the tree yet, a minimal local version with
// the same signatures (PSI and a binned KS only) stands in; once data/drift.h exists this header
// only re-exports it, and the local version can be deleted. Pure functions: thread-safe.

#if __has_include("ferry/data/drift.h")
#include "ferry/data/drift.h"
#define FERRY_MONITOR_HAVE_DATA_DRIFT 1
namespace ferry::monitor::drift {
using data::ColumnDrift;
using data::ColumnDriftToJson;
using data::CompareToProfile;
}  // namespace ferry::monitor::drift
#else
#include <optional>
#include <string>
#include <vector>

#include "ferry/data/profile.h"
#include "ferry/data/table.h"
#include "nlohmann/json.hpp"

namespace ferry::monitor::drift {

struct DriftScores {
  std::optional<double> psi, ks, ks_pvalue, wasserstein, js, chi2, chi2_pvalue;
};

struct ColumnDrift {
  std::string name;
  bool categorical = false;
  std::vector<double> edges;
  std::vector<int64_t> reference_counts, current_counts;
  std::vector<std::string> categories;
  DriftScores scores;
};

ColumnDrift CompareToProfile(const data::ColumnProfile& reference, const data::Column& current);
nlohmann::json ColumnDriftToJson(const ColumnDrift& drift);

}  // namespace ferry::monitor::drift
#endif
