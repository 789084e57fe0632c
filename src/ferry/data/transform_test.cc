#include "ferry/data/transform.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "gtest/gtest.h"

namespace ferry::data {
namespace {

using nlohmann::json;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Values of one column written out, nulls as nullopt.
using Ints = std::vector<std::optional<int64_t>>;
using Doubles = std::vector<std::optional<double>>;
using Strings = std::vector<std::optional<std::string>>;

void AddInts(Table& t, const std::string& name, const Ints& v,
             ColumnType type = ColumnType::kInt64) {
  Column& c = t.AddColumn(name, type);
  for (const auto& x : v) x ? c.AppendInt(*x) : c.AppendNull();
}
void AddDoubles(Table& t, const std::string& name, const Doubles& v) {
  Column& c = t.AddColumn(name, ColumnType::kFloat64);
  for (const auto& x : v) x ? c.AppendDouble(*x) : c.AppendNull();
}
void AddStrings(Table& t, const std::string& name, const Strings& v) {
  Column& c = t.AddColumn(name, ColumnType::kString);
  for (const auto& x : v) x ? c.AppendString(*x) : c.AppendNull();
}

Doubles DoublesOf(const Table& t, const std::string& name) {
  const Column& c = t.column(name);
  EXPECT_EQ(c.type(), ColumnType::kFloat64) << name;
  Doubles out;
  for (size_t r = 0; r < c.size(); ++r) {
    out.push_back(c.is_null(r) ? std::nullopt : std::optional<double>(c.float_at(r)));
  }
  return out;
}
Ints IntsOf(const Table& t, const std::string& name) {
  const Column& c = t.column(name);
  Ints out;
  for (size_t r = 0; r < c.size(); ++r) {
    out.push_back(c.is_null(r) ? std::nullopt : std::optional<int64_t>(c.int_at(r)));
  }
  return out;
}
Strings StringsOf(const Table& t, const std::string& name) {
  const Column& c = t.column(name);
  Strings out;
  for (size_t r = 0; r < c.size(); ++r) {
    out.push_back(c.is_null(r) ? std::nullopt : std::optional<std::string>(c.string_at(r)));
  }
  return out;
}

// Names, types, null masks and values (bit for bit for doubles).
void ExpectTablesEqual(const Table& a, const Table& b) {
  ASSERT_EQ(a.ColumnNames(), b.ColumnNames());
  ASSERT_EQ(a.num_rows(), b.num_rows());
  for (size_t i = 0; i < a.num_columns(); ++i) {
    const Column& x = a.column(i);
    const Column& y = b.column(i);
    ASSERT_EQ(x.type(), y.type()) << x.name();
    for (size_t r = 0; r < x.size(); ++r) {
      ASSERT_EQ(x.is_null(r), y.is_null(r)) << x.name() << " row " << r;
      if (x.is_null(r)) continue;
      if (x.type() == ColumnType::kFloat64) {
        ASSERT_EQ(x.float_at(r), y.float_at(r)) << x.name() << " row " << r;
      } else {
        ASSERT_EQ(x.ToText(r), y.ToText(r)) << x.name() << " row " << r;
      }
    }
  }
}

// customer_id | tenure | plan  | charges | churned
//  1          | 1      | basic | 10      | true
//  2          | null   | pro   | 20      | false
//  3          | 5      | null  | 30      | false
//  4          | 3      | basic | null    | true
//  5          | 10     | trial | 40      | false
Table Churn() {
  Table t;
  AddInts(t, "customer_id", {1, 2, 3, 4, 5});
  AddInts(t, "tenure", {1, std::nullopt, 5, 3, 10});
  AddStrings(t, "plan", {"basic", "pro", std::nullopt, "basic", "trial"});
  AddDoubles(t, "charges", {10.0, 20.0, 30.0, std::nullopt, 40.0});
  AddInts(t, "churned", {1, 0, 0, 1, 0}, ColumnType::kBool);
  return t;
}

absl::StatusOr<TransformResult> Fit(const json& ops, Table t) {
  FERRY_ASSIGN_OR_RETURN(std::vector<TransformOp> parsed, ParseOps(ops));
  return FitTransform(parsed, std::move(t));
}

TEST(TransformTest, SelectDropRenameCast) {
  auto r = Fit(json::parse(R"([
      {"select": ["customer_id", "tenure", "plan", "charges"]},
      {"drop": ["customer_id"]},
      {"rename": {"charges": "monthly_charges"}},
      {"cast": {"tenure": "float64"}}])"),
               Churn());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->train.ColumnNames(),
            (std::vector<std::string>{"tenure", "plan", "monthly_charges"}));
  EXPECT_EQ(DoublesOf(r->train, "tenure"), (Doubles{1.0, std::nullopt, 5.0, 3.0, 10.0}));
  EXPECT_FALSE(r->test.has_value());
  EXPECT_EQ(r->state["ops"][2], json::parse(R"({"rename": {"charges": "monthly_charges"}})"));
  EXPECT_EQ(r->state["ops"][3], json::parse(R"({"cast": {"tenure": "float64"}})"));
  EXPECT_EQ(r->state["output_columns"], json::parse(R"([{"name": "tenure", "type": "float64"},
      {"name": "plan", "type": "string"}, {"name": "monthly_charges", "type": "float64"}])"));
  EXPECT_EQ(r->state["version"], 1);
  EXPECT_EQ(r->state["input_columns"].size(), 5u);
}

