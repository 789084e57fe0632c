#pragma once
// Prometheus metrics of the serving process: request counts by variant, model version and HTTP
// status, latency histograms by variant, in-flight requests and inference-log counters.
//
// Thread-safety: VariantMetrics::Record and Read are lock-free (relaxed atomics) and may be
// called from any thread; ServeMetrics is thread-safe (a mutex guards the variant table, which
// is touched only by ForVariant and Render, never per request once the pointer is cached).
//
// Example:
//   ServeMetrics metrics;
//   VariantMetrics* blue = metrics.ForVariant("blue", "churn", 7);  // cache this
//   blue->Record(200, absl::Microseconds(180));                    // per request
//   std::string text = metrics.Render("churn", server.in_flight(), log_records, log_dropped);

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/time.h"

namespace ferry::serve {

// Upper bounds of the latency histogram's buckets, in ms (rendered in seconds).
inline constexpr double kLatencyBoundsMs[] = {0.05, 0.1, 0.25, 0.5, 1,    2.5,  5,    10,   25,
                                              50,   100, 250,  500, 1000, 2500, 5000, 10000};
inline constexpr size_t kLatencyBuckets = std::size(kLatencyBoundsMs) + 1;  // + Inf

class VariantMetrics {  // one per variant (name + model version); stable address
 public:
  // Counts one answered request: its HTTP status and latency. Atomics only.
  void Record(int status, absl::Duration latency);

  struct Snapshot {
    int64_t requests = 0;
    int64_t errors = 0;                              // 5xx
    std::vector<int64_t> counts;                     // one per bound + Inf, non-cumulative
    double sum_seconds = 0;                          // total latency
    std::vector<std::pair<int, int64_t>> by_status;  // (status, count), nonzero, ascending
  };
  // A consistent-enough view for scraping (each counter read once; no lock).
  Snapshot Read() const;

 private:
  static constexpr int kMinStatus = 100, kMaxStatus = 599;
  std::array<std::atomic<int64_t>, kMaxStatus - kMinStatus + 2> by_status_{};  // last: other
  std::array<std::atomic<int64_t>, kLatencyBuckets> buckets_{};
  std::atomic<int64_t> sum_nanos_{0};
};

class ServeMetrics {  // thread-safe
 public:
  // The metrics of a variant; created on first use (a mutex here is fine: callers cache the
  // pointer). The pointer stays valid for the life of this object.
  VariantMetrics* ForVariant(const std::string& variant, const std::string& model, int64_t version);

  // Prometheus text exposition format 0.0.4:
  //   ferry_requests_total{endpoint,variant,model,version,code}           counter
  //   ferry_request_duration_seconds{endpoint,variant} _bucket{le} _sum _count  histogram
  //   ferry_in_flight_requests{endpoint}                                 gauge
  //   ferry_inference_log_records_total{endpoint}                        counter
  //   ferry_inference_log_dropped_total{endpoint}                        counter
  // plus `gauges` (name, value), each rendered as an unlabelled gauge.
  std::string Render(const std::string& endpoint, int64_t in_flight, int64_t log_records,
                     int64_t log_dropped,
                     const std::vector<std::pair<std::string, double>>& gauges = {}) const;

 private:
  struct Entry {
    std::string variant, model;
    int64_t version;
    VariantMetrics metrics;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int64_t>, std::unique_ptr<Entry>> entries_;
};

// The q-quantile (0..1) in ms of a histogram given as non-cumulative counts per bound of
// kLatencyBoundsMs (+Inf last), interpolating linearly inside the bucket like Prometheus'
// histogram_quantile (the first bucket starts at 0; a quantile in +Inf is the last finite
// bound); NaN when empty.
double HistogramQuantileMs(const std::vector<int64_t>& counts, double q);

// The latency histogram as a serving process publishes it (state::VariantStatsRecord's
// latency_json): {"bounds_ms": kLatencyBoundsMs, "counts": [one per bound, +Inf last]}.
std::string LatencyToJson(const std::vector<int64_t>& counts);
// The counts of such a document; nullopt when it is malformed, has other bounds or a count that
// is not a non-negative integer (a reader then ignores that row's latency).
std::optional<std::vector<int64_t>> LatencyFromJson(const std::string& text);

}  // namespace ferry::serve
