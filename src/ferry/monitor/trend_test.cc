#include "ferry/monitor/trend.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace ferry::monitor {
namespace {

TEST(FitTrend, ExactLineHasAZeroWidthInterval) {
  auto t = FitTrend({0, 1, 2, 3, 4}, {0.9, 0.88, 0.86, 0.84, 0.82});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_NEAR(t->slope_per_day, -0.02, 1e-12);
  EXPECT_NEAR(t->intercept, 0.9, 1e-12);
  EXPECT_NEAR(t->r2, 1.0, 1e-12);
  EXPECT_NEAR(t->ci_low, -0.02, 1e-9);
  EXPECT_NEAR(t->ci_high, -0.02, 1e-9);
  EXPECT_EQ(t->days, 5);
}

TEST(FitTrend, MatchesHandComputedValuesWithGaps) {
  // x = 0 1 3 4 6, y = 1 3 2 5 6. By hand (and numpy.polyfit / scipy.stats.linregress):
  // mean x = 2.8, mean y = 3.4, Sxx = 22.8, Sxy = 17.4, slope = 0.763157894736842,
  // intercept = 1.263157894736842, SSE = 3.92105263157895, r2 = 0.7720287858,
  // se = sqrt(SSE / 3 / Sxx) = 0.239422, t(0.975, 3) = 3.182446305284263.
  auto t = FitTrend({0, 1, 3, 4, 6}, {1, 3, 2, 5, 6});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_NEAR(t->slope_per_day, 0.763157894736842, 1e-12);
  EXPECT_NEAR(t->intercept, 1.263157894736842, 1e-12);
  const double sse = 3.9210526315789473;
  EXPECT_NEAR(t->r2, 1 - sse / 17.2, 1e-12);
  const double se = std::sqrt(sse / 3 / 22.8);
  EXPECT_NEAR(t->ci_low, 0.763157894736842 - 3.182446305284263 * se, 1e-9);
  EXPECT_NEAR(t->ci_high, 0.763157894736842 + 3.182446305284263 * se, 1e-9);
}

TEST(FitTrend, RecoversAKnownSlopeFromNoisyData) {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 0.01);
  std::vector<double> x, y;
  for (int d = 0; d < 30; ++d) {
    x.push_back(d);
    y.push_back(0.92 - 0.005 * d + noise(rng));
  }
  auto t = FitTrend(x, y);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_NEAR(t->slope_per_day, -0.005, 0.001);
  EXPECT_LT(t->ci_low, -0.005);
  EXPECT_GT(t->ci_high, -0.005);
  EXPECT_LT(t->ci_high, 0);
}

TEST(FitTrend, DegenerateInputs) {
  EXPECT_EQ(FitTrend({0, 1}, {1, 2}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FitTrend({}, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FitTrend({2, 2, 2}, {1, 2, 3}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(FitTrend({0, 1, 2}, {1, 2}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitTrend({0, 1, 2}, {1, NAN, 2}).status().code(), absl::StatusCode::kInvalidArgument);
  auto flat = FitTrend({0, 1, 2}, {0.5, 0.5, 0.5});
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->slope_per_day, 0);
  EXPECT_EQ(flat->r2, 1.0);
  EXPECT_EQ(flat->ci_low, 0);
  EXPECT_EQ(flat->ci_high, 0);
}

}  // namespace
}  // namespace ferry::monitor