TEST(TransformTest, RenameIsSimultaneousAndRefusesClashes) {
  Table t;
  AddInts(t, "a", {1});
  AddInts(t, "b", {2});
  auto r = Fit(json::parse(R"([{"rename": {"a": "b", "b": "a"}}])"), t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->train.ColumnNames(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(IntsOf(r->train, "a"), (Ints{2}));

  auto clash = Fit(json::parse(R"([{"rename": {"a": "b"}}])"), t);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(Msg(clash.status()),
            "ops[0] (rename): renaming 'a' to 'b' clashes with the column 'b' already named so; "
            "drop or rename that one too");
}

TEST(TransformTest, CastConvertsStringsAndNamesTheBadRow) {
  Table t;
  AddStrings(t, "x", {"1", "2.5", "", std::nullopt});
  auto f = Fit(json::parse(R"([{"cast": {"x": "double"}}])"), t);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(DoublesOf(f->train, "x"), (Doubles{1.0, 2.5, std::nullopt, std::nullopt}));

  auto i = Fit(json::parse(R"([{"cast": {"x": "int64"}}])"), t);
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(Msg(i.status()),
            "ops[0] (cast): column 'x': row 2: '2.5' is not an int64; fix the data, or filter or "
            "impute the rows first");

  Table d;
  AddDoubles(d, "y", {3.0, 1.5});
  auto w = Fit(json::parse(R"([{"cast": {"y": "int64"}}])"), d);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(Msg(w.status()).find("row 2: '1.5' is not a whole number"), std::string::npos)
      << w.status();
}

TEST(TransformTest, FilterKeepsMatchingRowsAndNullsCompareFalse) {
  auto r = Fit(json::parse(R"([{"filter": "tenure >= 3 and plan != 'trial'"}])"), Churn());
  ASSERT_TRUE(r.ok()) << r.status();
  // Row 3 has plan null: `plan != 'trial'` is false for it.
  EXPECT_EQ(IntsOf(r->train, "customer_id"), (Ints{4}));

  auto r2 =
      Fit(json::array({{{"filter", "tenure is null or (charges > 15 and not churned == true)"}}}),
          Churn());
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(IntsOf(r2->train, "customer_id"), (Ints{2, 3, 5}));

  auto r3 = Fit(
      json::array({{{"filter", "plan is not null AND NOT (plan == 'basic') or customer_id == 1"}}}),
      Churn());
  ASSERT_TRUE(r3.ok()) << r3.status();
  EXPECT_EQ(IntsOf(r3->train, "customer_id"), (Ints{1, 2, 5}));

  auto r4 = Fit(json::parse(R"([{"filter": "charges < -1e3 or charges <= 10.0"}])"), Churn());
  ASSERT_TRUE(r4.ok()) << r4.status();
  EXPECT_EQ(IntsOf(r4->train, "customer_id"), (Ints{1}));
  EXPECT_EQ(r4->state["ops"][0], json::parse(R"({"filter": "charges < -1e3 or charges <= 10.0"})"));
}

TEST(TransformTest, FilterOnTimestampsAndQuotedNames) {
  Table t;
  AddInts(t, "signup date", {*ParseTimestamp("2026-01-01"), *ParseTimestamp("2026-03-01")},
          ColumnType::kTimestamp);
  auto r = Fit(json::parse(R"([{"filter": "\"signup date\" > '2026-02-01T00:00:00Z'"}])"), t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(IntsOf(r->train, "signup date"), (Ints{*ParseTimestamp("2026-03-01")}));
}

TEST(TransformTest, FilterErrorsNameTheColumnOfTheExpression) {
  struct Case {
    std::string expr;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"tenure >= 0 and plan 'trial'",
       "ops[0] (filter): at column 22 of \"tenure >= 0 and plan 'trial'\": expected a comparison "
       "operator (==, !=, <, <=, >, >=) or 'is null' after 'plan', got 'trial'"},
      {"tenure = 3",
       "ops[0] (filter): at column 8 of \"tenure = 3\": use '==' to compare for equality"},
      {"(tenure > 3",
       "ops[0] (filter): at column 12 of \"(tenure > 3\": expected ')' to close "
       "the '(' at column 1, got the end of the expression"},
      {"plan == 'basic",
       "ops[0] (filter): at column 9 of \"plan == 'basic\": unterminated string "
       "literal; close it with '"},
      {"tenure > 3 plan",
       "ops[0] (filter): at column 12 of \"tenure > 3 plan\": unexpected "
       "'plan'; expected 'and', 'or' or the end of the expression"},
      {"tenure > and",
       "ops[0] (filter): at column 10 of \"tenure > and\": expected a number, a "
       "'quoted string', true or false after '>', got 'and'"},
      {"",
       "ops[0] (filter): at column 1 of \"\": empty expression; write a condition such as "
       "\"tenure >= 0\""},
  };
  for (const Case& c : cases) {
    auto ops = ParseOps(json::array({{{"filter", c.expr}}}));
    ASSERT_FALSE(ops.ok()) << c.expr;
    EXPECT_EQ(Msg(ops.status()), c.message);
  }
  // Type and name errors need the data, so they come from FitTransform, with positions too.
  auto typed = Fit(json::array({{{"filter", "plan == 3"}}}), Churn());
  ASSERT_FALSE(typed.ok());
  EXPECT_EQ(Msg(typed.status()),
            "ops[0] (filter): at column 9 of \"plan == 3\": column 'plan' is string: compare it "
            "with a 'quoted string'");
  auto unknown = Fit(json::array({{{"filter", "tenure > 1 and plann == 'x'"}}}), Churn());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(Msg(unknown.status()),
            "ops[0] (filter): at column 16 of \"tenure > 1 and plann == 'x'\": no column 'plann'; "
            "did you mean 'plan'?");
}

