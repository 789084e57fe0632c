// Every rule of a rules file against one hand-built table: a passing and a failing fixture per
// rule (tests/fixtures/validate/<rule>_{pass,fail}.yaml) with the exact report asserted, the
// exact messages of malformed rules files, and the text report.

#include "ferry/data/validate.h"

#include <cmath>
#include <ostream>
#include <string>

#include "ferry/common/fs.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace ferry::data {
namespace {

std::string Fixture(const std::string& name) {
  return std::string(FERRY_SOURCE_DIR) + "/tests/fixtures/validate/" + name;
}

int64_t Ts(const char* text) {
  std::optional<int64_t> t = ParseTimestamp(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(0);
}

// customer_id tenure plan       charges signup_date
// 1           3      basic      10.5    2026-01-01
// 2           10     pro        20      2026-03-15
// 3           null   basic      35.25   2025-12-01
// 4           130    gold       -2      null
// 5           -1     enterprise 50      2026-11-01
// 6           24     null       99.5    2026-06-30
Table Customers() {
  Table t;
  Column& id = t.AddColumn("customer_id", ColumnType::kInt64);
  for (int64_t v : {1, 2, 3, 4, 5, 6}) id.AppendInt(v);
  Column& tenure = t.AddColumn("tenure", ColumnType::kInt64);
  tenure.AppendInt(3);
  tenure.AppendInt(10);
  tenure.AppendNull();
  tenure.AppendInt(130);
  tenure.AppendInt(-1);
  tenure.AppendInt(24);
  Column& plan = t.AddColumn("plan", ColumnType::kString);
  for (const char* v : {"basic", "pro", "basic", "gold", "enterprise"}) plan.AppendString(v);
  plan.AppendNull();
  Column& charges = t.AddColumn("charges", ColumnType::kFloat64);
  for (double v : {10.5, 20.0, 35.25, -2.0, 50.0, 99.5}) charges.AppendDouble(v);
  Column& signup = t.AddColumn("signup_date", ColumnType::kTimestamp);
  signup.AppendInt(Ts("2026-01-01"));
  signup.AppendInt(Ts("2026-03-15"));
  signup.AppendInt(Ts("2025-12-01"));
  signup.AppendNull();
  signup.AppendInt(Ts("2026-11-01"));
  signup.AppendInt(Ts("2026-06-30"));
  EXPECT_TRUE(t.Consistent());
  return t;
}

// The reference of the distribution rules, written by hand (not by ComputeProfile):
//   charges: 6 values in bins [0,25) [25,50) [50,75) [75,100] counted 2, 2, 1, 1
//   plan:    100 values, basic 50, pro 40, and 10 others
Profile Reference() {
  Profile p;
  p.rows = 100;
  ColumnProfile charges;
  charges.name = "charges";
  charges.type = ColumnType::kFloat64;
  charges.count = 6;
  charges.histogram = Histogram{.edges = {0, 25, 50, 75, 100}, .counts = {2, 2, 1, 1}};
  p.columns.push_back(charges);
  ColumnProfile plan;
  plan.name = "plan";
  plan.type = ColumnType::kString;
  plan.count = 100;
  plan.distinct = 4;
  plan.top = {{"basic", 50}, {"pro", 40}};
  p.columns.push_back(plan);
  return p;
}

ValidateOptions Options(const Profile* reference) {
  return ValidateOptions{
      .now_micros = Ts("2026-11-27"), .reference = reference, .dataset = "customers"};
}

RuleSet Load(const std::string& name) {
  absl::StatusOr<RuleSet> rules = LoadRules(Fixture(name));
  EXPECT_TRUE(rules.ok()) << rules.status();
  return rules.ok() ? *rules : RuleSet{};
}

std::string Pretty(const std::string& json) { return nlohmann::ordered_json::parse(json).dump(2); }

struct RuleCase {
  std::string rule;
  int pass_rules;           // rules_checked of <rule>_pass.yaml
  std::string fail_report;  // the exact JSON report of <rule>_fail.yaml
};

void PrintTo(const RuleCase& c, std::ostream* os) { *os << c.rule; }

class RuleFixtureTest : public testing::TestWithParam<RuleCase> {};

TEST_P(RuleFixtureTest, PassingFixturePasses) {
  const RuleCase& c = GetParam();
  Profile reference = Reference();
  ValidationReport report = Validate(Load(c.rule + "_pass.yaml"), Customers(), Options(&reference));
  EXPECT_EQ(report.ToJson().dump(2),
            Pretty(fmt::format(R"j({{"dataset": "customers", "rows": 6, "passed": true,
                                  "errors": 0, "warnings": 0, "rules_checked": {},
                                  "violations": []}})j",
                               c.pass_rules)));
}

