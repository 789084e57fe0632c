#include "ferry/monitor/internal/drift_compat.h"

#ifndef FERRY_MONITOR_HAVE_DATA_DRIFT
#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace ferry::monitor::drift {
namespace {

std::optional<double> Psi(const std::vector<int64_t>& r, const std::vector<int64_t>& c) {
  double nr = 0, nc = 0;
  for (int64_t v : r) nr += static_cast<double>(v);
  for (int64_t v : c) nc += static_cast<double>(v);
  if (nr <= 0 || nc <= 0 || r.size() != c.size()) return std::nullopt;
  double psi = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    const double p = std::max(static_cast<double>(r[i]) / nr, 1e-4);
    const double q = std::max(static_cast<double>(c[i]) / nc, 1e-4);
    psi += (q - p) * std::log(q / p);
  }
  return psi;
}

}  // namespace

// A stand-in until data/drift.h is merged: PSI (numeric and categorical) and a binned KS.
ColumnDrift CompareToProfile(const data::ColumnProfile& reference, const data::Column& current) {
  ColumnDrift d;
  d.name = reference.name;
  d.categorical = reference.type == data::ColumnType::kString;
  if (!d.categorical) {
    d.edges = reference.histogram.edges;
    d.reference_counts = reference.histogram.counts;
    if (d.edges.size() < 2 || current.type() == data::ColumnType::kString) return d;
    d.current_counts = data::CountIntoBins(current, d.edges);
    d.scores.psi = Psi(d.reference_counts, d.current_counts);
    double nr = 0, nc = 0, cr = 0, cc = 0, ks = 0;
    for (int64_t v : d.reference_counts) nr += static_cast<double>(v);
    for (int64_t v : d.current_counts) nc += static_cast<double>(v);
    if (nr > 0 && nc > 0) {
      for (size_t i = 0; i < d.reference_counts.size(); ++i) {
        cr += static_cast<double>(d.reference_counts[i]);
        cc += static_cast<double>(d.current_counts[i]);
        ks = std::max(ks, std::abs(cr / nr - cc / nc));
      }
      d.scores.ks = ks;
    }
    return d;
  }
  std::unordered_map<std::string, size_t> index;
  for (const auto& [value, count] : reference.top) {
    index[value] = d.categories.size();
    d.categories.push_back(value);
    d.reference_counts.push_back(count);
  }
  int64_t top_total = 0;
  for (int64_t c : d.reference_counts) top_total += c;
  const size_t other = d.categories.size();
  d.categories.push_back("__other__");
  d.reference_counts.push_back(reference.count - top_total);
  d.current_counts.assign(d.categories.size(), 0);
  const bool complete = reference.distinct <= static_cast<int64_t>(reference.top.size());
  for (size_t r = 0; r < current.size(); ++r) {
    if (current.is_null(r)) continue;
    const std::string v = current.ToText(r);
    auto it = index.find(v);
    if (it != index.end()) {
      ++d.current_counts[it->second];
    } else if (complete) {
      index[v] = d.categories.size();
      d.categories.push_back(v);
      d.reference_counts.push_back(0);
      d.current_counts.push_back(1);
    } else {
      ++d.current_counts[other];
    }
  }
  d.scores.psi = Psi(d.reference_counts, d.current_counts);
  return d;
}

nlohmann::json ColumnDriftToJson(const ColumnDrift& drift) {
  return {{"name", drift.name}, {"categorical", drift.categorical}};
}

}  // namespace ferry::monitor::drift
#endif