TEST(TransformTest, ImputeStrategiesUseHandComputedValues) {
  Table t = Churn();
  AddStrings(t, "tie", {"b", "a", "b", "a", std::nullopt});
  AddInts(t, "count", {2, 1, 2, 1, std::nullopt});
  AddDoubles(t, "odd", {3.0, 1.0, 2.0, std::nullopt, std::nullopt});
  AddStrings(t, "region", {std::nullopt, "eu", std::nullopt, "us", "eu"});
  auto r = Fit(json::parse(R"([{"impute": {
      "tenure": "median", "charges": "mean", "plan": "mode", "tie": "mode", "count": "mode",
      "odd": "median", "region": {"constant": "unknown"}, "churned": {"constant": false}}}])"),
               t);
  ASSERT_TRUE(r.ok()) << r.status();
  // tenure 1, 3, 5, 10 -> (3 + 5) / 2; the int64 column becomes float64.
  EXPECT_EQ(DoublesOf(r->train, "tenure"), (Doubles{1.0, 4.0, 5.0, 3.0, 10.0}));
  EXPECT_EQ(DoublesOf(r->train, "charges"), (Doubles{10.0, 20.0, 30.0, 25.0, 40.0}));
  EXPECT_EQ(StringsOf(r->train, "plan"), (Strings{"basic", "pro", "basic", "basic", "trial"}));
  EXPECT_EQ(StringsOf(r->train, "tie"), (Strings{"b", "a", "b", "a", "a"}));
  EXPECT_EQ(IntsOf(r->train, "count"), (Ints{2, 1, 2, 1, 1}));
  EXPECT_EQ(r->train.column("count").type(), ColumnType::kInt64);
  EXPECT_EQ(DoublesOf(r->train, "odd"), (Doubles{3.0, 1.0, 2.0, 2.0, 2.0}));
  EXPECT_EQ(StringsOf(r->train, "region"), (Strings{"unknown", "eu", "unknown", "us", "eu"}));
  const json& state = r->state["ops"][0]["impute"];
  EXPECT_EQ(state["tenure"], json::parse(R"({"strategy": "median", "value": 4.0})"));
  EXPECT_EQ(state["charges"], json::parse(R"({"strategy": "mean", "value": 25.0})"));
  EXPECT_EQ(state["plan"], json::parse(R"({"strategy": "mode", "value": "basic"})"));
  EXPECT_EQ(state["count"], json::parse(R"({"strategy": "mode", "value": 1})"));
  EXPECT_EQ(state["region"], json::parse(R"({"strategy": "constant", "value": "unknown"})"));
  EXPECT_EQ(state["churned"], json::parse(R"({"strategy": "constant", "value": false})"));
}

TEST(TransformTest, ImputeTimestampsAndCastBools) {
  Table t;
  AddInts(t, "seen",
          {*ParseTimestamp("2026-01-01"), std::nullopt, *ParseTimestamp("2026-01-02"),
           *ParseTimestamp("2026-01-04")},
          ColumnType::kTimestamp);
  AddStrings(t, "flag", {"yes", "0", "TRUE", std::nullopt});
  auto r = Fit(json::parse(R"([{"impute": {"seen": "median"}}, {"cast": {"flag": "bool"}}])"), t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(IntsOf(r->train, "seen")[1], *ParseTimestamp("2026-01-02"));
  EXPECT_EQ(r->state["ops"][0]["impute"]["seen"]["value"], "2026-01-02T00:00:00Z");
  EXPECT_EQ(IntsOf(r->train, "flag"), (Ints{1, 0, 1, std::nullopt}));
  EXPECT_EQ(r->train.column("flag").type(), ColumnType::kBool);
}

TEST(TransformTest, ImputeErrorsSayWhatToUseInstead) {
  auto mean = Fit(json::parse(R"([{"impute": {"plan": "mean"}}])"), Churn());
  ASSERT_FALSE(mean.ok());
  EXPECT_EQ(Msg(mean.status()),
            "ops[0] (impute): column 'plan': mean needs a numeric column (int64, float64 or "
            "timestamp) but it is string; use mode or {constant: ...}");
  auto constant = Fit(json::parse(R"([{"impute": {"tenure": {"constant": "x"}}}])"), Churn());
  ASSERT_FALSE(constant.ok());
  EXPECT_EQ(Msg(constant.status()),
            "ops[0] (impute): column 'tenure': the constant \"x\" does not fit its type int64; "
            "give a whole number");
}

TEST(TransformTest, OneHotWritesSortedFloatColumnsInPlace) {
  auto r = Fit(json::parse(R"([{"select": ["customer_id", "plan", "churned"]},
                               {"one_hot": ["plan"]}])"),
               Churn());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(
      r->train.ColumnNames(),
      (std::vector<std::string>{"customer_id", "plan=basic", "plan=pro", "plan=trial", "churned"}));
  EXPECT_EQ(DoublesOf(r->train, "plan=basic"), (Doubles{1.0, 0.0, 0.0, 1.0, 0.0}));
  EXPECT_EQ(DoublesOf(r->train, "plan=pro"), (Doubles{0.0, 1.0, 0.0, 0.0, 0.0}));
  EXPECT_EQ(DoublesOf(r->train, "plan=trial"), (Doubles{0.0, 0.0, 0.0, 0.0, 1.0}));
  EXPECT_EQ(r->state["ops"][1], json::parse(R"({"one_hot": {"plan":
      {"categories": ["basic", "pro", "trial"], "other": false}}})"));
}

