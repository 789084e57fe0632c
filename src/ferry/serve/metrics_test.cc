#include "ferry/serve/metrics.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ferry::serve {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(VariantMetricsTest, RecordCountsStatusesAndBuckets) {
  VariantMetrics m;
  m.Record(200, absl::Microseconds(40));   // <= 0.05 ms
  m.Record(200, absl::Microseconds(50));   // exactly on the bound: same bucket
  m.Record(400, absl::Microseconds(300));  // (0.25, 0.5]
  m.Record(503, absl::Milliseconds(20));   // (10, 25]
  m.Record(500, absl::Seconds(30));        // +Inf
  VariantMetrics::Snapshot s = m.Read();
  EXPECT_EQ(s.requests, 5);
  EXPECT_EQ(s.errors, 2);
  ASSERT_EQ(s.counts.size(), kLatencyBuckets);
  std::vector<int64_t> want(kLatencyBuckets, 0);
  want[0] = 2;
  want[3] = 1;
  want[8] = 1;
  want[17] = 1;
  EXPECT_EQ(s.counts, want);
  EXPECT_NEAR(s.sum_seconds, 30.02039, 1e-9);
  std::vector<std::pair<int, int64_t>> statuses = {{200, 2}, {400, 1}, {500, 1}, {503, 1}};
  EXPECT_EQ(s.by_status, statuses);
}

TEST(VariantMetricsTest, ConcurrentRecordsAreAllCounted) {
  VariantMetrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) m.Record(200, absl::Microseconds(200));
    });
  }
  for (auto& t : threads) t.join();
  VariantMetrics::Snapshot s = m.Read();
  EXPECT_EQ(s.requests, 40000);
  EXPECT_EQ(s.counts[2], 40000);
}

TEST(ServeMetricsTest, RenderIsPrometheusText) {
  ServeMetrics metrics;
  VariantMetrics* blue = metrics.ForVariant("blue", "churn", 7);
  EXPECT_EQ(metrics.ForVariant("blue", "churn", 7), blue);  // same variant, same pointer
  VariantMetrics* green = metrics.ForVariant("green", "churn", 8);
  blue->Record(200, absl::Microseconds(80));
  blue->Record(200, absl::Milliseconds(2));
  blue->Record(500, absl::Milliseconds(7));
  green->Record(200, absl::Microseconds(30));
  // A later model version under the blue name adds to blue's histogram.
  metrics.ForVariant("blue", "churn", 9)->Record(200, absl::Microseconds(80));

  std::string text = metrics.Render("churn", 3, 120, 4);
  for (
      const char* line : {
          "# TYPE ferry_requests_total counter",
          R"(ferry_requests_total{endpoint="churn",variant="blue",model="churn",version="7",code="200"} 2)",
          R"(ferry_requests_total{endpoint="churn",variant="blue",model="churn",version="7",code="500"} 1)",
          R"(ferry_requests_total{endpoint="churn",variant="blue",model="churn",version="9",code="200"} 1)",
          R"(ferry_requests_total{endpoint="churn",variant="green",model="churn",version="8",code="200"} 1)",
          "# TYPE ferry_request_duration_seconds histogram",
          R"(ferry_request_duration_seconds_bucket{endpoint="churn",variant="blue",le="5e-05"} 0)",
          R"(ferry_request_duration_seconds_bucket{endpoint="churn",variant="blue",le="0.0001"} 2)",
          R"(ferry_request_duration_seconds_bucket{endpoint="churn",variant="blue",le="0.0025"} 3)",
          R"(ferry_request_duration_seconds_bucket{endpoint="churn",variant="blue",le="0.01"} 4)",
          R"(ferry_request_duration_seconds_bucket{endpoint="churn",variant="blue",le="10"} 4)",
          R"(ferry_request_duration_seconds_bucket{endpoint="churn",variant="blue",le="+Inf"} 4)",
          R"(ferry_request_duration_seconds_sum{endpoint="churn",variant="blue"} 0.00916)",
          R"(ferry_request_duration_seconds_count{endpoint="churn",variant="blue"} 4)",
          R"(ferry_request_duration_seconds_bucket{endpoint="churn",variant="green",le="5e-05"} 1)",
          R"(ferry_request_duration_seconds_count{endpoint="churn",variant="green"} 1)",
          "# TYPE ferry_in_flight_requests gauge",
          R"(ferry_in_flight_requests{endpoint="churn"} 3)",
          "# TYPE ferry_inference_log_records_total counter",
          R"(ferry_inference_log_records_total{endpoint="churn"} 120)",
          "# TYPE ferry_inference_log_dropped_total counter",
          R"(ferry_inference_log_dropped_total{endpoint="churn"} 4)",
      }) {
    EXPECT_TRUE(HasLine(text, line)) << "missing line: " << line << "\n" << text;
  }
  // Every line is a comment or `name{labels} value`, and the text ends with a newline.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  size_t start = 0;
  int samples = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("# ", 0) == 0) continue;
    ++samples;
    size_t brace = line.find('{'), close = line.rfind('}');
    ASSERT_NE(brace, std::string::npos) << line;
    ASSERT_EQ(line[close + 1], ' ') << line;
    std::string value = line.substr(close + 2);
    char* parse_end = nullptr;
    std::strtod(value.c_str(), &parse_end);
    EXPECT_EQ(*parse_end, '\0') << line;
  }
  EXPECT_EQ(samples, 4 + 2 * (18 + 2) + 3);
}

TEST(ServeMetricsTest, LabelValuesAreEscaped) {
  ServeMetrics metrics;
  metrics.ForVariant("a\"b\\c\nd", "m", 1)->Record(200, absl::Microseconds(1));
  std::string text = metrics.Render("e", 0, 0, 0);
  EXPECT_NE(text.find(R"(variant="a\"b\\c\nd")"), std::string::npos) << text;
}

TEST(HistogramQuantileTest, InterpolatesInsideBuckets) {
  std::vector<int64_t> counts(kLatencyBuckets, 0);
  EXPECT_TRUE(std::isnan(HistogramQuantileMs(counts, 0.5)));
  counts[0] = 10;  // (0, 0.05]
  EXPECT_DOUBLE_EQ(HistogramQuantileMs(counts, 0.5), 0.025);
  EXPECT_DOUBLE_EQ(HistogramQuantileMs(counts, 1.0), 0.05);
  counts[4] = 10;  // (0.5, 1]
  // 20 observations: the median is the 10th, the top of the first bucket.
  EXPECT_DOUBLE_EQ(HistogramQuantileMs(counts, 0.5), 0.05);
  // p75: rank 15, halfway into (0.5, 1].
  EXPECT_DOUBLE_EQ(HistogramQuantileMs(counts, 0.75), 0.75);
  // p99: rank 19.8, 98% of the way into (0.5, 1].
  EXPECT_DOUBLE_EQ(HistogramQuantileMs(counts, 0.99), 0.5 + 0.5 * 0.98);
  // Observations above the last bound: the last finite bound.
  counts[17] = 80;
  EXPECT_DOUBLE_EQ(HistogramQuantileMs(counts, 0.99), 10000);
}

}  // namespace
}  // namespace ferry::serve
