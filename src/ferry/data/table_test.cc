#include "ferry/data/table.h"

#include "gtest/gtest.h"

namespace ferry::data {
namespace {

TEST(TableTest, ColumnsHoldTypedValuesAndNulls) {
  Table t;
  Column& tenure = t.AddColumn("tenure", ColumnType::kInt64);
  tenure.AppendInt(3);
  tenure.AppendNull();
  Column& plan = t.AddColumn("plan", ColumnType::kString);
  plan.AppendString("pro");
  plan.AppendString("basic");
  EXPECT_EQ(t.num_rows(), 2u);
  EXPECT_TRUE(t.Consistent());
  EXPECT_EQ(t.column("tenure").int_at(0), 3);
  EXPECT_TRUE(t.column("tenure").is_null(1));
  EXPECT_EQ(t.column("tenure").null_count(), 1u);
  EXPECT_EQ(t.column("plan").string_at(1), "basic");
  EXPECT_EQ(t.column("plan").CodeOf("pro"), 0);
  EXPECT_EQ(t.column("plan").CodeOf("gold"), -1);
  EXPECT_EQ(t.Find("nope"), nullptr);
  EXPECT_EQ(t.IndexOf("plan"), 1u);
}

TEST(TableTest, FilterAndTakeKeepTypesAndOrder) {
  Table t;
  Column& x = t.AddColumn("x", ColumnType::kFloat64);
  for (double v : {1.5, 2.5, 3.5}) x.AppendDouble(v);
  Table f = t.Filter({1, 0, 1});
  ASSERT_EQ(f.num_rows(), 2u);
  EXPECT_EQ(f.column("x").float_at(1), 3.5);
  Table k = t.Take({2, 2, 0});
  EXPECT_EQ(k.column("x").float_at(0), 3.5);
  EXPECT_EQ(k.column("x").float_at(2), 1.5);
}

TEST(TableTest, AppendColumnKeepsValuesNullsAndRemapsStrings) {
  Column a("plan", ColumnType::kString);
  a.AppendString("pro");
  Column b("plan", ColumnType::kString);
  b.AppendString("basic");
  b.AppendNull();
  b.AppendString("pro");
  a.AppendColumn(b);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a.string_at(1), "basic");
  EXPECT_TRUE(a.is_null(2));
  EXPECT_EQ(a.code_at(3), a.code_at(0));  // "pro" interned once
  EXPECT_EQ(a.dictionary(), (std::vector<std::string>{"pro", "basic"}));
  Column x("x", ColumnType::kInt64);
  x.AppendInt(1);
  Column y("x", ColumnType::kInt64);
  y.AppendNull();
  y.AppendInt(7);
  x.AppendColumn(y);
  EXPECT_EQ(x.ints(), (std::vector<int64_t>{1, 0, 7}));
  EXPECT_EQ(x.null_count(), 1u);
}

TEST(TableTest, TimestampsRoundTripInUtc) {
  EXPECT_EQ(ParseTimestamp("1970-01-01"), 0);
  EXPECT_EQ(ParseTimestamp("1970-01-02T00:00:01Z"), int64_t{86401} * 1000000);
  EXPECT_EQ(ParseTimestamp("2026-11-27 10:00:00.5+01:00"),
            ParseTimestamp("2026-11-27T09:00:00.500000Z"));
  EXPECT_EQ(ParseTimestamp("2026-13-01"), std::nullopt);
  EXPECT_EQ(ParseTimestamp("yesterday"), std::nullopt);
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp("2026-11-27T10:11:12Z")), "2026-11-27T10:11:12Z");
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp("1969-12-31T23:59:59.25Z")),
            "1969-12-31T23:59:59.250000Z");
}

TEST(TableTest, TypeNamesParseWithAliases) {
  EXPECT_EQ(*ParseTypeName("integer"), ColumnType::kInt64);
  EXPECT_EQ(*ParseTypeName("category"), ColumnType::kString);
  EXPECT_EQ(TypeName(ColumnType::kTimestamp), "timestamp");
  absl::StatusOr<ColumnType> bad = ParseTypeName("decimal");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("use one of int64"), std::string_view::npos);
}

}  // namespace
}  // namespace ferry::data