TEST(TransformTest, OneHotCapKeepsMostFrequentAndAddsOther) {
  Table t;
  AddStrings(t, "c", {"c", "a", "a", "b", "d", std::nullopt});
  AddInts(t, "n", {10, 2, 10, 2, 2, 10});
  auto r = Fit(json::parse(R"([{"one_hot": {"c": {"max_categories": 2}, "n": null}}])"), t);
  ASSERT_TRUE(r.ok()) << r.status();
  // a (2) is kept; b, c, d tie at 1 and the smallest, b, is kept.
  EXPECT_EQ(r->train.ColumnNames(),
            (std::vector<std::string>{"c=a", "c=b", "c=__other__", "n=2", "n=10"}));
  EXPECT_EQ(DoublesOf(r->train, "c=a"), (Doubles{0.0, 1.0, 1.0, 0.0, 0.0, 0.0}));
  EXPECT_EQ(DoublesOf(r->train, "c=b"), (Doubles{0.0, 0.0, 0.0, 1.0, 0.0, 0.0}));
  EXPECT_EQ(DoublesOf(r->train, "c=__other__"), (Doubles{1.0, 0.0, 0.0, 0.0, 1.0, 0.0}));
  EXPECT_EQ(DoublesOf(r->train, "n=10"), (Doubles{1.0, 0.0, 1.0, 0.0, 0.0, 1.0}));
  EXPECT_EQ(r->state["ops"][0]["one_hot"]["c"],
            json::parse(R"({"categories": ["a", "b"], "other": true})"));
  EXPECT_EQ(r->state["ops"][0]["one_hot"]["n"],
            json::parse(R"({"categories": ["2", "10"], "other": false})"));

  auto bad = Fit(json::parse(R"([{"one_hot": ["charges"]}])"), Churn());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(Msg(bad.status()),
            "ops[0] (one_hot): column 'charges': one_hot needs a categorical column (string, "
            "int64 or bool) but it is float64; cast it to string first");
}

TEST(TransformTest, StandardizeAndMinMaxUsePopulationStatistics) {
  Table t;
  AddDoubles(t, "x", {2, 4, 4, 4, 5, 5, 7, 9, std::nullopt});  // mean 5, population std 2
  AddInts(t, "k", {3, 3, 3, 3, 3, 3, 3, 3, 3});
  AddInts(t, "m", {1, std::nullopt, 5, 3, 10, 1, 1, 1, 1});
  auto r = Fit(json::parse(R"([{"standardize": ["x", "k"]}, {"min_max": ["m"]}])"), t);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(DoublesOf(r->train, "x"),
            (Doubles{-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0, std::nullopt}));
  EXPECT_EQ(DoublesOf(r->train, "k"), Doubles(9, 0.0));  // constant column
  EXPECT_EQ(DoublesOf(r->train, "m"),
            (Doubles{0.0, std::nullopt, 4.0 / 9.0, 2.0 / 9.0, 1.0, 0.0, 0.0, 0.0, 0.0}));
  EXPECT_EQ(r->state["ops"][0]["standardize"]["x"], json::parse(R"({"mean": 5.0, "std": 2.0})"));
  EXPECT_EQ(r->state["ops"][0]["standardize"]["k"], json::parse(R"({"mean": 3.0, "std": 0.0})"));
  EXPECT_EQ(r->state["ops"][1]["min_max"]["m"], json::parse(R"({"min": 1.0, "max": 10.0})"));

  Table inf;
  AddDoubles(inf, "x", {1.0, HUGE_VAL});
  auto infinite = Fit(json::parse(R"([{"standardize": ["x"]}])"), inf);
  ASSERT_FALSE(infinite.ok());
  EXPECT_EQ(Msg(infinite.status()),
            "ops[0] (standardize): column 'x': the mean is inf (the column has infinite or huge "
            "values); filter those rows out first");

  auto bad = Fit(json::parse(R"([{"standardize": ["plan"]}])"), Churn());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(Msg(bad.status()),
            "ops[0] (standardize): column 'plan': standardize needs a numeric column (int64, "
            "float64 or bool) but it is string; one_hot it instead");
}

TEST(TransformTest, ParseOpsNamesEveryBadOpWithAFix) {
  auto r = ParseOps(json::parse(R"([
      {"one-hot": ["plan"]},
      {"split": {"test": 20}},
      {"cast": {"tenure": "flot"}},
      {"one_hot": {"plan": {"max_categoris": 3}}},
      {"impute": {"tenure": "medain"}},
      {"select": []},
      "drop",
      {"split": {"test": 0.2, "sed": 3}},
      {"filter": 3}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(r.status()),
            "9 problems in the transform ops:\n"
            "  ops[0]: unknown op 'one-hot'; did you mean 'one_hot'?\n"
            "  ops[1] (split): test fraction 20 is not between 0 and 1 (exclusive); write a "
            "fraction such as 0.2, not a percentage\n"
            "  ops[2] (cast): column 'tenure': unknown column type 'flot'; use one of int64, "
            "float64, string, bool, timestamp\n"
            "  ops[3] (one_hot): column 'plan': unknown setting 'max_categoris'; did you mean "
            "'max_categories'?\n"
            "  ops[4] (impute): column 'tenure': unknown strategy 'medain'; did you mean "
            "'median'?\n"
            "  ops[5] (select): the column list is empty; name at least one\n"
            "  ops[6]: expected a mapping with one op like {drop: [customer_id]}, got \"drop\"\n"
            "  ops[7] (split): unknown setting 'sed'; did you mean 'seed'?\n"
            "  ops[8] (filter): expected an expression string like \"tenure >= 0 and plan != "
            "'trial'\", got 3");

  auto two = ParseOps(json::parse(R"([{"split": {"test": 0.2}}, {"split": {"test": 0.3}}])"));
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(Msg(two.status()), "ops[1] (split): only one split op is allowed (ops[0] is one)");

  auto not_list = ParseOps(json::parse(R"({"select": ["a"]})"));
  ASSERT_FALSE(not_list.ok());
  EXPECT_NE(Msg(not_list.status()).find("ops: expected a list of ops"), std::string::npos);

  auto good = ParseOps(json::parse(R"([{"split": {"test": 0.25, "seed": 7, "stratify": "y"}}])"));
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good)[0].test_fraction, 0.25);
  EXPECT_EQ((*good)[0].seed, 7u);
  EXPECT_EQ((*good)[0].stratify, "y");
}