TEST_P(RuleFixtureTest, FailingFixtureReportsExactViolations) {
  const RuleCase& c = GetParam();
  Profile reference = Reference();
  ValidationReport report = Validate(Load(c.rule + "_fail.yaml"), Customers(), Options(&reference));
  EXPECT_EQ(report.ToJson().dump(2), Pretty(c.fail_report));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, RuleFixtureTest,
    testing::Values(
        RuleCase{"rows", 1, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 1, "warnings": 0, "rules_checked": 1, "violations": [
          {"rule": "rows", "column": "", "level": "error",
           "message": "6 rows, fewer than the minimum 10", "count": 6, "samples": []}]})j"},
        RuleCase{"required", 3, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 1, "warnings": 0, "rules_checked": 5, "violations": [
          {"rule": "required", "column": "churned", "level": "error",
           "message": "column 'churned' is missing; not checked: type, max_missing",
           "count": 1, "samples": ["churned"]}]})j"},
        RuleCase{"allow_extra", 6, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 1, "warnings": 0, "rules_checked": 3, "violations": [
          {"rule": "allow_extra", "column": "", "level": "error",
           "message": "3 columns not named in the rules: plan, charges, signup_date",
           "count": 3, "samples": ["plan", "charges", "signup_date"]}]})j"},
        RuleCase{"type", 5, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 1, "warnings": 1, "rules_checked": 3, "violations": [
          {"rule": "type", "column": "customer_id", "level": "error",
           "message": "column 'customer_id' is int64, expected string",
           "count": 1, "samples": ["int64"]},
          {"rule": "type", "column": "charges", "level": "warning",
           "message": "column 'charges' is float64, expected int64",
           "count": 1, "samples": ["float64"]}]})j"},
        RuleCase{"max_missing", 3, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 1, "warnings": 1, "rules_checked": 3, "violations": [
          {"rule": "max_missing", "column": "tenure", "level": "error",
           "message": "1 of 6 values missing (16.67%), more than max_missing 10%",
           "count": 1, "samples": []},
          {"rule": "max_missing", "column": "plan", "level": "warning",
           "message": "1 of 6 values missing (16.67%), more than max_missing 5%",
           "count": 1, "samples": []}]})j"},
        RuleCase{"range", 3, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 1, "warnings": 2, "rules_checked": 3, "violations": [
          {"rule": "range", "column": "tenure", "level": "error",
           "message": "2 values outside [0, 120]", "count": 2, "samples": ["130", "-1"]},
          {"rule": "range", "column": "charges", "level": "warning",
           "message": "1 value outside [0, +inf]", "count": 1, "samples": ["-2"]},
          {"rule": "range", "column": "signup_date", "level": "warning",
           "message": "1 value outside [-inf, 2026-06-30T00:00:00Z]", "count": 1,
           "samples": ["2026-11-01T00:00:00Z"]}]})j"},
        RuleCase{"allowed", 2, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 2, "warnings": 0, "rules_checked": 2, "violations": [
          {"rule": "allowed", "column": "plan", "level": "error",
           "message": "1 value not in the allowed list (basic, pro, enterprise)",
           "count": 1, "samples": ["gold"]},
          {"rule": "allowed", "column": "customer_id", "level": "error",
           "message": "3 values not in the allowed list (1, 2, 3)",
           "count": 3, "samples": ["4", "5", "6"]}]
})j"},
        RuleCase{"unique", 2, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 2, "warnings": 0, "rules_checked": 3, "violations": [
          {"rule": "unique", "column": "plan", "level": "error",
           "message": "1 duplicate value", "count": 1, "samples": ["basic"]},
          {"rule": "column", "column": "region", "level": "error",
           "message": "column 'region' is missing; not checked: unique",
           "count": 1, "samples": ["region"]}]})j"},
        RuleCase{"freshness", 2, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 2, "warnings": 0, "rules_checked": 2, "violations": [
          {"rule": "freshness", "column": "signup_date", "level": "error",
           "message": "newest value is 26d old, older than 12h (cutoff 2026-11-26T12:00:00Z)",
           "count": 1, "samples": ["2026-11-01T00:00:00Z"]},
          {"rule": "freshness", "column": "tenure", "level": "error",
           "message": "freshness needs a timestamp column; 'tenure' is int64, not checked",
           "count": 1, "samples": []}]
})j"},
        // PSI by hand. charges: reference shares 2/6 2/6 1/6 1/6, current (-2, 10.5, 20 | 35.25
        // | 50 | 99.5) 3/6 1/6 1/6 1/6: (1/6) ln 1.5 + (1/6) ln 2 = 0.18310. plan: reference
        // basic .5 pro .4 other .1, current (5 non-null) .4 .2 .4:
        // .1 ln 1.25 + .2 ln 2 + .3 ln 4 = 0.57683.
        RuleCase{"psi", 2, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 1, "warnings": 1, "rules_checked": 2, "violations": [
          {"rule": "psi", "column": "charges", "level": "warning",
           "message": "psi 0.1831 above the threshold 0.1 (4 bins, 6 values against 6 in the reference)",
           "count": 1, "samples": ["0.1831"]},
          {"rule": "psi", "column": "plan", "level": "error",
           "message": "psi 0.5768 above the threshold 0.2 (2 categories + other, 5 values against 100 in the reference)",
           "count": 1, "samples": ["0.5768"]}]
})j"},
        // KS by hand: at x = 20 the reference CDF is (2 * 20/25) / 6 = 0.26667 and the current
        // one 3/6, a gap of 0.23333, the largest over every value and edge.
        RuleCase{"ks", 1, R"j({"dataset": "customers", "rows": 6, "passed": false,
          "errors": 2, "warnings": 0, "rules_checked": 2, "violations": [
          {"rule": "ks", "column": "charges", "level": "error",
           "message": "ks 0.2333 above the threshold 0.2 (6 values against the reference histogram of 4 bins)",
           "count": 1, "samples": ["0.2333"]},
          {"rule": "ks", "column": "plan", "level": "error",
           "message": "ks needs a numeric column; 'plan' is string, not checked",
           "count": 1, "samples": []}]
})j"}),
    [](const testing::TestParamInfo<RuleCase>& info) { return info.param.rule; });

