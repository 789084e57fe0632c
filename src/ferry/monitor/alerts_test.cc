#include "ferry/monitor/alerts.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::monitor {
namespace {

using ::testing::HasSubstr;

TEST(ParseAlertRules, CommaList) {
  auto r = ParseAlertRules("psi>0.2, missing_rate >= 0.05,accuracy<0.8");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].metric, "psi");
  EXPECT_EQ((*r)[0].op, ">");
  EXPECT_EQ((*r)[0].threshold, 0.2);
  EXPECT_EQ((*r)[0].text, "psi > 0.2");
  EXPECT_EQ((*r)[1].op, ">=");
  EXPECT_EQ((*r)[1].threshold, 0.05);
  EXPECT_EQ((*r)[2].metric, "accuracy");
  EXPECT_EQ((*r)[2].op, "<");
  EXPECT_TRUE((*r)[2].Crossed(0.7));
  EXPECT_FALSE((*r)[2].Crossed(0.8));
  EXPECT_TRUE((*r)[0].Crossed(0.31));
  EXPECT_FALSE((*r)[0].Crossed(0.2));
}

TEST(ParseAlertRules, YamlMap) {
  auto r = ParseAlertRules("{psi: \"> 0.2\", missing_rate: '> 0.05', slope_per_day: \"< -0.01\"}");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[1].metric, "missing_rate");
  EXPECT_EQ((*r)[2].threshold, -0.01);
  auto block = ParseAlertRules("psi: > 0.25\nks_pvalue: < 0.01\n");
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_EQ(block->size(), 2u);
  EXPECT_EQ((*block)[1].text, "ks_pvalue < 0.01");
}

TEST(ParseAlertRules, EmptyIsNoRules) {
  auto r = ParseAlertRules("  ");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(DefaultAlertRules().size(), 2u);
  EXPECT_EQ(DefaultAlertRules()[0].text, "psi > 0.2");
}

TEST(ParseAlertRules, ErrorsNameTheBadPart) {
  auto unknown = ParseAlertRules("psi>0.2,drift>1");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown metric \"drift\""));
  EXPECT_THAT(unknown.status().message(), HasSubstr("missing_rate"));
  auto no_op = ParseAlertRules("psi 0.2");
  EXPECT_THAT(no_op.status().message(), HasSubstr("\"psi 0.2\""));
  auto bad_number = ParseAlertRules("psi > high");
  EXPECT_THAT(bad_number.status().message(), HasSubstr("\"high\" is not a finite number"));
  auto no_threshold = ParseAlertRules("{psi: \">\"}");
  EXPECT_EQ(no_threshold.status().code(), absl::StatusCode::kInvalidArgument);
  auto unclosed = ParseAlertRules("{psi: > 0.2");
  EXPECT_THAT(unclosed.status().message(), HasSubstr("must end with"));
  auto bad_op = ParseAlertRules("psi: = 0.2");
  EXPECT_THAT(bad_op.status().message(), HasSubstr("operator"));
}

}  // namespace
}  // namespace ferry::monitor