TEST(TransformTest, MissingColumnAtFitSuggestsTheClosestName) {
  auto r = Fit(json::parse(R"([{"drop": ["custmer_id"]}])"), Churn());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(Msg(r.status()), "ops[0] (drop): no column 'custmer_id'; did you mean 'customer_id'?");
  auto later =
      Fit(json::parse(R"([{"drop": ["tenure"]}, {"impute": {"tenure": "mean"}}])"), Churn());
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(Msg(later.status()),
            "ops[1] (impute): no column 'tenure'; the columns at this step are: customer_id, plan, "
            "charges, churned");
}

const char* kFullOps = R"([
    {"select": ["customer_id", "tenure", "plan", "charges", "churned"]},
    {"rename": {"charges": "monthly_charges"}},
    {"impute": {"tenure": "median", "plan": "mode", "monthly_charges": "mean"}},
    {"one_hot": ["plan"]},
    {"standardize": ["monthly_charges"]},
    {"min_max": ["tenure"]}])";

TEST(TransformTest, ApplyOnTheSameRowsReproducesTheTrainTable) {
  auto r = Fit(json::parse(kFullOps), Churn());
  ASSERT_TRUE(r.ok()) << r.status();
  // Through text, as the state is stored.
  json stored = json::parse(r->state.dump());
  auto applied = ApplyTransform(stored, Churn());
  ASSERT_TRUE(applied.ok()) << applied.status();
  ExpectTablesEqual(*applied, r->train);
  EXPECT_EQ(stored["output_columns"].size(), r->train.num_columns());
}

TEST(TransformTest, ApplyMatchesTrainRowsAfterFilterAndSplit) {
  Table t;
  Ints ids, x;
  Strings plan;
  for (int64_t i = 0; i < 40; ++i) {
    ids.push_back(i);
    x.push_back(i % 7 == 0 ? std::nullopt : std::optional<int64_t>(i * 3 % 11));
    plan.push_back(i % 3 == 0 ? "a" : (i % 3 == 1 ? "b" : "c"));
  }
  AddInts(t, "id", ids);
  AddInts(t, "x", x);
  AddStrings(t, "plan", plan);
  auto r = Fit(json::parse(R"([
      {"filter": "id != 5"},
      {"impute": {"x": "median"}},
      {"split": {"test": 0.25, "seed": 3}},
      {"one_hot": ["plan"]},
      {"standardize": ["x"]}])"),
               t);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->test.has_value());
  EXPECT_EQ(r->train.num_rows() + r->test->num_rows(), 39u);
  std::vector<uint8_t> in_train(40, 0);
  for (auto id : IntsOf(r->train, "id")) in_train[static_cast<size_t>(*id)] = 1;
  auto applied = ApplyTransform(r->state, t.Filter(in_train));
  ASSERT_TRUE(applied.ok()) << applied.status();
  ExpectTablesEqual(*applied, r->train);

  std::vector<uint8_t> in_test(40, 0);
  for (auto id : IntsOf(*r->test, "id")) in_test[static_cast<size_t>(*id)] = 1;
  auto applied_test = ApplyTransform(r->state, t.Filter(in_test));
  ASSERT_TRUE(applied_test.ok()) << applied_test.status();
  ExpectTablesEqual(*applied_test, *r->test);
}

TEST(TransformTest, ApplyFreezesCategoriesAndFittedValues) {
  Table fit;
  AddStrings(fit, "plan", {"basic", "pro", "basic"});
  AddStrings(fit, "tier", {"x", "y", "z"});
  AddDoubles(fit, "charges", {1.0, std::nullopt, 3.0});
  auto r = Fit(json::parse(R"([{"impute": {"charges": "mean"}},
                               {"one_hot": {"plan": null, "tier": {"max_categories": 2}}}])"),
               fit);
  ASSERT_TRUE(r.ok()) << r.status();
  Table serve;
  AddStrings(serve, "plan", {"gold", std::nullopt, "pro"});
  AddStrings(serve, "tier", {"w", "x", std::nullopt});
  AddDoubles(serve, "charges", {std::nullopt, 10.0, std::nullopt});
  auto out = ApplyTransform(r->state, serve);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->ColumnNames(), (std::vector<std::string>{"plan=basic", "plan=pro", "tier=x",
                                                          "tier=y", "tier=__other__", "charges"}));
  EXPECT_EQ(DoublesOf(*out, "plan=basic"), (Doubles{0.0, 0.0, 0.0}));  // gold: unseen
  EXPECT_EQ(DoublesOf(*out, "plan=pro"), (Doubles{0.0, 0.0, 1.0}));
  EXPECT_EQ(DoublesOf(*out, "tier=__other__"), (Doubles{1.0, 0.0, 0.0}));  // w: unseen, capped
  EXPECT_EQ(DoublesOf(*out, "tier=x"), (Doubles{0.0, 1.0, 0.0}));
  EXPECT_EQ(DoublesOf(*out, "charges"), (Doubles{2.0, 10.0, 2.0}));  // the fitted mean
}