TEST(ValidateTest, DistributionWithoutReferenceIsOneViolation) {
  ValidationReport report = Validate(Load("psi_fail.yaml"), Customers(), Options(nullptr));
  EXPECT_EQ(report.ToJson().dump(2), Pretty(R"j({"dataset": "customers", "rows": 6,
    "passed": false, "errors": 1, "warnings": 0, "rules_checked": 2, "violations": [
    {"rule": "reference", "column": "", "level": "error",
     "message": "no reference profile given for customers@1; 2 distribution rules not checked",
     "count": 1, "samples": []}]})j"));
}

TEST(ValidateTest, DistributionColumnAbsentFromReference) {
  absl::StatusOr<RuleSet> rules =
      ParseRules("distribution: { columns: { tenure: { psi: 0.1, ks: 0.1 } } }", "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ(rules->reference, "");
  Profile reference = Reference();
  ValidationReport report = Validate(*rules, Customers(), Options(&reference));
  ASSERT_EQ(report.violations.size(), 2u);
  EXPECT_EQ(report.violations[0].rule, "psi");
  EXPECT_EQ(report.violations[0].message,
            "column 'tenure' is not in the reference profile, not checked");
  EXPECT_EQ(report.violations[1].rule, "ks");
}

TEST(ValidateTest, KsIsOneStepForDataMatchingTheHistogramAndOneForDisjointData) {
  Profile reference = Reference();
  absl::StatusOr<RuleSet> rules =
      ParseRules("distribution: { columns: { charges: { ks: 0 } } }", "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  // Values spread evenly in each bin as the counts say: the empirical CDF touches the linear one
  // at the top of each step, so the gap is one step, 1/n.
  Table even;
  Column& c = even.AddColumn("charges", ColumnType::kFloat64);
  for (double v : {12.5, 25.0, 37.5, 50.0, 75.0, 100.0}) c.AppendDouble(v);
  ValidationReport report = Validate(*rules, even, Options(&reference));
  ASSERT_EQ(report.violations.size(), 1u);
  EXPECT_EQ(report.violations[0].samples, std::vector<std::string>{"0.1667"});
  // All current values above the reference's range: the CDFs never meet.
  Table far;
  Column& f = far.AddColumn("charges", ColumnType::kFloat64);
  for (double v : {500.0, 600.0}) f.AppendDouble(v);
  report = Validate(*rules, far, Options(&reference));
  ASSERT_EQ(report.violations.size(), 1u);
  EXPECT_EQ(report.violations[0].samples, std::vector<std::string>{"1.0000"});
}

TEST(ValidateTest, TextReport) {
  Profile reference = Reference();
  ValidationReport report = Validate(Load("range_fail.yaml"), Customers(), Options(&reference));
  EXPECT_EQ(report.ToText(),
            "dataset customers: 6 rows, 3 rules checked: FAILED (1 error, 2 warnings)\n"
            "LEVEL    RULE   COLUMN       COUNT  SAMPLES               MESSAGE\n"
            "error    range  tenure           2  130, -1               2 values outside [0, 120]\n"
            "warning  range  charges          1  -2                    1 value outside [0, +inf]\n"
            "warning  range  signup_date      1  2026-11-01T00:00:00Z  1 value outside [-inf, "
            "2026-06-30T00:00:00Z]\n");
  ValidationReport ok = Validate(Load("range_pass.yaml"), Customers(), Options(&reference));
  EXPECT_EQ(ok.ToText(),
            "dataset customers: 6 rows, 3 rules checked: PASSED (0 errors, 0 warnings)\n");
}

TEST(ValidateTest, WarningsAloneDoNotFail) {
  absl::StatusOr<RuleSet> rules = ParseRules("level: warning\nrows: { min: 100 }\n", "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ValidationReport report = Validate(*rules, Customers(), Options(nullptr));
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.errors(), 0);
  EXPECT_EQ(report.warnings(), 1);
}

TEST(ValidateTest, SamplesAreAtMostFiveDistinctValues) {
  Table t;
  Column& c = t.AddColumn("id", ColumnType::kInt64);
  for (int64_t v : {7, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12}) c.AppendInt(v);
  absl::StatusOr<RuleSet> rules = ParseRules("schema: { id: { unique: true } }", "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ValidationReport report = Validate(*rules, t, Options(nullptr));
  ASSERT_EQ(report.violations.size(), 1u);
  EXPECT_EQ(report.violations[0].count, 7);
  EXPECT_EQ(report.violations[0].samples, (std::vector<std::string>{"7", "8", "9", "10", "11"}));
}

TEST(ValidateTest, RangeCountsNanAsOutsideAndSkipsNulls) {
  Table t;
  Column& x = t.AddColumn("x", ColumnType::kFloat64);
  x.AppendDouble(1);
  x.AppendNull();
  x.AppendDouble(std::nan(""));
  x.AppendDouble(-0.5);
  absl::StatusOr<RuleSet> rules = ParseRules("schema: { x: { range: [0, 1] } }", "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ValidationReport report = Validate(*rules, t, Options(nullptr));
  ASSERT_EQ(report.violations.size(), 1u);
  EXPECT_EQ(report.violations[0].count, 2);
  EXPECT_EQ(report.violations[0].samples, (std::vector<std::string>{"nan", "-0.5"}));
}

TEST(ValidateTest, RulesOnColumnsOfAnotherTypeAreReportedNotChecked) {
  absl::StatusOr<RuleSet> rules = ParseRules(
      "schema:\n"
      "  plan: { range: [0, 1] }\n"
      "  tenure: { range: { min: '2026-01-01' } }\n"
      "  charges: { allowed: [20, 50] }\n",
      "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ValidationReport report = Validate(*rules, Customers(), Options(nullptr));
  ASSERT_EQ(report.violations.size(), 3u);
  EXPECT_EQ(report.violations[0].message,
            "range needs a numeric column; 'plan' is string, not checked");
  EXPECT_EQ(report.violations[1].message,
            "range is written in timestamps but 'tenure' is int64, not checked");
  // Floats compare by their text, as CSV writes them.
  EXPECT_EQ(report.violations[2].count, 4);
  EXPECT_EQ(report.violations[2].samples,
            (std::vector<std::string>{"10.5", "35.25", "-2", "99.5"}));
}

TEST(ParseRulesTest, ParsesEveryField) {
  absl::StatusOr<RuleSet> rules = LoadRules(Fixture("range_fail.yaml"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->rules.size(), 3u);
  const Rule& tenure = rules->rules[0];
  EXPECT_EQ(tenure.kind, RuleKind::kRange);
  EXPECT_EQ(tenure.column, "tenure");
  EXPECT_EQ(tenure.level, Level::kError);
  EXPECT_EQ(tenure.min, 0);
  EXPECT_EQ(tenure.max, 120);
  EXPECT_EQ(config::FormatLoc(tenure.loc), Fixture("range_fail.yaml") + ":3:18");
  EXPECT_EQ(rules->rules[1].level, Level::kWarning);  // the file's level
  EXPECT_EQ(rules->rules[1].min, 0);
  EXPECT_FALSE(rules->rules[1].max.has_value());
  EXPECT_FALSE(rules->rules[2].min.has_value());
  EXPECT_EQ(rules->rules[2].max, static_cast<double>(Ts("2026-06-30")));

  absl::StatusOr<RuleSet> more = ParseRules(
      "schema:\n  a: { max_missing: 5%, freshness: 400d, allowed: [1, x] }\n"
      "distribution:\n  reference: customers@1\n  level: warning\n  columns: { a: { ks: 0.1 } }\n",
      "r.yaml");
  ASSERT_TRUE(more.ok()) << more.status();
  ASSERT_EQ(more->rules.size(), 4u);
  EXPECT_DOUBLE_EQ(more->rules[0].max_missing, 0.05);
  EXPECT_EQ(more->rules[1].freshness_micros, int64_t{400} * 86400 * 1000000);
  EXPECT_EQ(more->rules[2].allowed, (std::vector<std::string>{"1", "x"}));
  EXPECT_EQ(more->rules[3].kind, RuleKind::kKs);
  EXPECT_EQ(more->rules[3].level, Level::kWarning);
  EXPECT_EQ(more->rules[3].threshold, 0.1);
  EXPECT_TRUE(more->has_distribution);
  EXPECT_EQ(more->reference, "customers@1");
}

// The whole message of a malformed fixture, with the fixture's path abbreviated to "F".
std::string ErrorsOf(const std::string& name) {
  absl::StatusOr<RuleSet> rules = LoadRules(Fixture(name));
  if (rules.ok()) return "(parsed)";
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(rules.status().message());
  std::string path = Fixture(name);
  for (size_t at = message.find(path); at != std::string::npos; at = message.find(path, at)) {
    message.replace(at, path.size(), "F");
  }
  return message;
}

TEST(ParseRulesTest, BadYaml) {
  EXPECT_EQ(ErrorsOf("bad_yaml.yaml"), "F:2:7: error: invalid YAML: end of map flow not found");
}

TEST(ParseRulesTest, UnknownKeysAreAllReportedWithSuggestions) {
  EXPECT_EQ(ErrorsOf("unknown_keys.yaml"),
            "F:1:17: error: unknown key 'maxx' in rows; did you mean 'max'?\n"
            "F:2:1: error: unknown top-level key 'colums'; did you mean 'columns'?\n"
            "F:5:26: error: unknown key 'rnage' in schema column 'tenure'; did you mean "
            "'range'?\n"
            "F:9:16: error: unknown key 'pis' in distribution column 'charges'; did you mean "
            "'psi'?");
}

TEST(ParseRulesTest, WrongTypesOfValuesAreAllReported) {
  EXPECT_EQ(ErrorsOf("wrong_types.yaml"),
            "F:1:8: error: invalid level in the rules file: must be error or warning, got "
            "'fatal'\n"
            "F:2:14: error: invalid min in rows: must be a non-negative integer, got 'many'\n"
            "F:4:13: error: invalid required in columns: must be a list of column names, got "
            "'a, b'\n"
            "F:5:16: error: invalid allow_extra in columns: must be true or false, got 'nope'\n"
            "F:7:20: error: invalid type in schema column 'tenure': unknown column type "
            "'integer64'; use one of int64, float64, string, bool, timestamp\n"
            "F:7:44: error: invalid max_missing in schema column 'tenure': must be a fraction "
            "between 0 and 1 or a percentage like '5%', got '1.5'\n"
            "F:7:56: error: invalid range in schema column 'tenure': min 10 is greater than max "
            "0\n"
            "F:8:23: error: invalid allowed in schema column 'plan': must be a non-empty list of "
            "values, got 'basic'\n"
            "F:8:38: error: invalid unique in schema column 'plan': must be true or false, got "
            "'yes'\n"
            "F:9:28: error: invalid range in schema column 'charges': a bound must be a number or "
            "a timestamp, got 'low'\n"
            "F:12:21: error: invalid psi in distribution column 'charges': must be a "
            "non-negative threshold, got '-1'");
}

TEST(ParseRulesTest, BadDurations) {
  EXPECT_EQ(ErrorsOf("bad_duration.yaml"),
            "F:2:29: error: invalid freshness in schema column 'signup_date': unknown duration "
            "unit 'days' in '400 days'; use ms, s, m, h or d\n"
            "F:3:29: error: invalid freshness in schema column 'updated_at': 'soon' is not a "
            "duration; write a number with a unit: 500ms, 30s, 10m, 2h, 1d\n"
            "F:4:29: error: invalid freshness in schema column 'created_at': must be a duration "
            "like 12h or 400d, got a list");
}

TEST(ParseRulesTest, EmptyAndNonMappingFiles) {
  absl::StatusOr<RuleSet> empty = ParseRules("", "r.yaml");
  EXPECT_EQ(empty.status().message(),
            "r.yaml: error: the rules file is empty: add rows:, columns:, schema: or "
            "distribution:");
  absl::StatusOr<RuleSet> list = ParseRules("- rows\n", "r.yaml");
  EXPECT_EQ(list.status().message(),
            "r.yaml:1:1: error: a rules file must be a mapping (rows:, columns:, schema:, "
            "distribution:), got a list");
}

TEST(ParseRulesTest, MissingFileIsNotFound) {
  absl::StatusOr<RuleSet> rules = LoadRules(Fixture("no_such_file.yaml"));
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(rules.status().message(),
            fmt::format("rules file {} does not exist", Fixture("no_such_file.yaml")));
}

}  // namespace
}  // namespace ferry::data
