#include "ferry/serve/metrics.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {
namespace {

// Label values escaped as the exposition format asks: backslash, double quote, newline.
std::string Escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

template <typename... T>
void Add(std::string& out, fmt::format_string<T...> format, T&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<T>(args)...);
}

}  // namespace

void VariantMetrics::Record(int status, absl::Duration latency) {
  const int slot = (status >= kMinStatus && status <= kMaxStatus)
                       ? status - kMinStatus
                       : static_cast<int>(by_status_.size()) - 1;
  by_status_[slot].fetch_add(1, std::memory_order_relaxed);
  const double ms = absl::ToDoubleMilliseconds(latency);
  size_t bucket = 0;
  while (bucket < std::size(kLatencyBoundsMs) && ms > kLatencyBoundsMs[bucket]) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(absl::ToInt64Nanoseconds(latency), std::memory_order_relaxed);
}

VariantMetrics::Snapshot VariantMetrics::Read() const {
  Snapshot s;
  for (size_t i = 0; i < by_status_.size(); ++i) {
    int64_t n = by_status_[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    // Statuses outside 100..599 are counted as 0 ("other").
    int status = i + 1 == by_status_.size() ? 0 : kMinStatus + static_cast<int>(i);
    s.requests += n;
    if (status >= 500) s.errors += n;
    s.by_status.emplace_back(status, n);
  }
  std::sort(s.by_status.begin(), s.by_status.end());
  s.counts.reserve(buckets_.size());
  for (const auto& b : buckets_) s.counts.push_back(b.load(std::memory_order_relaxed));
  s.sum_seconds = static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

VariantMetrics* ServeMetrics::ForVariant(const std::string& variant, const std::string& model,
                                         int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& entry = entries_[std::make_tuple(variant, model, version)];
  if (!entry) {
    entry = std::make_unique<Entry>();
    entry->variant = variant;
    entry->model = model;
    entry->version = version;
  }
  return &entry->metrics;
}

std::string ServeMetrics::Render(const std::string& endpoint, int64_t in_flight,
                                 int64_t log_records, int64_t log_dropped,
                                 const std::vector<std::pair<std::string, double>>& gauges) const {
  struct Row {
    const Entry* entry;
    VariantMetrics::Snapshot snapshot;
  };
  std::vector<Row> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, entry] : entries_) rows.push_back({entry.get(), entry->metrics.Read()});
  }
  const std::string ep = Escape(endpoint);
  std::string out;

  Add(out,
      "# HELP ferry_requests_total Requests answered, by variant, model version and HTTP "
      "status.\n# TYPE ferry_requests_total counter\n");
  for (const Row& row : rows) {
    for (const auto& [status, n] : row.snapshot.by_status) {
      Add(out,
          "ferry_requests_total{{endpoint=\"{}\",variant=\"{}\",model=\"{}\",version=\"{}\","
          "code=\"{}\"}} {}\n",
          ep, Escape(row.entry->variant), Escape(row.entry->model), row.entry->version, status, n);
    }
  }

  // The histogram is by variant: model versions that served under one variant name add up.
  std::map<std::string, VariantMetrics::Snapshot> by_variant;
  for (const Row& row : rows) {
    auto& total = by_variant[row.entry->variant];
    if (total.counts.empty()) total.counts.assign(kLatencyBuckets, 0);
    for (size_t i = 0; i < kLatencyBuckets; ++i) total.counts[i] += row.snapshot.counts[i];
    total.requests += row.snapshot.requests;
    total.sum_seconds += row.snapshot.sum_seconds;
  }
  Add(out,
      "# HELP ferry_request_duration_seconds Request latency, from the request's arrival to "
      "its answer.\n# TYPE ferry_request_duration_seconds histogram\n");
  for (const auto& [variant, total] : by_variant) {
    const std::string labels = fmt::format("endpoint=\"{}\",variant=\"{}\"", ep, Escape(variant));
    int64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets; ++i) {
      cumulative += total.counts[i];
      if (i < std::size(kLatencyBoundsMs)) {
        Add(out, "ferry_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels,
            kLatencyBoundsMs[i] / 1000.0, cumulative);
      } else {
        Add(out, "ferry_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", labels,
            cumulative);
      }
    }
    Add(out, "ferry_request_duration_seconds_sum{{{}}} {}\n", labels, total.sum_seconds);
    Add(out, "ferry_request_duration_seconds_count{{{}}} {}\n", labels, cumulative);
  }

  Add(out,
      "# HELP ferry_in_flight_requests Requests being handled now.\n"
      "# TYPE ferry_in_flight_requests gauge\n"
      "ferry_in_flight_requests{{endpoint=\"{}\"}} {}\n",
      ep, in_flight);
  Add(out,
      "# HELP ferry_inference_log_records_total Records written to the inference log.\n"
      "# TYPE ferry_inference_log_records_total counter\n"
      "ferry_inference_log_records_total{{endpoint=\"{}\"}} {}\n",
      ep, log_records);
  Add(out,
      "# HELP ferry_inference_log_dropped_total Records dropped because the inference log's "
      "queue was full.\n"
      "# TYPE ferry_inference_log_dropped_total counter\n"
      "ferry_inference_log_dropped_total{{endpoint=\"{}\"}} {}\n",
      ep, log_dropped);
  for (const auto& [name, value] : gauges) {
    Add(out, "# TYPE {} gauge\n{}{{endpoint=\"{}\"}} {}\n", name, name, ep, value);
  }
  return out;
}

double HistogramQuantileMs(const std::vector<int64_t>& counts, double q) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (total == 0 || counts.empty()) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(total);
  const size_t finite = std::min(counts.size() - 1, std::size(kLatencyBoundsMs));
  int64_t below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const int64_t in_bucket = counts[i];
    if (in_bucket > 0 && static_cast<double>(below + in_bucket) >= rank) {
      if (i >= finite) return kLatencyBoundsMs[finite - 1];  // +Inf: the last finite bound
      const double lower = i == 0 ? 0.0 : kLatencyBoundsMs[i - 1];
      const double upper = kLatencyBoundsMs[i];
      return lower +
             (upper - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in_bucket);
    }
    below += in_bucket;
  }
  return kLatencyBoundsMs[finite - 1];
}

std::string LatencyToJson(const std::vector<int64_t>& counts) {
  return nlohmann::json{{"bounds_ms", kLatencyBoundsMs}, {"counts", counts}}.dump();
}

std::optional<std::vector<int64_t>> LatencyFromJson(const std::string& text) {
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("counts") || !doc["counts"].is_array()) return std::nullopt;
  if (doc.contains("bounds_ms") && doc["bounds_ms"] != nlohmann::json(kLatencyBoundsMs)) {
    return std::nullopt;
  }
  const nlohmann::json& c = doc["counts"];
  if (c.size() != kLatencyBuckets) return std::nullopt;
  std::vector<int64_t> counts;
  counts.reserve(kLatencyBuckets);
  for (const nlohmann::json& n : c) {
    if (!n.is_number_integer() || n.get<int64_t>() < 0) return std::nullopt;
    counts.push_back(n.get<int64_t>());
  }
  return counts;
}

}  // namespace ferry::serve