TEST(TransformTest, ApplySkipsAnAbsentOptionalTarget) {
  auto r = Fit(json::parse(R"([{"select": ["tenure", "plan", "churned"]},
                               {"rename": {"churned": "label"}},
                               {"impute": {"tenure": "median", "label": {"constant": false}}},
                               {"one_hot": ["plan"]}])"),
               Churn());
  ASSERT_TRUE(r.ok()) << r.status();
  Table serve;
  AddInts(serve, "tenure", {std::nullopt, 7});
  AddStrings(serve, "plan", {"pro", "basic"});
  AddStrings(serve, "extra", {"dropped", "too"});
  auto out = ApplyTransform(r->state, serve, {.optional_columns = {"churned"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->ColumnNames(),
            (std::vector<std::string>{"tenure", "plan=basic", "plan=pro", "plan=trial"}));
  EXPECT_EQ(DoublesOf(*out, "tenure"), (Doubles{4.0, 7.0}));
  EXPECT_EQ(DoublesOf(*out, "plan=pro"), (Doubles{1.0, 0.0}));

  auto required = ApplyTransform(r->state, serve);
  ASSERT_FALSE(required.ok());
  EXPECT_EQ(Msg(required.status()),
            "the input lacks required column 'churned' (needed by ops[0] (select)); add it, or "
            "list it in the optional columns if it may be absent at serving time");

  Table no_plan;
  AddInts(no_plan, "tenure", {1});
  auto missing = ApplyTransform(r->state, no_plan, {.optional_columns = {"label"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(Msg(missing.status()),
            "the input lacks required column 'plan' (needed by ops[0] (select)); add it, or list "
            "it in the optional columns if it may be absent at serving time");
}

TEST(TransformTest, ApplyConvertsInputTypesToTheFittedOnes) {
  Table fit;
  AddDoubles(fit, "x", {1.0, 3.0});
  auto r = Fit(json::parse(R"([{"standardize": ["x"]}])"), fit);
  ASSERT_TRUE(r.ok()) << r.status();
  Table serve;
  AddInts(serve, "x", {2, 5});
  auto out = ApplyTransform(r->state, serve);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(DoublesOf(*out, "x"), (Doubles{0.0, 3.0}));

  Table text;
  AddStrings(text, "x", {"2", "two"});
  auto bad = ApplyTransform(r->state, text);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(Msg(bad.status()),
            "input column 'x' is string but the transform was fitted on float64: row 2: 'two' is "
            "not a float64; fix the data, or filter or impute the rows first");

  json wrong_version = r->state;
  wrong_version["version"] = 2;
  EXPECT_FALSE(ApplyTransform(wrong_version, serve).ok());
}

Table Numbered(size_t n) {
  Table t;
  Ints ids;
  for (size_t i = 0; i < n; ++i) ids.push_back(static_cast<int64_t>(i));
  AddInts(t, "id", ids);
  return t;
}

TEST(TransformTest, SplitIsDeterministicAndFollowsTheDocumentedAlgorithm) {
  json ops7 = json::parse(R"([{"split": {"test": 0.2, "seed": 7}}])");
  auto a = Fit(ops7, Numbered(100));
  auto b = Fit(ops7, Numbered(100));
  auto c = Fit(json::parse(R"([{"split": {"test": 0.2, "seed": 8}}])"), Numbered(100));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->test->num_rows(), 20u);
  EXPECT_EQ(a->train.num_rows(), 80u);
  EXPECT_EQ(IntsOf(*a->test, "id"), IntsOf(*b->test, "id"));
  EXPECT_EQ(IntsOf(a->train, "id"), IntsOf(b->train, "id"));
  EXPECT_NE(IntsOf(*a->test, "id"), IntsOf(*c->test, "id"));
  // Parts keep the original order and partition the rows.
  Ints test_ids = IntsOf(*a->test, "id");
  EXPECT_TRUE(std::is_sorted(test_ids.begin(), test_ids.end()));
  std::vector<int> seen(100, 0);
  for (auto id : IntsOf(a->train, "id")) ++seen[static_cast<size_t>(*id)];
  for (auto id : test_ids) ++seen[static_cast<size_t>(*id)];
  EXPECT_EQ(seen, std::vector<int>(100, 1));

  // The algorithm of the header, written out: Fisher-Yates over mt19937_64, first round(0.3*10).
  std::mt19937_64 rng(7);
  std::vector<int64_t> rows(10);
  for (size_t i = 0; i < 10; ++i) rows[i] = static_cast<int64_t>(i);
  for (size_t i = 10; i > 1; --i) std::swap(rows[i - 1], rows[rng() % i]);
  std::vector<int64_t> first(rows.begin(), rows.begin() + 3);
  std::sort(first.begin(), first.end());
  auto small = Fit(json::parse(R"([{"split": {"test": 0.3, "seed": 7}}])"), Numbered(10));
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(IntsOf(*small->test, "id"), (Ints{first[0], first[1], first[2]}));
  EXPECT_EQ(small->state["ops"][0], json::parse(R"({"split": {"test": 0.3, "seed": 7,
      "train_rows": 7, "test_rows": 3}})"));

  auto empty = Fit(json::parse(R"([{"split": {"test": 0.1}}])"), Numbered(3));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(Msg(empty.status()),
            "ops[0] (split): splitting 3 rows with test 0.1 leaves the test part empty; use more "
            "rows or another fraction");
}

TEST(TransformTest, StratifiedSplitKeepsClassProportions) {
  Table t = Numbered(100);
  // Classes of 33 (a), 17 (b) and 50 (c) rows, interleaved.
  Strings cls;
  for (size_t i = 0; i < 100; ++i) cls.push_back(i % 2 == 0 ? "c" : (i % 6 < 3 ? "b" : "a"));
  // i odd: i % 6 in {1, 3, 5} -> b for 1, a for 3 and 5: 17 b and 33 a.
  AddStrings(t, "y", cls);
  for (uint64_t seed : {1u, 2u, 3u}) {
    auto r =
        Fit(json::array({{{"split", {{"test", 0.25}, {"seed", seed}, {"stratify", "y"}}}}}), t);
    ASSERT_TRUE(r.ok()) << r.status();
    std::map<std::string, int> test_counts;
    for (auto v : StringsOf(*r->test, "y")) ++test_counts[*v];
    // round(0.25 * 33) = 8, round(0.25 * 17) = 4, round(0.25 * 50) = 13 (half away from zero).
    EXPECT_EQ(test_counts, (std::map<std::string, int>{{"a", 8}, {"b", 4}, {"c", 13}}));
    Ints ids = IntsOf(*r->test, "id");
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    EXPECT_EQ(r->train.num_rows(), 75u);
  }
}

TEST(TransformTest, OpsAfterTheSplitAreFittedOnTrainRowsOnly) {
  Table t = Numbered(10);
  AddDoubles(t, "x", {1, 2, 3, 4, 5, 6, 7, 8, 9, std::nullopt});
  AddDoubles(t, "raw", {1, 2, 3, 4, 5, 6, 7, 8, 9, std::nullopt});
  auto r = Fit(json::parse(R"([{"impute": {"x": "median", "raw": "median"}},
                               {"split": {"test": 0.4, "seed": 11}},
                               {"standardize": ["x"]}])"),
               t);
  ASSERT_TRUE(r.ok()) << r.status();
  // Before the split: the median of all rows, 1..9 -> 5.
  EXPECT_EQ(r->state["ops"][0]["impute"]["x"]["value"], 5.0);
  // After: mean and population std of the train rows' values, computed here by hand.
  Doubles raw = DoublesOf(r->train, "raw");
  ASSERT_EQ(raw.size(), 6u);
  double sum = 0;
  for (auto v : raw) sum += *v;
  const double mean = sum / 6.0;
  double ss = 0;
  for (auto v : raw) ss += (*v - mean) * (*v - mean);
  const double std = std::sqrt(ss / 6.0);
  EXPECT_EQ(r->state["ops"][2]["standardize"]["x"]["mean"].get<double>(), mean);
  EXPECT_EQ(r->state["ops"][2]["standardize"]["x"]["std"].get<double>(), std);
  EXPECT_NE(mean, 5.0) << "this seed should give a train mean unlike the all-rows mean";
  // The test part is scaled with the train parameters.
  Doubles test_raw = DoublesOf(*r->test, "raw");
  Doubles test_x = DoublesOf(*r->test, "x");
  ASSERT_EQ(test_raw.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(*test_x[i], (*test_raw[i] - mean) / std);
}

// The documented split of `rows` (input indices of the rows reaching the split), written out:
// the sorted input indices of the first round(test * m) rows after the Fisher-Yates shuffle.
std::vector<size_t> ExpectedTestRows(std::vector<size_t> rows, double test, std::mt19937_64& rng) {
  for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[rng() % i]);
  rows.resize(static_cast<size_t>(std::llround(test * static_cast<double>(rows.size()))));
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::vector<size_t> IdsOf(const Table& t) {
  std::vector<size_t> out;
  for (auto id : IntsOf(t, "id")) out.push_back(static_cast<size_t>(*id));
  return out;
}

TEST(TransformTest, InputRowsFollowFiltersBeforeAndAfterTheSplit) {
  // Filters before the split shift the positions, so a part's row positions are not its input
  // rows; the `id` column (= the input row) says what they must be.
  auto r = Fit(json::parse(R"([{"filter": "id != 4 and id != 11"},
                               {"split": {"test": 0.3, "seed": 5}},
                               {"filter": "id != 20 and id != 21"}])"),
               Numbered(30));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->test.has_value());
  std::vector<size_t> reaching;
  for (size_t i = 0; i < 30; ++i) {
    if (i != 4 && i != 11) reaching.push_back(i);
  }
  std::mt19937_64 rng(5);
  std::vector<size_t> test = ExpectedTestRows(reaching, 0.3, rng);  // round(0.3 * 28) = 8 rows
  ASSERT_EQ(test.size(), 8u);
  std::vector<size_t> train;
  for (size_t i : reaching) {
    if (!std::binary_search(test.begin(), test.end(), i)) train.push_back(i);
  }
  std::erase_if(test, [](size_t i) { return i == 20 || i == 21; });
  std::erase_if(train, [](size_t i) { return i == 20 || i == 21; });
  EXPECT_EQ(r->test_input_rows, test);
  EXPECT_EQ(r->train_input_rows, train);
  EXPECT_EQ(r->test_input_rows, IdsOf(*r->test));
  EXPECT_EQ(r->train_input_rows, IdsOf(r->train));
  EXPECT_EQ(r->train_input_rows.size() + r->test_input_rows.size(), 26u);
}

TEST(TransformTest, InputRowsWithoutAFilterOrASplit) {
  auto split = Fit(json::parse(R"([{"split": {"test": 0.2, "seed": 7}}])"), Numbered(10));
  ASSERT_TRUE(split.ok()) << split.status();
  std::mt19937_64 rng(7);
  std::vector<size_t> test = ExpectedTestRows({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 0.2, rng);
  EXPECT_EQ(split->test_input_rows, test);
  EXPECT_EQ(split->test_input_rows, IdsOf(*split->test));
  EXPECT_EQ(split->train_input_rows, IdsOf(split->train));
  EXPECT_EQ(split->train_input_rows.size(), 8u);

  // No split: no test rows; the train rows are those the filter kept.
  auto plain = Fit(json::parse(R"([{"filter": "id >= 2 and id != 4"}])"), Numbered(6));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->test.has_value());
  EXPECT_TRUE(plain->test_input_rows.empty());
  EXPECT_EQ(plain->train_input_rows, (std::vector<size_t>{2, 3, 5}));
}

TEST(TransformTest, StratifiedSplitRecordsTheInputRows) {
  Table t = Numbered(40);
  // Classes: a (i % 4 == 0, 10 rows), b (the other even rows, 10), c (odd, 20).
  Strings cls;
  for (size_t i = 0; i < 40; ++i) cls.push_back(i % 2 == 1 ? "c" : (i % 4 == 0 ? "a" : "b"));
  AddStrings(t, "y", cls);
  auto r = Fit(json::parse(R"([{"filter": "id != 0"},
                               {"split": {"test": 0.25, "seed": 2, "stratify": "y"}}])"),
               t);
  ASSERT_TRUE(r.ok()) << r.status();
  // The classes in sorted order, one generator for all, each class in input order.
  std::mt19937_64 rng(2);
  std::vector<size_t> expected;
  for (std::string_view c : {"a", "b", "c"}) {
    std::vector<size_t> rows;
    for (size_t i = 1; i < 40; ++i) {
      if (*cls[i] == c) rows.push_back(i);
    }
    for (size_t i : ExpectedTestRows(rows, 0.25, rng)) expected.push_back(i);
  }
  std::sort(expected.begin(), expected.end());
  // round(0.25 * 9) + round(0.25 * 10) + round(0.25 * 20) = 2 + 3 + 5.
  ASSERT_EQ(expected.size(), 10u);
  EXPECT_EQ(r->test_input_rows, expected);
  EXPECT_EQ(r->test_input_rows, IdsOf(*r->test));
  EXPECT_EQ(r->train_input_rows, IdsOf(r->train));
  EXPECT_EQ(r->train_input_rows.size(), 29u);
}

// Serving parity: the raw input rows of the test part, sent through the serving path (as text,
// read back with the fitted input types, then ApplyTransform), give the test part bit for bit.
TEST(TransformTest, ApplyOnTheRawTestRowsReproducesTheTestPart) {
  Table t;
  Ints ids, tenure;
  Doubles charges;
  Strings plan;
  Ints churned;
  for (int64_t i = 0; i < 60; ++i) {
    ids.push_back(i);
    tenure.push_back(i % 7 == 3 ? std::nullopt : std::optional<int64_t>(i * 5 % 37));
    charges.push_back(i % 9 == 4 ? std::nullopt : std::optional<double>(10.25 + i * 0.37));
    plan.push_back(i % 11 == 6 ? std::nullopt : Strings::value_type(i % 3 == 0 ? "basic" : "pro"));
    churned.push_back(i % 4 == 0 ? 1 : 0);
  }
  AddInts(t, "id", ids);
  AddInts(t, "tenure", tenure);
  AddDoubles(t, "charges", charges);
  AddStrings(t, "plan", plan);
  AddInts(t, "churned", churned, ColumnType::kBool);
  auto r = Fit(json::parse(R"([
      {"filter": "id != 13"},
      {"impute": {"tenure": "median", "plan": "mode"}},
      {"split": {"test": 0.25, "seed": 9, "stratify": "churned"}},
      {"impute": {"charges": "mean"}},
      {"one_hot": ["plan"]},
      {"standardize": ["tenure", "charges"]}])"),
               t);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->test.has_value());
  ASSERT_EQ(r->test_input_rows.size(), r->test->num_rows());
  EXPECT_EQ(r->test_input_rows, IdsOf(*r->test));
  Table raw = t.Take(r->test_input_rows);
  ASSERT_EQ(raw.num_rows(), 15u);  // 59 rows: round(0.25 * 15) + round(0.25 * 44) = 4 + 11

  json state = json::parse(r->state.dump());  // as stored
  auto direct = ApplyTransform(state, raw);
  ASSERT_TRUE(direct.ok()) << direct.status();
  ExpectTablesEqual(*direct, *r->test);

  // Through CSV, read back with the input types of the state, as the raw part is stored.
  CsvReadOptions opts;
  for (const json& c : state["input_columns"]) {
    auto type = ParseTypeName(c["type"].get<std::string>());
    ASSERT_TRUE(type.ok()) << type.status();
    opts.types[c["name"].get<std::string>()] = *type;
  }
  auto read = ReadCsvString(WriteCsvString(raw), opts);
  ASSERT_TRUE(read.ok()) << read.status();
  auto served = ApplyTransform(state, std::move(read->table));
  ASSERT_TRUE(served.ok()) << served.status();
  ExpectTablesEqual(*served, *r->test);
}

}  // namespace
}  // namespace ferry::data
